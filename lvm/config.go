package lvm

import (
	"fmt"
	"strconv"
	"strings"
)

// LVM2 metadata is written in LVM's configuration-file grammar (the same
// one as lvm.conf), as produced by lib/format_text/export.c:
//
//	file    = { item }
//	item    = key "=" value | key "{" { item } "}"
//	value   = string | integer | float | "[" [ value { "," value } ] "]"
//	string  = '"' { char | '\' char } '"'
//	comment = "#" ... end of line
//
// Keys are identifiers made of letters, digits and "_-.+/:@" (VG, LV and PV
// names may appear as section keys). A NUL byte ends the text: metadata in a
// metadata area is NUL-terminated.

// Limits that keep the parser bounded on hostile input.
const (
	maxConfigDepth = 32       // nesting of sections
	maxConfigText  = 64 << 20 // bytes of metadata text accepted
	maxListLen     = 1 << 20  // elements of one list
)

// ValueKind says what a Value holds.
type ValueKind int

// Kinds of Value.
const (
	KindString ValueKind = iota
	KindInt
	KindFloat
	KindList
)

// Value is a configuration value. Start and End are the byte offsets of its
// text (for strings including the quotes) in the parsed input.
type Value struct {
	Kind  ValueKind
	Str   string
	Int   int64
	Float float64
	List  []Value
	Start int
	End   int
}

// Item is one "key = value" or "key { ... }" entry. Exactly one of Value and
// Section is set.
type Item struct {
	Key      string
	KeyStart int // byte offset of the key in the input
	Value    *Value
	Section  *Section
}

// Section is a "{ ... }" block (or the whole file), its items in order.
type Section struct {
	Items []Item
	Start int // offset of "{" (0 for the file)
	End   int // offset just past "}" (len for the file)
}

// Get returns the value of key, or nil.
func (s *Section) Get(key string) *Value {
	if s == nil {
		return nil
	}
	for i := range s.Items {
		if s.Items[i].Key == key && s.Items[i].Value != nil {
			return s.Items[i].Value
		}
	}
	return nil
}

// Sub returns the subsection key, or nil.
func (s *Section) Sub(key string) *Section {
	if s == nil {
		return nil
	}
	for i := range s.Items {
		if s.Items[i].Key == key && s.Items[i].Section != nil {
			return s.Items[i].Section
		}
	}
	return nil
}

// Sections returns the subsections in order.
func (s *Section) Sections() []*Item {
	if s == nil {
		return nil
	}
	var out []*Item
	for i := range s.Items {
		if s.Items[i].Section != nil {
			out = append(out, &s.Items[i])
		}
	}
	return out
}

// SyntaxError is a metadata text parse failure at byte Offset.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("metadata text: %s at byte %d", e.Msg, e.Offset)
}

type configParser struct {
	s   []byte
	pos int
}

// ParseConfig parses LVM config text. Parsing stops at the first NUL byte.
// On a syntax error it returns the items parsed so far along with the error,
// so that a caller scanning a damaged ring buffer can still use a complete
// VG section followed by garbage.
func ParseConfig(text []byte) (*Section, error) {
	if len(text) > maxConfigText {
		return nil, &SyntaxError{0, fmt.Sprintf("text of %d bytes exceeds limit of %d", len(text), maxConfigText)}
	}
	for i, c := range text {
		if c == 0 {
			text = text[:i]
			break
		}
	}
	p := &configParser{s: text}
	root := &Section{}
	err := p.items(root, 0)
	root.End = p.pos
	return root, err
}

func (p *configParser) errf(format string, a ...any) error {
	return &SyntaxError{p.pos, fmt.Sprintf(format, a...)}
}

// skip skips white space and comments.
func (p *configParser) skip() {
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			p.pos++
		case c == '#':
			for p.pos < len(p.s) && p.s[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("_-.+/:@", c) >= 0
}

// items parses items until "}" (depth > 0) or end of input (depth 0).
func (p *configParser) items(sec *Section, depth int) error {
	if depth > maxConfigDepth {
		return p.errf("sections nested deeper than %d", maxConfigDepth)
	}
	for {
		p.skip()
		if p.pos >= len(p.s) {
			if depth > 0 {
				return p.errf("unexpected end of text, missing \"}\"")
			}
			return nil
		}
		if p.s[p.pos] == '}' {
			if depth == 0 {
				return p.errf("unexpected \"}\"")
			}
			p.pos++
			sec.End = p.pos
			return nil
		}
		start := p.pos
		for p.pos < len(p.s) && isKeyByte(p.s[p.pos]) {
			p.pos++
		}
		if p.pos == start {
			return p.errf("expected a key, found %q", p.s[p.pos])
		}
		key := string(p.s[start:p.pos])
		p.skip()
		if p.pos >= len(p.s) {
			return p.errf("unexpected end of text after key %q", key)
		}
		switch p.s[p.pos] {
		case '{':
			sub := &Section{Start: p.pos}
			p.pos++
			// Append before descending so a partial parse keeps
			// what it has.
			sec.Items = append(sec.Items, Item{Key: key, KeyStart: start, Section: sub})
			if err := p.items(sub, depth+1); err != nil {
				return err
			}
		case '=':
			p.pos++
			v, err := p.value(false)
			if err != nil {
				return err
			}
			sec.Items = append(sec.Items, Item{Key: key, KeyStart: start, Value: v})
		default:
			return p.errf("expected \"=\" or \"{\" after key %q", key)
		}
	}
}

func (p *configParser) value(inList bool) (*Value, error) {
	p.skip()
	if p.pos >= len(p.s) {
		return nil, p.errf("unexpected end of text, expected a value")
	}
	start := p.pos
	switch c := p.s[p.pos]; {
	case c == '"':
		p.pos++
		var b strings.Builder
		for {
			if p.pos >= len(p.s) {
				return nil, &SyntaxError{start, "unterminated string"}
			}
			c := p.s[p.pos]
			if c == '"' {
				p.pos++
				break
			}
			if c == '\\' {
				p.pos++
				if p.pos >= len(p.s) {
					return nil, &SyntaxError{start, "unterminated string"}
				}
				c = p.s[p.pos]
			}
			b.WriteByte(c)
			p.pos++
		}
		return &Value{Kind: KindString, Str: b.String(), Start: start, End: p.pos}, nil
	case c == '[':
		if inList {
			return nil, p.errf("nested lists are not part of LVM metadata")
		}
		p.pos++
		v := &Value{Kind: KindList, Start: start}
		p.skip()
		if p.pos < len(p.s) && p.s[p.pos] == ']' {
			p.pos++
			v.End = p.pos
			return v, nil
		}
		for {
			if len(v.List) >= maxListLen {
				return nil, p.errf("list longer than %d elements", maxListLen)
			}
			e, err := p.value(true)
			if err != nil {
				return nil, err
			}
			v.List = append(v.List, *e)
			p.skip()
			if p.pos >= len(p.s) {
				return nil, &SyntaxError{start, "unterminated list"}
			}
			if p.s[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.s[p.pos] == ']' {
				p.pos++
				v.End = p.pos
				return v, nil
			}
			return nil, p.errf("expected \",\" or \"]\" in list, found %q", p.s[p.pos])
		}
	case c == '-' || c == '+' || c >= '0' && c <= '9':
		p.pos++
		for p.pos < len(p.s) && (p.s[p.pos] >= '0' && p.s[p.pos] <= '9' || p.s[p.pos] == '.' ||
			p.s[p.pos] == 'e' || p.s[p.pos] == 'E') {
			p.pos++
		}
		lit := string(p.s[start:p.pos])
		if n, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return &Value{Kind: KindInt, Int: n, Start: start, End: p.pos}, nil
		}
		if f, err := strconv.ParseFloat(lit, 64); err == nil {
			return &Value{Kind: KindFloat, Float: f, Start: start, End: p.pos}, nil
		}
		return nil, &SyntaxError{start, fmt.Sprintf("bad number %q", lit)}
	default:
		return nil, p.errf("expected a value, found %q", c)
	}
}
