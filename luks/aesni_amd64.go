package luks

import "golang.org/x/sys/cpu"

//go:noescape
func ecbDecBlocks(rk *byte, nr int, buf *byte, n int)

//go:noescape
func ecbEncBlocks(rk *byte, nr int, buf *byte, n int)

//go:noescape
func xtsDecBlocks(rk *byte, nr int, buf *byte, n int, tweak *byte)

//go:noescape
func xtsDecSectorsVAES(rk *byte, nr int, buf *byte, nsec int, blocks int, tweaks *byte)

func cpuid7() (ebx, ecx uint32)

var haveAESNI = cpu.X86.HasAES && cpu.X86.HasSSE41

// haveVAES: AES and carry-less multiplication on 256-bit registers (VAES
// and VPCLMULQDQ, CPUID leaf 7 ECX bits 9 and 10; AMD Zen 3 and Intel Ice
// Lake onwards). x/sys/cpu reports them only with AVX-512, but the VEX
// (AVX2) forms used here need just AVX2 with the OS saving YMM state.
var haveVAES = func() bool {
	if !haveAESNI || !cpu.X86.HasAVX2 || !cpu.X86.HasPCLMULQDQ {
		return false
	}
	_, ecx := cpuid7()
	return ecx&(1<<9) != 0 && ecx&(1<<10) != 0
}()

// ecbDecrypt decrypts buf (whole 16-byte blocks) in place with the
// decryption key schedule dk of nr rounds.
func ecbDecrypt(dk []byte, nr int, buf []byte) {
	if len(buf) >= 16 {
		ecbDecBlocks(&dk[0], nr, &buf[0], len(buf)/16)
	}
}

// ecbEncrypt encrypts buf (whole 16-byte blocks) in place with the
// encryption key schedule ek of nr rounds.
func ecbEncrypt(ek []byte, nr int, buf []byte) {
	if len(buf) >= 16 {
		ecbEncBlocks(&ek[0], nr, &buf[0], len(buf)/16)
	}
}

// xtsDecryptSectorsNI XTS-decrypts len(tweaks)/16 sectors of ss bytes (a
// multiple of 256) at the start of buf, sector i's first tweak being
// tweaks[16i:], with VAES when vaes is set, else AES-NI one sector a call.
func xtsDecryptSectorsNI(dk []byte, nr int, buf []byte, ss int, tweaks []byte, vaes bool) {
	k := len(tweaks) / 16
	if vaes {
		_ = buf[k*ss-1]
		xtsDecSectorsVAES(&dk[0], nr, &buf[0], k, ss/16, &tweaks[0])
		return
	}
	for i := 0; i < k; i++ {
		sec := buf[i*ss : (i+1)*ss]
		xtsDecBlocks(&dk[0], nr, &sec[0], ss/16, &tweaks[16*i])
	}
}
