package luks

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"

	//lint:ignore SA1019 old LUKS1 headers name ripemd160 as their hash: it must be readable
	"golang.org/x/crypto/ripemd160"
)

// hashFunc returns the hash named in a LUKS header (cryptsetup's names).
func hashFunc(name string) (func() hash.Hash, error) {
	switch strings.ToLower(name) {
	case "sha1":
		return sha1.New, nil
	case "sha224":
		return sha256.New224, nil
	case "sha256":
		return sha256.New, nil
	case "sha384":
		return sha512.New384, nil
	case "sha512":
		return sha512.New, nil
	case "ripemd160":
		return ripemd160.New, nil
	}
	return nil, fmt.Errorf("unsupported hash %q", name)
}
