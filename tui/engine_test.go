package tui

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	tea "charm.land/bubbletea/v2"
)

// The real engine honours the context the UI cancels with esc: with ctx
// already cancelled nothing is copied and the summary's error is
// context.Canceled (which the summary box words as "cancelled").
func TestDefaultEngineStopsOnCancel(t *testing.T) {
	tree := openTree(t, "dom0")
	m := New(tree, Options{})
	_, cmd := m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	drive(m, cmd)
	m.vols.find(guestRoot)
	drive(m, m.enterVolume())
	if m.files.fsys == nil {
		t.Fatal("guest root not opened")
	}
	dest := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := defaultEngine(ctx, m.files.fsys, []string{"/home/alice"}, dest, func(Progress) {})
	if !errors.Is(s.Err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", s.Err)
	}
	ents, _ := os.ReadDir(dest)
	if len(ents) != 0 {
		t.Errorf("cancelled run copied %d entries", len(ents))
	}
	// The same call without the cancel copies the tree: the test above
	// is not passing because nothing works.
	s = defaultEngine(context.Background(), m.files.fsys, []string{"/home/alice"}, dest, func(Progress) {})
	if s.Err != nil {
		t.Fatalf("uncancelled run: %v", s.Err)
	}
	if _, err := os.Stat(filepath.Join(dest, "alice", "notes.txt")); err != nil {
		t.Errorf("uncancelled run: %v", err)
	}
}
