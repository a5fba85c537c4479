package xfs

// Test helpers for the external test package (xfs_test), which may import
// inspect.
var (
	ReadManifest = readManifest
	WalkTree     = walkTree
	CompareTree  = compareTree
	AllCols      = allCols
)

type ManifestRow = manifestRow
