package lvm

import "github.com/imgtool/imgtool/image"

type snapshotRef struct {
	seg    *Segment
	holder *LV // the hidden snapshotN LV
	origin *LV
}

func (lv *LV) openSnapshot() (image.ReaderAtSize, error) { return nil, ErrNotReadable }
