package luks

import (
	"crypto/pbkdf2"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"sort"

	"golang.org/x/crypto/argon2"
)

// derive runs the keyslot's key derivation on the passphrase.
func (ks *Keyslot) derive(pass []byte) ([]byte, error) {
	switch ks.KDF {
	case "pbkdf2":
		hf, err := hashFunc(ks.Hash)
		if err != nil {
			return nil, err
		}
		return pbkdf2.Key(hf, string(pass), ks.Salt, ks.Iterations, ks.AreaKeyBytes)
	case "argon2i":
		return argon2.Key(pass, ks.Salt, uint32(ks.Iterations), uint32(ks.Memory), uint8(ks.CPUs), uint32(ks.AreaKeyBytes)), nil
	case "argon2id":
		return argon2.IDKey(pass, ks.Salt, uint32(ks.Iterations), uint32(ks.Memory), uint8(ks.CPUs), uint32(ks.AreaKeyBytes)), nil
	}
	return nil, fmt.Errorf("unsupported key derivation %q", ks.KDF)
}

// openSlot returns the master key stored in keyslot ks if pass opens it.
func (h *Header) openSlot(ks *Keyslot, pass []byte) ([]byte, error) {
	dk, err := ks.derive(pass)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	c, err := newSectorCipher(ks.AreaCipher, dk)
	if err != nil {
		return nil, fmt.Errorf("key material cipher: %w", err)
	}
	n := ks.Stripes * ks.KeyBytes
	// The key material is encrypted in 512-byte sectors numbered from 0.
	mat := make([]byte, (n+sectorSize512-1)/sectorSize512*sectorSize512)
	defer clear(mat)
	if int64(len(mat)) > h.size-ks.AreaOffset {
		mat = mat[:n] // a short area at the very end: only whole sectors decrypt
	}
	if _, err := h.r.ReadAt(mat, ks.AreaOffset); err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading key material at byte %d: %w", ks.AreaOffset, err)
	}
	c.decrypt(mat[:len(mat)/sectorSize512*sectorSize512], sectorSize512, 0)
	hf, err := hashFunc(ks.AFHash)
	if err != nil {
		return nil, err
	}
	mk := make([]byte, ks.KeyBytes)
	afMerge(mk, mat, ks.Stripes, hf)
	d := h.digestFor(ks.ID)
	if d == nil {
		clear(mk)
		return nil, errors.New("no digest for this keyslot")
	}
	if !d.check(mk) {
		clear(mk)
		return nil, ErrWrongKey
	}
	return mk, nil
}

func (d *digest) check(mk []byte) bool {
	hf, err := hashFunc(d.hash)
	if err != nil {
		return false
	}
	sum, err := pbkdf2.Key(hf, string(mk), d.salt, d.iterations, len(d.sum))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(sum, d.sum) == 1
}

// Unlock tries every keyslot (high priority first, priority 0 never
// unless named) with the passphrase or key-file content pass and returns
// the decrypted data volume. When no slot opens, the error wraps
// ErrWrongKey; it never contains key material.
func (h *Header) Unlock(pass []byte) (*Volume, error) {
	slots := append([]Keyslot(nil), h.Keyslots...)
	sort.SliceStable(slots, func(i, j int) bool { return slots[i].Priority > slots[j].Priority })
	var errs []error
	tried := 0
	for i := range slots {
		ks := &slots[i]
		if ks.Priority == 0 {
			continue
		}
		tried++
		mk, err := h.openSlot(ks, pass)
		if errors.Is(err, ErrWrongKey) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("keyslot %d: %w", ks.ID, err))
			continue
		}
		v, err := h.volume(mk)
		clear(mk)
		return v, err
	}
	if tried == 0 {
		return nil, fmt.Errorf("luks: %s has no usable keyslot", h.UUID)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("luks: %w (%v)", ErrWrongKey, errors.Join(errs...))
	}
	return nil, fmt.Errorf("luks: %w (%d keyslots tried)", ErrWrongKey, tried)
}

// UnlockWithMasterKey opens the data with a known master key (for tests
// and for volumes whose header is lost but whose key was saved).
func (h *Header) UnlockWithMasterKey(mk []byte) (*Volume, error) {
	if len(h.digests) > 0 && !h.digests[0].check(mk) {
		return nil, fmt.Errorf("luks: %w (master key does not match the digest)", ErrWrongKey)
	}
	return h.volume(mk)
}
