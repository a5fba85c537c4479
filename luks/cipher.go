package luks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
)

// sectorCipher decrypts whole sectors in place.
type sectorCipher interface {
	// decrypt decrypts buf (a whole number of sectorSize-byte sectors);
	// the first sector's IV number is iv, the next one's iv+sectorSize/512
	// (dm-crypt counts IVs in 512-byte units).
	decrypt(buf []byte, sectorSize int, iv uint64)
}

// newSectorCipher builds the cipher of a dm-crypt spec "CIPHER-MODE-IV"
// (e.g. aes-xts-plain64, aes-cbc-essiv:sha256) with key.
func newSectorCipher(spec string, key []byte) (sectorCipher, error) {
	parts := strings.SplitN(strings.ToLower(spec), "-", 3)
	if len(parts) < 2 {
		return nil, fmt.Errorf("cipher %q is not CIPHER-MODE-IV", spec)
	}
	if parts[0] != "aes" {
		return nil, fmt.Errorf("cipher %q is not supported (only aes)", spec)
	}
	mode, ivmode := parts[1], ""
	if len(parts) == 3 {
		ivmode = parts[2]
	}
	ivKind := func() (ivGen, error) {
		switch {
		case ivmode == "plain64":
			return ivPlain64, nil
		case ivmode == "plain":
			return ivPlain, nil
		case ivmode == "plain64be":
			return ivPlain64BE, nil
		}
		return 0, fmt.Errorf("IV mode %q of cipher %q is not supported", ivmode, spec)
	}
	switch mode {
	case "xts":
		if len(key) != 32 && len(key) != 64 {
			return nil, fmt.Errorf("cipher %q: a %d-byte key is not AES-128/256-XTS", spec, len(key))
		}
		g, err := ivKind()
		if err != nil {
			return nil, err
		}
		k1, err := aes.NewCipher(key[:len(key)/2])
		if err != nil {
			return nil, err
		}
		k2, err := aes.NewCipher(key[len(key)/2:])
		if err != nil {
			return nil, err
		}
		x := &xtsCipher{k1: k1, k2: k2, iv: g}
		x.setPath(bestXTSPath(), key)
		return x, nil
	case "cbc":
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("cipher %q: %v", spec, err)
		}
		c := &cbcCipher{b: b}
		if haveAESNI {
			c.dk, c.nr = decKeySchedule(key)
		}
		if h, ok := strings.CutPrefix(ivmode, "essiv:"); ok {
			hf, err := hashFunc(h)
			if err != nil {
				return nil, fmt.Errorf("cipher %q: %v", spec, err)
			}
			hh := hf()
			hh.Write(key)
			salt := hh.Sum(nil)
			if c.essiv, err = aes.NewCipher(salt); err != nil {
				return nil, fmt.Errorf("cipher %q: ESSIV key of %d bytes: %v", spec, len(salt), err)
			}
			c.iv = ivESSIV
			return c, nil
		}
		if c.iv, err = ivKind(); err != nil {
			return nil, err
		}
		return c, nil
	case "ecb":
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("cipher %q: %v", spec, err)
		}
		return &ecbCipher{b: b}, nil
	}
	return nil, fmt.Errorf("cipher mode %q of %q is not supported", mode, spec)
}

type ivGen int

const (
	ivPlain64 ivGen = iota
	ivPlain
	ivPlain64BE
	ivESSIV
)

func (g ivGen) fill(iv *[16]byte, n uint64) {
	*iv = [16]byte{}
	switch g {
	case ivPlain64, ivESSIV:
		binary.LittleEndian.PutUint64(iv[:], n)
	case ivPlain:
		binary.LittleEndian.PutUint32(iv[:], uint32(n))
	case ivPlain64BE:
		binary.BigEndian.PutUint64(iv[8:], n)
	}
}

// xtsCipher is AES-XTS (IEEE 1619) on whole sectors: the sector's IV,
// encrypted with the second key, is the tweak of its first block; each
// next block's tweak is the previous one times x in GF(2^128).
type xtsCipher struct {
	k1, k2 cipher.Block
	iv     ivGen
	path   xtsPath
	dk     []byte // AES-NI decryption schedule of k1, or nil
	ek2    []byte // AES-NI encryption schedule of k2, or nil
	nr     int
}

// xtsPath is the implementation of the XTS sector loop.
type xtsPath int

const (
	xtsGo   xtsPath = iota // crypto/aes one block a call, tweaks in Go
	xtsNI                  // AES-NI, eight blocks interleaved, one sector a call
	xtsVAES                // VAES on 256-bit registers, sixteen blocks in flight, many sectors a call
)

// bestXTSPath is the fastest implementation this CPU has.
func bestXTSPath() xtsPath {
	switch {
	case haveVAES:
		return xtsVAES
	case haveAESNI:
		return xtsNI
	}
	return xtsGo
}

// batch is how many bytes the AES-NI paths decrypt per call.
const batch = 64 << 10

// tweakBatch is how many sectors' first tweaks are encrypted in one call
// (with 512-byte sectors, crypto/aes's Encrypt per sector cost a quarter
// of the decryption time).
const tweakBatch = 32

var scratchPool = sync.Pool{New: func() any { b := make([]byte, batch); return &b }}

func (x *xtsCipher) decrypt(buf []byte, ss int, n uint64) {
	step := uint64(ss / sectorSize512)
	if x.path == xtsGo {
		var t [16]byte
		for s := 0; s+ss <= len(buf); s, n = s+ss, n+step {
			x.iv.fill(&t, n)
			x.k2.Encrypt(t[:], t[:])
			xtsDecryptSector(x.k1, buf[s:s+ss], &t)
		}
		return
	}
	var tw [tweakBatch * 16]byte
	for len(buf) >= ss {
		k := min(len(buf)/ss, tweakBatch)
		for i := 0; i < k; i++ {
			x.iv.fill((*[16]byte)(tw[16*i:]), n+uint64(i)*step)
		}
		ecbEncrypt(x.ek2, x.nr, tw[:16*k])
		xtsDecryptSectorsNI(x.dk, x.nr, buf, ss, tw[:16*k], x.path == xtsVAES)
		buf = buf[k*ss:]
		n += uint64(k) * step
	}
}

// setPath selects the implementation p (which the CPU must have) for the
// XTS key (both halves).
func (x *xtsCipher) setPath(p xtsPath, key []byte) {
	x.path, x.dk, x.ek2 = p, nil, nil
	if p != xtsGo {
		x.dk, x.nr = decKeySchedule(key[:len(key)/2])
		x.ek2, _ = encKeySchedule(key[len(key)/2:])
	}
}

// xtsDecryptSector decrypts one sector given its first tweak t.
func xtsDecryptSector(b cipher.Block, sec []byte, t *[16]byte) {
	lo := binary.LittleEndian.Uint64(t[0:])
	hi := binary.LittleEndian.Uint64(t[8:])
	for i := 0; i+16 <= len(sec); i += 16 {
		blk := (*[16]byte)(sec[i : i+16])
		a := binary.LittleEndian.Uint64(blk[0:]) ^ lo
		c := binary.LittleEndian.Uint64(blk[8:]) ^ hi
		binary.LittleEndian.PutUint64(blk[0:], a)
		binary.LittleEndian.PutUint64(blk[8:], c)
		b.Decrypt(blk[:], blk[:])
		binary.LittleEndian.PutUint64(blk[0:], binary.LittleEndian.Uint64(blk[0:])^lo)
		binary.LittleEndian.PutUint64(blk[8:], binary.LittleEndian.Uint64(blk[8:])^hi)
		carry := hi >> 63
		hi = hi<<1 | lo>>63
		lo = lo<<1 ^ (0x87 & -carry)
	}
}

// cbcCipher is AES-CBC per sector with a plain or ESSIV IV.
type cbcCipher struct {
	b     cipher.Block
	essiv cipher.Block
	iv    ivGen
	dk    []byte // AES-NI decryption schedule, or nil
	nr    int
}

func (c *cbcCipher) decrypt(buf []byte, ss int, n uint64) {
	var iv, prev [16]byte
	if c.dk != nil {
		// P_i = D(C_i) XOR C_(i-1), C_(-1) = IV: the previous blocks are
		// copied aside, the batch decrypted in one pass, then XORed.
		sp := scratchPool.Get().(*[]byte)
		defer scratchPool.Put(sp)
		for len(buf) >= ss {
			m := min(len(buf), batch) / ss * ss
			pv := (*sp)[:m]
			for s := 0; s < m; s, n = s+ss, n+uint64(ss/sectorSize512) {
				c.iv.fill(&iv, n)
				if c.essiv != nil {
					c.essiv.Encrypt(iv[:], iv[:])
				}
				copy(pv[s:s+16], iv[:])
				copy(pv[s+16:s+ss], buf[s:s+ss-16])
			}
			b := buf[:m]
			ecbDecrypt(c.dk, c.nr, b)
			subtle.XORBytes(b, b, pv)
			buf = buf[m:]
		}
		return
	}
	for s := 0; s+ss <= len(buf); s, n = s+ss, n+uint64(ss/sectorSize512) {
		c.iv.fill(&iv, n)
		if c.essiv != nil {
			c.essiv.Encrypt(iv[:], iv[:])
		}
		sec := buf[s : s+ss]
		for i := 0; i+16 <= len(sec); i += 16 {
			blk := sec[i : i+16]
			copy(prev[:], blk)
			c.b.Decrypt(blk, blk)
			subtleXOR(blk, iv[:])
			iv = prev
		}
	}
}

type ecbCipher struct{ b cipher.Block }

func (c *ecbCipher) decrypt(buf []byte, _ int, _ uint64) {
	for i := 0; i+16 <= len(buf); i += 16 {
		c.b.Decrypt(buf[i:i+16], buf[i:i+16])
	}
}

func subtleXOR(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}
