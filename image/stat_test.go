package image_test

import (
	"os"

	"golang.org/x/sys/unix"
)

type statT struct{ blocks int64 }

func fstat(f *os.File, st *statT) error {
	var s unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &s); err != nil {
		return err
	}
	st.blocks = s.Blocks
	return nil
}
