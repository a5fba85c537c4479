package salvage

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/imgtool/imgtool/extract"
)

// childName decides what becomes of one directory entry, for both walkers
// (ext's and the vfs one): src is the directory's path, dname the entry's
// name, seen the names already taken in that directory (updated). It
// returns the entry's source path and the name it is extracted under. A
// name that cannot exist on the host ('/' or NUL inside, empty) is still
// extracted, under "#INO": renamed says so. refused is set when the entry
// is not followed at all (a "." or ".." where a name belongs: a loop; or a
// name that appears twice): the caller records it as lost.
func childName(seen map[string]struct{}, src, dname string, ino uint64) (child, name string, renamed, refused error) {
	child, name = extract.JoinSrc(src, dname), dname
	if err := extract.CheckName(dname); err != nil {
		if dname == "." || dname == ".." {
			return child, name, nil, err
		}
		name = "#" + strconv.FormatUint(ino, 10)
		renamed = fmt.Errorf("%v: extracted as %s", err, extract.JoinSrc(src, name))
	}
	if _, dup := seen[name]; dup {
		return child, name, renamed, errors.New("name appears twice in the directory; the first entry was extracted")
	}
	seen[name] = struct{}{}
	return child, name, renamed, nil
}
