package luks

import "golang.org/x/sys/cpu"

//go:noescape
func ecbDecBlocks(rk *byte, nr int, buf *byte, n int)

//go:noescape
func xtsDecBlocks(rk *byte, nr int, buf *byte, n int, tweak *byte)

// xtsDecryptSectorNI XTS-decrypts one sector (a multiple of 128 bytes)
// whose first tweak is t.
func xtsDecryptSectorNI(dk []byte, nr int, sec []byte, t *[16]byte) {
	xtsDecBlocks(&dk[0], nr, &sec[0], len(sec)/16, &t[0])
}

var haveAESNI = cpu.X86.HasAES && cpu.X86.HasSSE41

// ecbDecrypt decrypts buf (whole 16-byte blocks) in place with the
// decryption key schedule dk of nr rounds.
func ecbDecrypt(dk []byte, nr int, buf []byte) {
	if len(buf) >= 16 {
		ecbDecBlocks(&dk[0], nr, &buf[0], len(buf)/16)
	}
}
