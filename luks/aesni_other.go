//go:build !amd64

package luks

const (
	haveAESNI = false
	haveVAES  = false
)

func ecbDecrypt(dk []byte, nr int, buf []byte) { panic("luks: no AES-NI path on this architecture") }

func ecbEncrypt(ek []byte, nr int, buf []byte) { panic("luks: no AES-NI path on this architecture") }

func xtsDecryptSectorsNI(dk []byte, nr int, buf []byte, ss int, tweaks []byte, vaes bool) {
	panic("luks: no AES-NI path on this architecture")
}
