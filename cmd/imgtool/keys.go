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
}

func (k *keyFlags) register(fs interface {
	StringArrayVar(p *[]string, name string, value []string, usage string)
	BoolVar(p *bool, name string, value bool, usage string)
}) {
	fs.StringArrayVar(&k.keyFiles, "key-file", nil, "open LUKS volumes with the content of `FILE` (as cryptsetup --key-file; repeatable, each key is tried on every LUKS volume)")
	fs.BoolVar(&k.fromStdin, "keys-from-stdin", false, "read LUKS passphrases from stdin, one per line (tried on every LUKS volume); without keys, a terminal is prompted")
}

// maxKeyFile is cryptsetup's default key-file size limit.
const maxKeyFile = 8 << 20

// options builds the inspect key options: key files, then stdin lines, and
// a terminal prompt when neither was given and stdin is a terminal.
func (k *keyFlags) options(stdin io.Reader, stderr io.Writer) (inspect.KeyOptions, error) {
	var ko inspect.KeyOptions
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
