package tui

import (
	"context"
	"errors"

	"github.com/imgtool/imgtool/ext"
)

// defaultEngine will be the extract package (the engine of imgtool
// extract) once it lands.
func defaultEngine(ctx context.Context, fsys *ext.FS, srcPaths []string, dest string, progress func(Progress)) *Summary {
	return &Summary{Err: errors.New("the extract engine is not available in this build")}
}
