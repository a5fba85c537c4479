package main

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestAddFlagEverywhere (issue 13.8: move the extra-image flag to a
// spelling that clashes with no convention, in every command): every
// command that opens images takes --add IMAGE; in ls, -a is GNU's --all
// and has no other meaning, so `ls -la IMG VOL:/ --add IMG2 --add IMG3`
// lists a filesystem on an MD array spread over three images.
func TestAddFlagEverywhere(t *testing.T) {
	root, _ := newRoot(io.Discard, io.Discard)
	n := 0
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			walk(s)
		}
		if c.Flags().Lookup("no-journal") == nil { // imageFlags not registered: no images opened
			return
		}
		n++
		add := c.Flags().Lookup("add")
		if add == nil {
			t.Errorf("%s opens images but has no --add", c.CommandPath())
			return
		}
		if c.Name() == "ls" {
			if add.Shorthand != "" {
				t.Errorf("ls: --add has the short form -%s", add.Shorthand)
			}
			if all := c.Flags().ShorthandLookup("a"); all == nil || all.Name != "all" {
				t.Errorf("ls: -a is %v, want --all", all)
			}
		}
	}
	walk(root)
	if n < 8 {
		t.Errorf("only %d commands open images: the walk found nothing to check", n)
	}
	md := mdArgs(t, "r5lvm", 3) // IMG0 --add IMG1 --add IMG2
	out, errs, code := imgtool(t, append([]string{"ls", "-la", md[0], "md-r5lvm/vgmd/data:/"}, md[1:]...)...)
	if code != exitOK || !strings.Contains(out, "lost+found") {
		t.Errorf("ls -la over --add: exit %d, %q, %q", code, out, errs)
	}
}
