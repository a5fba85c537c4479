module github.com/imgtool/imgtool

go 1.26.8

require (
	github.com/spf13/cobra v1.10.1
	github.com/ulikunitz/xz v0.5.15
	golang.org/x/sys v0.40.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
)
