package inspect

import (
	"errors"
	"fmt"
	"io"

	"github.com/imgtool/imgtool/image"
	"github.com/imgtool/imgtool/luks"
)

// LUKSInfo describes a LUKS header found on a volume. It never holds key
// material.
type LUKSInfo struct {
	Version    int      `json:"version"`
	UUID       string   `json:"uuid"`
	Label      string   `json:"label,omitempty"`
	Cipher     string   `json:"cipher"`
	SectorSize int      `json:"sector_size"`
	DataOffset int64    `json:"data_offset"`
	Keyslots   []int    `json:"keyslots"`
	KDFs       []string `json:"kdfs"`
	// Locked is true when no key given opened the volume; WrongKey says
	// keys were given and none matched.
	Locked   bool `json:"locked"`
	WrongKey bool `json:"wrong_key,omitempty"`
}

// KeyOptions are the keys tried on LUKS volumes. They are never logged or
// written anywhere.
type KeyOptions struct {
	// Keys (passphrases or key-file contents) are tried on every LUKS
	// volume, in order.
	Keys [][]byte
	// Prompt, when set, is asked for a passphrase for a LUKS volume none
	// of Keys opens (address and UUID name it). It is asked again after a
	// wrong answer, up to three times; an error stops asking.
	Prompt func(address, uuid string) ([]byte, error)
	// Headers are detached LUKS headers (cryptsetup luksFormat --header):
	// each opens the volume at its Address, which has no header of its
	// own.
	Headers []DetachedHeader
}

// DetachedHeader is a LUKS header kept apart from its data volume. The
// header does not name its data device, so the user says which it is.
type DetachedHeader struct {
	// Address is the data volume's ("" is the first image's whole disk,
	// "p1" a partition, "VG/LV" an LV ...).
	Address string
	// Name says where the header came from (a file name), for notes.
	Name string
	R    io.ReaderAt
	Size int64
}

// detachedLUKS explores v as the data of a detached LUKS header given
// for its address, and reports whether one was.
func (b *builder) detachedLUKS(v *Volume, depth int) ([]*pvRef, bool) {
	for _, dh := range b.opts.Keys.Headers {
		if dh.Address != v.Address {
			continue
		}
		h, err := luks.ParseDetached(dh.R, dh.Size, v.r, v.Size)
		if err != nil {
			v.addNote("detached LUKS header %s unusable: %v", dh.Name, err)
			return nil, false
		}
		v.Content = &Signature{Type: "crypto_LUKS", Version: fmt.Sprint(h.Version), UUID: h.UUID}
		v.addNote("LUKS header detached, from %s", dh.Name)
		return b.unlockLUKS(v, h, depth), true
	}
	return nil, false
}

// exploreLUKS describes the LUKS header of v and, when a key opens it,
// explores the decrypted data as "VOL/luks".
func (b *builder) exploreLUKS(v *Volume, depth int) []*pvRef {
	h, err := luks.Parse(v.r, v.Size)
	if err != nil {
		v.addNote("LUKS header unreadable: %v", err)
		return nil
	}
	return b.unlockLUKS(v, h, depth)
}

// unlockLUKS describes the LUKS header h of v and, when a key opens it,
// explores the decrypted data as "VOL/luks".
func (b *builder) unlockLUKS(v *Volume, h *luks.Header, depth int) []*pvRef {
	info := &LUKSInfo{Version: h.Version, UUID: h.UUID, Label: h.Label, Cipher: h.Cipher(),
		SectorSize: h.Segment.SectorSize, DataOffset: h.Segment.Offset, Locked: true}
	for _, ks := range h.Keyslots {
		info.Keyslots = append(info.Keyslots, ks.ID)
		info.KDFs = append(info.KDFs, ks.KDF)
	}
	v.LUKS = info
	v.Notes = append(v.Notes, h.Notes...)
	var vol *luks.Volume
	tried := false
	var lastErr error
	for _, k := range b.opts.Keys.Keys {
		tried = true
		if vol, lastErr = h.Unlock(k); lastErr == nil {
			break
		}
	}
	if vol == nil && b.opts.Keys.Prompt != nil {
		for i := 0; i < 3 && vol == nil; i++ {
			p, err := b.opts.Keys.Prompt(v.DisplayAddress(), h.UUID)
			if err != nil {
				break
			}
			tried = true
			vol, lastErr = h.Unlock(p)
			clear(p)
		}
	}
	if vol == nil {
		switch {
		case !tried:
			v.addNote("LUKS%d volume %s is locked: give a passphrase or key file to open it", h.Version, h.UUID)
		case errors.Is(lastErr, luks.ErrWrongKey):
			info.WrongKey = true
			v.addNote("LUKS%d volume %s is locked: %v", h.Version, h.UUID, luks.ErrWrongKey)
		default:
			v.addNote("LUKS%d volume %s is locked: %v", h.Version, h.UUID, lastErr)
		}
		return nil
	}
	info.Locked = false
	c := &Volume{Address: join(v.Address, "luks"), Name: "luks", Kind: KindDisk, parent: v,
		Size: vol.Size(), r: &luksReader{vol}, Offset: -1, Image: v.Image}
	v.Children = append(v.Children, c)
	return b.explore(c, depth)
}

// luksReader is the decrypted volume; it is not a range of the image, so
// it has no Mapper.
type luksReader struct{ *luks.Volume }

var _ image.ReaderAtSize = (*luksReader)(nil)
