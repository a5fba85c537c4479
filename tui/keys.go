package tui

import "charm.land/bubbles/v2/key"

// keyMap holds every key binding; the help pane (?) is generated from it,
// so what is shown is exactly what is bound.
type keyMap struct {
	Up, Down, PageUp, PageDown, Top, Bottom key.Binding
	Enter, Back, Root, Tab                  key.Binding
	Filter, Dotfiles                        key.Binding
	Mark, MarkAll, Unmark, Extract, Cancel  key.Binding
	Salvage, Deleted                        key.Binding
	PreviewUp, PreviewDown                  key.Binding
	Help, Quit                              key.Binding
}

func defaultKeys() keyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	return keyMap{
		Up:          b([]string{"up", "k"}, "↑/k", "up"),
		Down:        b([]string{"down", "j"}, "↓/j", "down"),
		PageUp:      b([]string{"pgup", "ctrl+b", "ctrl+u"}, "pgup", "page up"),
		PageDown:    b([]string{"pgdown", "ctrl+f", "ctrl+d"}, "pgdn", "page down"),
		Top:         b([]string{"g", "home"}, "g/home", "first"),
		Bottom:      b([]string{"G", "end"}, "G/end", "last"),
		Enter:       b([]string{"enter", "right", "l"}, "enter/→/l", "open"),
		Back:        b([]string{"backspace", "left", "h"}, "⌫/←/h", "back"),
		Root:        b([]string{"~"}, "~", "filesystem root"),
		Tab:         b([]string{"tab", "shift+tab"}, "tab", "switch pane"),
		Filter:      b([]string{"/"}, "/", "filter directory"),
		Dotfiles:    b([]string{"."}, ".", "show/hide dotfiles"),
		Mark:        b([]string{"space"}, "space", "mark"),
		MarkAll:     b([]string{"a"}, "a", "mark all here"),
		Unmark:      b([]string{"u"}, "u", "clear marks"),
		Extract:     b([]string{"x"}, "x", "extract marked"),
		Salvage:     b([]string{"S"}, "S", "salvage whole volume"),
		Deleted:     b([]string{"D"}, "D", "deleted files here (ext3/4)"),
		Cancel:      b([]string{"esc"}, "esc", "cancel extraction"),
		PreviewUp:   b([]string{"K", "shift+up"}, "K", "scroll preview up"),
		PreviewDown: b([]string{"J", "shift+down"}, "J", "scroll preview down"),
		Help:        b([]string{"?"}, "?", "help"),
		Quit:        b([]string{"q", "ctrl+c"}, "q", "quit"),
	}
}

// ShortHelp is the one-line hint at the bottom of the screen: the same
// bindings as the ? screen, with terse labels so they fit in 80 columns.
func (k keyMap) ShortHelp() []key.Binding {
	short := func(b key.Binding, keys, desc string) key.Binding {
		b.SetHelp(keys, desc)
		return b
	}
	return []key.Binding{
		short(k.Enter, "enter", "open"), short(k.Back, "⌫", "back"),
		short(k.Filter, "/", "filter"), short(k.Mark, "space", "mark"),
		short(k.Extract, "x", "extract"), k.Help, k.Quit,
	}
}

// FullHelp is the ? screen: every binding, grouped by purpose.
func (k keyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom},
		{k.Enter, k.Back, k.Root, k.Tab, k.PreviewUp, k.PreviewDown},
		{k.Filter, k.Dotfiles, k.Mark, k.MarkAll, k.Unmark, k.Extract},
		{k.Salvage, k.Deleted, k.Cancel, k.Help, k.Quit},
	}
}
