package raid

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

// render draws stripes 0..rows-1 as rows of "D<n>", "P" and "Q", member
// order left to right, data chunks numbered across the array.
func render(g Parity, rows int) string {
	var b strings.Builder
	dd := g.DataDisks()
	for s := range rows {
		st := g.Stripe(int64(s))
		cells := make([]string, g.Disks)
		for i := range cells {
			cells[i] = "?"
		}
		cells[st.P] = "P"
		if st.Q >= 0 {
			cells[st.Q] = "Q"
		}
		for k, d := range st.Data {
			cells[d] = fmt.Sprintf("D%d", s*dd+k)
		}
		b.WriteString(strings.Join(cells, " "))
		b.WriteString("\n")
	}
	return b.String()
}

// The RAID5 tables are the ones md(4) and the kernel's raid5.c comments
// draw for four members; the RAID6 tables were worked out by hand from the
// rules raid5_compute_sector() states in its comments ("Q D D D P", "D D P Q
// D", ...), independently of this package's code.
func TestLayoutTables(t *testing.T) {
	cases := []struct {
		name string
		g    Parity
		want string
	}{
		{"raid5 left-asymmetric", Parity{5, LeftAsymmetric, 4, 4096}, `
D0 D1 D2 P
D3 D4 P D5
D6 P D7 D8
P D9 D10 D11
D12 D13 D14 P`},
		{"raid5 right-asymmetric", Parity{5, RightAsymmetric, 4, 4096}, `
P D0 D1 D2
D3 P D4 D5
D6 D7 P D8
D9 D10 D11 P
P D12 D13 D14`},
		{"raid5 left-symmetric", Parity{5, LeftSymmetric, 4, 4096}, `
D0 D1 D2 P
D4 D5 P D3
D8 P D6 D7
P D9 D10 D11
D12 D13 D14 P`},
		{"raid5 right-symmetric", Parity{5, RightSymmetric, 4, 4096}, `
P D0 D1 D2
D5 P D3 D4
D7 D8 P D6
D9 D10 D11 P
P D12 D13 D14`},
		{"raid5 parity-first (LVM raid4)", Parity{5, Parity0, 3, 4096}, `
P D0 D1
P D2 D3`},
		{"raid5 parity-last", Parity{5, ParityN, 3, 4096}, `
D0 D1 P
D2 D3 P`},
		{"md raid4", Parity{4, 0, 3, 4096}, `
D0 D1 P
D2 D3 P`},
		{"raid6 left-symmetric", Parity{6, LeftSymmetric, 5, 4096}, `
Q D0 D1 D2 P
D3 D4 D5 P Q
D7 D8 P Q D6
D11 P Q D9 D10
P Q D12 D13 D14
Q D15 D16 D17 P`},
		{"raid6 right-symmetric", Parity{6, RightSymmetric, 5, 4096}, `
P Q D0 D1 D2
D5 P Q D3 D4`},
		{"raid6 zero-restart (lvm raid6_zr)", Parity{6, RotatingZeroRestart, 5, 4096}, `
P Q D0 D1 D2
D3 P Q D4 D5
D6 D7 P Q D8
D9 D10 D11 P Q
Q D12 D13 D14 P`},
		{"raid6 N-restart (lvm raid6_nr)", Parity{6, RotatingNRestart, 5, 4096}, `
D0 D1 D2 P Q
D3 D4 P Q D5
D6 P Q D7 D8
P Q D9 D10 D11
Q D12 D13 D14 P`},
		{"raid6 N-continue (lvm raid6_nc)", Parity{6, RotatingNContinue, 5, 4096}, `
D0 D1 D2 Q P
D4 D5 Q P D3
D8 Q P D6 D7
Q P D9 D10 D11
P D12 D13 D14 Q`},
		{"raid6 left-asymmetric", Parity{6, LeftAsymmetric, 5, 4096}, `
Q D0 D1 D2 P
D3 D4 D5 P Q
D6 D7 P Q D8
D9 P Q D10 D11
P Q D12 D13 D14`},
		{"raid6 parity-first", Parity{6, Parity0, 4, 4096}, `
P Q D0 D1`},
		{"raid6 parity-last (lvm raid6_n_6)", Parity{6, ParityN, 4, 4096}, `
D0 D1 P Q`},
		{"raid6 left-asymmetric-6 (lvm raid6_la_6)", Parity{6, LeftAsymmetric6, 5, 4096}, `
D0 D1 D2 P Q
D3 D4 P D5 Q
D6 P D7 D8 Q
P D9 D10 D11 Q
D12 D13 D14 P Q`},
		{"raid6 left-symmetric-6 (lvm raid6_ls_6)", Parity{6, LeftSymmetric6, 5, 4096}, `
D0 D1 D2 P Q
D4 D5 P D3 Q
D8 P D6 D7 Q
P D9 D10 D11 Q`},
		{"raid6 right-asymmetric-6 (lvm raid6_ra_6)", Parity{6, RightAsymmetric6, 5, 4096}, `
P D0 D1 D2 Q
D3 P D4 D5 Q`},
		{"raid6 right-symmetric-6 (lvm raid6_rs_6)", Parity{6, RightSymmetric6, 5, 4096}, `
P D0 D1 D2 Q
D5 P D3 D4 Q`},
		{"raid6 parity-first-6 (lvm raid6_0_6)", Parity{6, Parity0_6, 5, 4096}, `
P D0 D1 D2 Q`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.g.Validate(); err != nil {
				t.Fatal(err)
			}
			want := strings.TrimPrefix(c.want, "\n") + "\n"
			rows := strings.Count(want, "\n")
			if got := render(c.g, rows); got != want {
				t.Errorf("got\n%swant\n%s", got, want)
			}
		})
	}
}

func TestLocate(t *testing.T) {
	g := Parity{5, LeftSymmetric, 4, 4096}
	// D3 is chunk 3: stripe 1, on member 3, member offset 4096.
	m, off, run := g.Locate(3*4096 + 100)
	if m != 3 || off != 4096+100 || run != 4096-100 {
		t.Fatalf("D3+100: member %d off %d run %d", m, off, run)
	}
	// D9: stripe 3 member 1.
	m, off, _ = g.Locate(9 * 4096)
	if m != 1 || off != 3*4096 {
		t.Fatalf("D9: member %d off %d", m, off)
	}
	if got := g.Size(10*4096 + 5); got != 10*3*4096 {
		t.Fatalf("size %d", got)
	}
}

func TestQSlots(t *testing.T) {
	// md (non-DDF): slots in member order starting after Q.
	// left-asymmetric 5 members, stripe 2 is "D6 D7 P Q D8": after Q comes
	// member 4 (D8) = slot 0, then member 0 (D6) = 1, member 1 (D7) = 2.
	st := Parity{6, LeftAsymmetric, 5, 4096}.Stripe(2)
	if want := []int{1, 2, -1, -1, 0}; fmt.Sprint(st.QSlot) != fmt.Sprint(want) {
		t.Errorf("md left-asymmetric stripe 2 slots %v, want %v", st.QSlot, want)
	}
	// Q on the last member: slots start at member 0.
	st = Parity{6, LeftAsymmetric6, 5, 4096}.Stripe(1)
	if want := []int{0, 1, -1, 2, -1}; fmt.Sprint(st.QSlot) != fmt.Sprint(want) {
		t.Errorf("left-asymmetric-6 stripe 1 slots %v, want %v", st.QSlot, want)
	}
	// DDF: the slot is the member number.
	st = Parity{6, RotatingZeroRestart, 5, 4096}.Stripe(1) // D3 P Q D4 D5
	if want := []int{0, -1, -1, 3, 4}; fmt.Sprint(st.QSlot) != fmt.Sprint(want) {
		t.Errorf("zero-restart stripe 1 slots %v, want %v", st.QSlot, want)
	}
}

func TestValidate(t *testing.T) {
	bad := []Parity{
		{5, LeftSymmetric, 1, 4096},
		{6, LeftSymmetric, 3, 4096},
		{5, RotatingZeroRestart, 4, 4096},
		{6, Layout(7), 5, 4096},
		{5, LeftSymmetric, 4, 1000},
		{5, LeftSymmetric, 4, 0},
		{7, 0, 4, 4096},
	}
	for _, g := range bad {
		if g.Validate() == nil {
			t.Errorf("%+v validated", g)
		}
	}
	if _, err := NewParityReader(Parity{5, LeftSymmetric, 3, 4096}, make([]io.ReaderAt, 3), 0); err == nil {
		t.Error("three missing members of raid5 accepted")
	}
}
