package inspect

import (
	"fmt"
	"sort"
	"strings"
)

// AddressError is returned when an address does not name exactly one
// volume. Choices lists the addresses that would.
type AddressError struct {
	Address string
	Reason  string
	Choices []string
}

func (e *AddressError) Error() string {
	msg := fmt.Sprintf("volume %q: %s", e.Address, e.Reason)
	if len(e.Choices) > 0 {
		msg += "; choose one of: " + strings.Join(e.Choices, ", ")
	}
	return msg
}

// Resolve finds the volume an address names:
//   - "" — the only filesystem in the tree;
//   - "LABEL=x", "UUID=x", "PARTUUID=x", "PARTLABEL=x";
//   - a path of names such as "p1" or "VolGroup00/domu1/VolGroup00/LogVol00".
//     A VG name shared by several VGs at one level must carry its UUID
//     prefix ("VolGroup00@R8uMYr").
func (t *Tree) Resolve(addr string) (*Volume, error) {
	switch {
	case addr == "":
		fss := t.Filesystems()
		if len(fss) == 1 {
			return fss[0], nil
		}
		if len(fss) == 0 {
			return nil, &AddressError{Address: addr, Reason: "the image holds no filesystem"}
		}
		return nil, &AddressError{Address: addr, Reason: fmt.Sprintf("the image holds %d filesystems", len(fss)), Choices: addresses(fss)}
	case hasTag(addr, "LABEL="), hasTag(addr, "UUID="), hasTag(addr, "PARTUUID="), hasTag(addr, "PARTLABEL="):
		return t.resolveTag(addr)
	}
	addr = strings.Trim(addr, "/")
	var exact []*Volume
	var byName []*Volume // VG given without its @uuid disambiguator
	t.Walk(func(v *Volume) bool {
		if v.Address == addr {
			exact = append(exact, v)
		} else if (v.Kind == KindVG || v.Kind == KindMD) && strings.HasPrefix(v.Address, addr+"@") && !strings.Contains(v.Address[len(addr)+1:], "/") {
			byName = append(byName, v)
		}
		return true
	})
	if len(exact) == 1 {
		return exact[0], nil
	}
	if len(byName) > 0 {
		return nil, &AddressError{Address: addr, Reason: "several volume groups have this name (a VG name clash)", Choices: addresses(byName)}
	}
	// A path through a clashing VG given without @uuid: list where it could be.
	var cands []*Volume
	t.Walk(func(v *Volume) bool {
		if stripVGTags(v.Address) == addr {
			cands = append(cands, v)
		}
		return true
	})
	if len(cands) > 0 {
		return nil, &AddressError{Address: addr, Reason: "ambiguous: it passes through a volume group whose name is shared", Choices: addresses(cands)}
	}
	return nil, &AddressError{Address: addr, Reason: "no such volume", Choices: addresses(t.Volumes()[1:])}
}

func hasTag(addr, tag string) bool { return strings.HasPrefix(strings.ToUpper(addr), tag) }

func (t *Tree) resolveTag(addr string) (*Volume, error) {
	i := strings.IndexByte(addr, '=')
	tag, val := strings.ToUpper(addr[:i]), addr[i+1:]
	var hits []*Volume
	t.Walk(func(v *Volume) bool {
		var got string
		switch tag {
		case "LABEL":
			if v.Content != nil {
				got = v.Content.Label
			}
		case "UUID":
			if v.Content != nil {
				got = v.Content.UUID
				if strings.EqualFold(got, val) {
					got = val
				}
			}
		case "PARTUUID":
			if v.Partition != nil && strings.EqualFold(v.Partition.UUID, val) {
				got = val
			}
		case "PARTLABEL":
			if v.Partition != nil {
				got = v.Partition.Name
			}
		}
		if got != "" && got == val {
			hits = append(hits, v)
		}
		return true
	})
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		return nil, &AddressError{Address: addr, Reason: "no volume has this " + strings.ToLower(tag)}
	}
	return nil, &AddressError{Address: addr, Reason: fmt.Sprintf("%d volumes have this %s", len(hits), strings.ToLower(tag)), Choices: addresses(hits)}
}

// stripVGTags removes "@uuid" disambiguators from every component.
func stripVGTags(addr string) string {
	parts := strings.Split(addr, "/")
	for i, p := range parts {
		if j := strings.IndexByte(p, '@'); j > 0 {
			parts[i] = p[:j]
		}
	}
	return strings.Join(parts, "/")
}

func addresses(vs []*Volume) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		if v.Address != "" {
			out = append(out, v.Address)
		}
	}
	sort.Strings(out)
	return out
}

// SplitFileSpec splits "VOL:/path" into its volume address and path. A bare
// "/path" has an empty address ("the only filesystem").
func SplitFileSpec(spec string) (vol, path string, err error) {
	if strings.HasPrefix(spec, "/") {
		return "", spec, nil
	}
	i := strings.Index(spec, ":/")
	if i < 0 {
		if strings.HasSuffix(spec, ":") {
			return strings.TrimSuffix(spec, ":"), "/", nil
		}
		return "", "", fmt.Errorf("%q is not a file address: use VOLUME:/path, or /path when the image holds one filesystem", spec)
	}
	return spec[:i], spec[i+1:], nil
}
