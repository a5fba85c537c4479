package ext

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"sync"
	"testing"
)

// TestConcurrentReads: an FS is shared by goroutines (extract tools read
// files in parallel); run with -race to check the caches and notes.
func TestConcurrentReads(t *testing.T) {
	fsys, _ := openFixture(t, "ext4-1k-inline")
	man := loadManifest(t)
	paths := walkInodes(t, fsys)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, e := range man {
				if i%4 != w || e.SHA256 == "" || e.Size > 1<<20 {
					continue
				}
				f, err := fsys.OpenInode(paths[e.Path])
				if err != nil {
					t.Errorf("%s: %v", e.Path, err)
					continue
				}
				h := sha256.New()
				if _, err := io.Copy(h, io.NewSectionReader(f, 0, f.Size())); err != nil {
					t.Errorf("%s: %v", e.Path, err)
				}
				if got := hex.EncodeToString(h.Sum(nil)); got != e.SHA256 {
					t.Errorf("%s: sha256 %s, want %s", e.Path, got, e.SHA256)
				}
				fsys.Xattrs(paths[e.Path])
				fsys.Notes()
			}
		}()
	}
	wg.Wait()
}
