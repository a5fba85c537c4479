//go:build !amd64

package luks

const haveAESNI = false

func ecbDecrypt(dk []byte, nr int, buf []byte) { panic("luks: no AES-NI path on this architecture") }

func xtsDecryptSectorNI(dk []byte, nr int, sec []byte, t *[16]byte) {
	panic("luks: no AES-NI path on this architecture")
}
