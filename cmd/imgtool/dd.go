package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/imgtool/imgtool/internal/zero"
)

func newDDCmd(g *globalFlags) *cobra.Command {
	var f imageFlags
	var force bool
	var out string
	cmd := &cobra.Command{
		Use:   "dd IMAGE VOLUME [-o FILE]",
		Short: "Write a volume's raw bytes (a partition, or an LV as its own image)",
		Long: `Write the raw bytes of a volume: a partition, an LV (as its own disk image),
or, with an empty VOLUME (""), the whole virtual disk of IMAGE, which turns
a qcow2, VMDK, VHD(X) or compressed image into a raw one. With -o the output
file is written sparsely (all-zero blocks become holes).`,
		Example: `  imgtool dd disk.img p1 -o boot.img
  imgtool dd dom0.img VolGroup00/domu1 -o domu1.img
  imgtool dd dom0.img VolGroup00/domu1/VolGroup00/LogVol00 | sha256sum
  imgtool dd guest.qcow2 "" -o guest.raw`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openImages(cmd, args[0], &f, false)
			if err != nil {
				return err
			}
			defer s.Close()
			v := s.tree.Roots[0] // "": the whole (virtual) disk
			if args[1] != "" {
				if v, err = s.tree.Resolve(args[1]); err != nil {
					return err
				}
			}
			r := v.Reader()
			if r == nil {
				why := ""
				if len(v.Notes) > 0 {
					why = ": " + strings.Join(v.Notes, "; ")
				}
				return fmt.Errorf("volume %s: no bytes to read (%s)%s", v.DisplayAddress(), v.Kind, why)
			}
			if out == "" || out == "-" {
				if err := refuseTerminal(cmd.OutOrStdout(), "the raw bytes of volume "+v.DisplayAddress(), force); err != nil {
					return err
				}
				n, err := copyOut(cmd.OutOrStdout(), r, r.Size())
				if err != nil {
					return fmt.Errorf("volume %s: failed after %d bytes: %w", v.DisplayAddress(), n, err)
				}
				return nil
			}
			fh, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			n, err := copySparse(fh, io.NewSectionReader(r, 0, r.Size()))
			if err == nil {
				err = fh.Sync()
			}
			if cerr := fh.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("volume %s: failed after %d bytes: %w", v.DisplayAddress(), n, err)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to FILE (must not exist) instead of stdout")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "write to stdout even when it is a terminal")
	return cmd
}

// ddBuffer is how many bytes dd reads from the volume per call. Each
// ReadAt goes down every layer (an LV's segments, a LUKS volume, the
// image format) to a pread of the image, and a LUKS volume decrypts what
// one call read as one batch, so the per-call cost is paid once per
// 256 KiB. io.Copy to stdout read 32 KiB a call (os.File.ReadFrom falls
// back to io.Copy's buffer): on a LUKS2 aes-xts volume in the page cache
// that cost 8-20% more CPU time (pprof and perf: per call, the pread
// syscall with Go's entry and exit, every layer's ReadAt and the
// decryption's setup). 128 KiB to 512 KiB measured best; 1 MiB as good
// on a quiet machine and 5% worse on a busy one (the buffer, written by
// pread and read back by the decryption, no longer stays in the L2 cache).
// What remains is the kernel's page-cache copy and the decryption.
const ddBuffer = 256 << 10

// copyOut writes the size bytes of r to w, reading ddBuffer bytes a call.
func copyOut(w io.Writer, r io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, min(int64(ddBuffer), max(size, 0)))
	var off int64
	for off < size {
		m := int(min(int64(len(buf)), size-off))
		n, err := r.ReadAt(buf[:m], off)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return off, werr
			}
			off += int64(n)
		}
		switch {
		case n == m:
			// A full read may come with io.EOF at the end of r.
		case err == nil || err == io.EOF:
			return off, io.ErrUnexpectedEOF
		default:
			return off, err
		}
	}
	return off, nil
}

// copySparse copies src to a new file, seeking over all-zero blocks so
// the copy keeps the holes of a mostly empty volume.
func copySparse(f *os.File, src io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, err := io.ReadFull(src, buf)
		if n > 0 {
			if !zero.Is(buf[:n]) {
				if _, werr := f.WriteAt(buf[:n], off); werr != nil {
					return off, werr
				}
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return off, f.Truncate(off)
		}
		if err != nil {
			return off, err
		}
	}
}
