package undelete

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/imgtool/imgtool/ext"
)

// nameRef is where a deleted inode was named.
type nameRef struct {
	parent uint32
	name   string
	from   string
}

// names finds a name for every candidate: older copies of directory
// blocks in the journal first (newest transaction first), then deleted
// entries still in the slack of directory blocks on disk.
func (s *scanner) names() {
	found := map[uint32]nameRef{}
	owner := map[uint64]uint32{} // directory block -> directory inode
	var dirBlocks []uint64
	addDir := func(ino uint32, data []ext.Extent) {
		for _, e := range data {
			for i := uint64(0); i < e.Len && i < 1<<16; i++ {
				if _, ok := owner[e.Physical+i]; !ok {
					owner[e.Physical+i] = ino
					dirBlocks = append(dirBlocks, e.Physical+i)
				}
			}
		}
	}
	for _, d := range s.liveDirs {
		if m, err := s.cur.BlockMap(d); err == nil || len(m) > 0 {
			addDir(d, m)
		}
	}
	for ino, c := range s.cands {
		if c.IsDir() {
			addDir(ino, c.data)
		}
	}
	// dirNames: names of directories (by d_type), for the paths of
	// deleted files whose directory is gone and its inode reused since.
	dirNames := map[uint32]nameRef{}
	record := func(ino uint32, name string, ft uint8, ref nameRef) {
		if c, ok := s.cands[ino]; ok && !c.IsDir() {
			if _, done := found[ino]; !done {
				found[ino] = ref
			}
			return
		}
		if ft == ext.FTDir || !s.cur.HasFiletype() {
			if _, done := dirNames[ino]; !done {
				dirNames[ino] = ref
			}
		}
	}
	buf := make([]byte, s.bs)
	if s.hist != nil {
		for _, c := range s.hist.Copies {
			dir, known := owner[c.Block]
			if err := s.hist.Read(c, buf); err != nil {
				continue
			}
			if !known {
				// The first block of a directory names itself.
				if ino, ok := dotOwner(buf); ok {
					dir, known = ino, true
				}
			}
			if !known {
				continue
			}
			s.parseDirBlock(buf, false, func(ino uint32, name string, ft uint8) {
				record(ino, name, ft, nameRef{dir, name, fmt.Sprintf("journal copy of directory block %d (transaction %d)", c.Block, c.TID)})
			})
		}
	}
	for _, b := range dirBlocks {
		if n, _ := s.curR.ReadAt(buf, int64(b)*s.bs); n < len(buf) {
			continue
		}
		dir := owner[b]
		s.parseDirBlock(buf, true, func(ino uint32, name string, ft uint8) {
			record(ino, name, ft, nameRef{dir, name, fmt.Sprintf("deleted entry in directory block %d", b)})
		})
	}
	var pathOf func(ino uint32, depth int) string
	pathOf = func(ino uint32, depth int) string {
		if p, ok := s.live[ino]; ok {
			return p
		}
		ref, ok := dirNames[ino]
		if !ok || depth > 64 || !cleanName(ref.name) {
			return fmt.Sprintf("#deleted/%d", ino)
		}
		return pathOf(ref.parent, depth+1) + "/" + ref.name
	}
	for ino, c := range s.cands {
		ref, ok := found[ino]
		if c.IsDir() {
			ref, ok = dirNames[ino]
		}
		if ok && cleanName(ref.name) {
			c.Path = pathOf(ref.parent, 0) + "/" + ref.name
			c.NameFrom = ref.from
		}
	}
}

// dotOwner returns the inode of "." when b starts like a directory's
// first block.
func dotOwner(b []byte) (uint32, bool) {
	le := binary.LittleEndian
	if len(b) < 24 || le.Uint16(b[4:]) != 12 || b[6] != 1 || b[8] != '.' {
		return 0, false
	}
	ino := le.Uint32(b)
	if ino == 0 || le.Uint32(b[12:]) == 0 || b[18] != 2 || b[20] != '.' || b[21] != '.' {
		return 0, false
	}
	return ino, true
}

// parseDirBlock calls fn for every entry of a directory block whose
// rec_len chain is valid; with slack, also for the deleted entries that
// hide in the room after each entry's name.
func (s *scanner) parseDirBlock(b []byte, slack bool, fn func(ino uint32, name string, ft uint8)) {
	le := binary.LittleEndian
	end := len(b)
	for p := 0; p+8 <= end; {
		ino := le.Uint32(b[p:])
		rl := int(le.Uint16(b[p+4:]))
		nl := int(b[p+6])
		if rl < 8 || rl%4 != 0 || p+rl > end || (ino != 0 && 8+nl > rl) {
			return // not a directory block, or damaged past here
		}
		if ino != 0 && nl > 0 {
			if name := string(b[p+8 : p+8+nl]); validName(name) && name != "." && name != ".." {
				fn(ino, name, b[p+7])
			}
		}
		if slack {
			used := 8
			if ino != 0 {
				used = (8 + nl + 3) &^ 3
			}
			s.hidden(b[p+used:p+rl], fn)
		}
		p += rl
	}
}

// hidden looks for deleted entries in the slack of an entry: what an
// unlink left when it merged the entry into the one before.
func (s *scanner) hidden(b []byte, fn func(ino uint32, name string, ft uint8)) {
	le := binary.LittleEndian
	for p := 0; p+12 <= len(b); p += 4 {
		ino := le.Uint32(b[p:])
		rl := int(le.Uint16(b[p+4:]))
		nl := int(b[p+6])
		if ino < 11 || ino > s.sb.InodesCount || nl == 0 || rl < 8+nl || rl%4 != 0 || p+8+nl > len(b) {
			continue
		}
		if c, ok := s.cands[ino]; ok {
			if s.cur.HasFiletype() && b[p+7] != ext.FTOfMode(c.Mode) {
				continue
			}
		} else if b[p+7] != ext.FTDir {
			continue // only deleted files, and directories for paths
		}
		if name := string(b[p+8 : p+8+nl]); validName(name) {
			fn(ino, name, b[p+7])
		}
	}
}

func validName(n string) bool {
	if n == "" || !utf8.ValidString(n) || strings.ContainsAny(n, "/\x00") {
		return false
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
