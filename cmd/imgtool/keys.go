package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/imgtool/imgtool/inspect"
	"golang.org/x/sys/unix"
)

// keyFlags are the ways to give LUKS keys, as guestfish takes them.
type keyFlags struct {
	keyFiles  []string
	fromStdin bool
	headers   []string
}

func (k *keyFlags) register(fs interface {
	StringArrayVar(p *[]string, name string, value []string, usage string)
	BoolVar(p *bool, name string, value bool, usage string)
}) {
	fs.StringArrayVar(&k.keyFiles, "key-file", nil, "open LUKS volumes with the content of `FILE` (as cryptsetup --key-file; repeatable, each key is tried on every LUKS volume)")
	fs.StringArrayVar(&k.headers, "luks-header", nil, "a detached LUKS header (cryptsetup luksFormat --header): `[VOLUME=]FILE` opens VOLUME (e.g. p1, VG/LV; without it, the whole first image) as its encrypted data; repeatable")
	fs.BoolVar(&k.fromStdin, "keys-from-stdin", false, "read LUKS passphrases from stdin, one per line (tried on every LUKS volume); without keys, a terminal is prompted")
}

// maxKeyFile is cryptsetup's default key-file size limit.
const maxKeyFile = 8 << 20

// maxHeaderFile bounds a detached header file: LUKS2 metadata is at most
// 2 x 4 MiB and cryptsetup's keyslot area defaults to 16 MiB.
const maxHeaderFile = 64 << 20

// detachedHeader reads a --luks-header argument, [VOLUME=]FILE: an
// existing file named by the whole argument is the header of the first
// image's whole disk, else the argument splits at its first "=".
func detachedHeader(arg string) (inspect.DetachedHeader, error) {
	addr, file := "", arg
	if _, err := os.Stat(arg); err != nil {
		if a, f, ok := strings.Cut(arg, "="); ok {
			addr, file = strings.Trim(a, "/"), f
		}
	}
	f, err := os.Open(file)
	if err != nil {
		return inspect.DetachedHeader{}, fmt.Errorf("--luks-header: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxHeaderFile+1))
	if err != nil {
		return inspect.DetachedHeader{}, fmt.Errorf("--luks-header %s: %w", file, err)
	}
	if len(b) > maxHeaderFile {
		return inspect.DetachedHeader{}, fmt.Errorf("--luks-header %s: larger than %d bytes", file, maxHeaderFile)
	}
	return inspect.DetachedHeader{Address: addr, Name: file, R: bytes.NewReader(b), Size: int64(len(b))}, nil
}

// options builds the inspect key options: key files, then stdin lines, and
// a terminal prompt when neither was given and stdin is a terminal.
func (k *keyFlags) options(stdin io.Reader, stderr io.Writer) (inspect.KeyOptions, error) {
	var ko inspect.KeyOptions
	for _, a := range k.headers {
		h, err := detachedHeader(a)
		if err != nil {
			return ko, err
		}
		ko.Headers = append(ko.Headers, h)
	}
	for _, p := range k.keyFiles {
		f, err := os.Open(p)
		if err != nil {
			return ko, fmt.Errorf("--key-file: %w", err)
		}
		b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
		f.Close()
		if err != nil {
			return ko, fmt.Errorf("--key-file %s: %w", p, err)
		}
		if len(b) > maxKeyFile {
			return ko, fmt.Errorf("--key-file %s: larger than %d bytes", p, maxKeyFile)
		}
		if len(b) == 0 {
			return ko, fmt.Errorf("--key-file %s: empty", p)
		}
		ko.Keys = append(ko.Keys, b)
	}
	if k.fromStdin {
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 4096), maxKeyFile)
		for sc.Scan() {
			l := bytes.TrimSuffix(sc.Bytes(), []byte("\r"))
			ko.Keys = append(ko.Keys, append([]byte(nil), l...))
		}
		if err := sc.Err(); err != nil {
			return ko, fmt.Errorf("--keys-from-stdin: %w", err)
		}
		if len(ko.Keys) == 0 {
			return ko, errors.New("--keys-from-stdin: no key on stdin")
		}
	}
	if len(k.keyFiles) == 0 && !k.fromStdin {
		if f, ok := stdin.(*os.File); ok && isTerminal(f) {
			ko.Prompt = func(address, uuid string) ([]byte, error) {
				return promptPassphrase(f, stderr, fmt.Sprintf("Enter passphrase for LUKS volume %s (%s): ", address, uuid))
			}
		}
	}
	return ko, nil
}

// promptPassphrase reads one line from the terminal with echo off.
func promptPassphrase(tty *os.File, out io.Writer, prompt string) ([]byte, error) {
	fd := int(tty.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	t := *old
	t.Lflag &^= unix.ECHO
	t.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, err
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	fmt.Fprint(out, prompt)
	defer fmt.Fprintln(out)
	var line []byte
	var b [1]byte
	for {
		n, err := tty.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			line = append(line, b[0])
			continue
		}
		if err != nil {
			if len(line) == 0 {
				return nil, fmt.Errorf("no passphrase: %w", err)
			}
			break
		}
	}
	return []byte(strings.TrimSuffix(string(line), "\r")), nil
}

// lockedLUKS returns an error when keys were given but no LUKS volume in
// the tree opened with them (a wrong passphrase or key file).
func lockedLUKS(t *inspect.Tree) error {
	var wrong []string
	opened := false
	for _, v := range t.Volumes() {
		if v.LUKS == nil {
			continue
		}
		if !v.LUKS.Locked {
			opened = true
		} else if v.LUKS.WrongKey {
			wrong = append(wrong, fmt.Sprintf("%s (LUKS%d %s)", v.DisplayAddress(), v.LUKS.Version, v.LUKS.UUID))
		}
	}
	if opened || len(wrong) == 0 {
		return nil
	}
	return fmt.Errorf("wrong passphrase or key file: no keyslot of %s matches", strings.Join(wrong, ", "))
}
