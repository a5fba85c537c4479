// Package luks unlocks LUKS1 and LUKS2 volumes in userspace and exposes the
// decrypted data as an io.ReaderAt, without device-mapper.
//
// On disk (cryptsetup's docs/on-disk-format.pdf and docs/on-disk-format-luks2.pdf):
//
//   - LUKS1: one 592-byte big-endian header at byte 0 (magic "LUKS\xba\xbe",
//     version 1): cipher name and mode, hash, payload offset in 512-byte
//     sectors, master-key size, a PBKDF2 digest of the master key, and eight
//     keyslots (PBKDF2 iterations + salt, the sector of the key material, the
//     anti-forensic stripe count).
//   - LUKS2: two copies of a 4096-byte binary header, each followed by a
//     JSON metadata area (together hdr_size bytes, checksummed as a whole;
//     the primary at byte 0 with magic "LUKS\xba\xbe", the secondary right
//     after it with magic "SKUL\xba\xbe"). The JSON describes keyslots
//     (pbkdf2, argon2i, argon2id), segments (where the encrypted data is,
//     its cipher and sector size) and digests (which check a master key).
//     The copy with the higher seqid that checks out is used; a damaged copy
//     is noted, never repaired (the image is read-only).
//
// Unlocking a keyslot: derive a key from the passphrase with the slot's KDF,
// decrypt the slot's key material (cipher of the slot, 512-byte sectors
// numbered from 0), merge the anti-forensic stripes (AFmerge: the stripes
// are XORed together through a hash-based diffusion), and check the result
// against the digest (PBKDF2 of the master key).
//
// Sector decryption: aes-xts-plain64/plain, aes-cbc-essiv:HASH,
// aes-cbc-plain64/plain, with 512- to 4096-byte sectors. IVs count 512-byte
// units even for larger sectors (cryptsetup does not set dm-crypt's
// iv_large_sectors for LUKS2; the fixtures' kernel goldens confirm it).
//
// Detached headers (cryptsetup luksFormat --header HDR DATA): the header
// file is a whole LUKS header and keyslot area, the data device has none,
// and the segment offset (0 as cryptsetup makes it) counts on the data
// device. Nothing in the header names its data device (LUKS2's JSON
// segment says only offset and "dynamic" size), so ParseDetached is told.
//
// The passphrase and the derived keys never leave this package: errors name
// keyslots and byte offsets, never key material.
package luks
