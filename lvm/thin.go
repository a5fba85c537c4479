package lvm

func (lv *LV) thinReader(s *Segment, depth int) (segReader, error) { return nil, ErrNotReadable }
