package firewall

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestHostilesFormat(t *testing.T) {
	file := `# hostiles, gtk-gnutella format
1.2.3.4
10.20.0.0/16   # a comment after the entry

  192.0.2.128/25
5.6.7.8/255.255.255.0
2001:db8:1::/48
::ffff:9.9.9.0/120
fe80::1%eth0
1.2.3.4 5.6.7.8
banana
1.2.3.4/33
5.6.7.8/255.0.255.0
2001:db8::/129
1.2.3.4/
8.8.8.8/+8
`
	set, rep, err := ParseHostiles(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 6 || rep.Bad != 8 || rep.Truncated {
		t.Fatalf("report %+v: want 6 entries, 8 bad lines", rep)
	}
	if rep.Lines != 16 {
		t.Errorf("lines %d, want 16", rep.Lines)
	}
	if len(rep.FirstBad) != 8 || rep.FirstBad[0].Line != 9 || rep.FirstBad[7].Line != 16 {
		t.Errorf("bad lines %+v", rep.FirstBad)
	}
	in := []string{"1.2.3.4", "10.20.0.0", "10.20.255.255", "192.0.2.128", "192.0.2.255",
		"5.6.7.0", "5.6.7.255", "2001:db8:1::1", "2001:db8:1:ffff:ffff:ffff:ffff:ffff",
		"9.9.9.9", "::ffff:1.2.3.4", "::ffff:10.20.1.1"}
	out := []string{"1.2.3.5", "1.2.3.3", "10.21.0.0", "10.19.255.255", "192.0.2.127", "5.6.8.0",
		"2001:db8:2::", "2001:db8::1", "9.9.10.0", "fe80::1", "8.8.8.8", "::1", "0.0.0.0"}
	for _, s := range in {
		if !set.Contains(addr(s)) {
			t.Errorf("%s not in the set", s)
		}
	}
	for _, s := range out {
		if set.Contains(addr(s)) {
			t.Errorf("%s in the set", s)
		}
	}
}

func TestHostilesMergeAndEdges(t *testing.T) {
	set, rep, err := ParseHostiles(strings.NewReader(
		"0.0.0.0/0\n1.2.3.4\n::/0\n255.255.255.255\n"))
	if err != nil || rep.Bad != 0 {
		t.Fatal(err, rep)
	}
	if set.Len() != 2 {
		t.Errorf("%d ranges, want 2 (everything, twice)", set.Len())
	}
	for _, s := range []string{"0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		if !set.Contains(addr(s)) {
			t.Errorf("%s not in the whole space", s)
		}
	}
	adj := NewAddrSet(netip.MustParsePrefix("10.0.0.0/25"), netip.MustParsePrefix("10.0.0.128/25"),
		netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("2001:db8::/64"),
		netip.MustParsePrefix("2001:db8:0:1::/64"))
	if adj.Len() != 2 {
		t.Errorf("adjacent ranges not merged: %d", adj.Len())
	}
	var empty *AddrSet
	if empty.Contains(addr("1.2.3.4")) || empty.Len() != 0 {
		t.Error("nil set not empty")
	}
	u := empty.Union(adj)
	if !u.Contains(addr("10.0.0.200")) || u.Contains(addr("10.0.1.0")) {
		t.Error("union wrong")
	}
}

func TestHostilesLongLinesAndOversizeFile(t *testing.T) {
	long := strings.Repeat("1", HostilesMaxLine+10) + "\n"
	justOver := "3.3.3.3" + strings.Repeat(" ", HostilesMaxLine-7+1) + "\r\n"
	atMax := "4.4.4.4" + strings.Repeat(" ", HostilesMaxLine-7) + "\r\n"
	set, rep, err := ParseHostiles(strings.NewReader("1.1.1.1\n" + long + justOver + atMax + "2.2.2.2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Bad != 2 || rep.Entries != 3 || !set.Contains(addr("2.2.2.2")) || set.Contains(addr("3.3.3.3")) || !set.Contains(addr("4.4.4.4")) {
		t.Fatalf("long lines: %+v", rep)
	}

	// An oversize file: entries up to the cap are read, the rest ignored.
	var b bytes.Buffer
	n := 0
	for b.Len() <= HostilesMaxBytes+1000 {
		b.WriteString(netip.AddrFrom4([4]byte{11, byte(n >> 16), byte(n >> 8), byte(n)}).String() + "\n")
		n++
	}
	path := filepath.Join(t.TempDir(), "hostiles.txt")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	set, rep, err = LoadHostiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Truncated || rep.Entries >= n || rep.Entries < n-200 || rep.Bad != 0 {
		t.Fatalf("oversize file: %d of %d entries, report %+v", rep.Entries, n, rep.Truncated)
	}
	if !set.Contains(addr("11.0.0.0")) || set.Contains(netip.AddrFrom4([4]byte{11, byte((n - 1) >> 16), byte((n - 1) >> 8), byte(n - 1)})) {
		t.Error("the first entry must be in, the last (past the cap) out")
	}

	// Missing file: empty, no error; a folder: an error, still a set.
	if set, _, err := LoadHostiles(filepath.Join(t.TempDir(), "none")); err != nil || set.Len() != 0 {
		t.Errorf("missing file: %v", err)
	}
	if set, _, err := LoadHostiles(t.TempDir()); err == nil || set == nil {
		t.Errorf("folder: %v", err)
	}
}

func TestHostilesBans(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := NewHostiles(3, nil)
		h.SetStatic(NewAddrSet(netip.MustParsePrefix("127.0.0.5/32")), "hostiles.txt")
		if r, ok := h.Banned(addr("127.0.0.5")); !ok || r != "hostiles.txt" {
			t.Fatalf("static: %q %v", r, ok)
		}
		h.Ban(addr("::ffff:5.6.7.8"), time.Minute, "push flood")
		if r, ok := h.Banned(addr("5.6.7.8")); !ok || r != "push flood" {
			t.Fatalf("ban: %q %v", r, ok)
		}
		time.Sleep(time.Minute) // fake time in the bubble
		if _, ok := h.Banned(addr("5.6.7.8")); ok {
			t.Fatal("ban outlived its duration")
		}
		// Bounded: the fourth ban evicts the oldest.
		for i := range 4 {
			h.Ban(netip.AddrFrom4([4]byte{9, 9, 9, byte(i)}), time.Hour, "x")
		}
		if h.Bans() != 3 {
			t.Fatalf("%d bans held, cap 3", h.Bans())
		}
		if _, ok := h.Banned(addr("9.9.9.0")); ok {
			t.Error("oldest ban not evicted")
		}
		if _, ok := h.Banned(addr("9.9.9.3")); !ok {
			t.Error("newest ban lost")
		}
		h.Ban(addr("9.9.9.3"), 0, "")
		if _, ok := h.Banned(addr("9.9.9.3")); ok {
			t.Error("ban not lifted")
		}
		var none *Hostiles
		if _, ok := none.Banned(addr("1.2.3.4")); ok {
			t.Error("nil Hostiles bans")
		}
	})
}

func TestAddrPolicyRefusesHostiles(t *testing.T) {
	h := NewHostiles(0, nil)
	h.SetStatic(NewAddrSet(netip.MustParsePrefix("8.8.8.0/24")), "hostiles.txt")
	p := AddrPolicy{AllowLoopback: true, Hostiles: h}
	err := p.Check(netip.MustParseAddrPort("8.8.8.8:6346"))
	var ae *AddrError
	if !errors.As(err, &ae) || ae.Class != AddrHostile || !errors.Is(err, ErrAddrRefused) {
		t.Fatalf("hostile admitted: %v", err)
	}
	if !strings.Contains(err.Error(), "hostiles.txt") {
		t.Errorf("error %q does not say why", err)
	}
	if err := p.Check(netip.MustParseAddrPort("8.8.9.8:6346")); err != nil {
		t.Error(err)
	}
	h.Ban(addr("127.0.0.9"), time.Hour, "test")
	if p.Check(netip.MustParseAddrPort("127.0.0.9:1")) == nil {
		t.Error("banned loopback admitted")
	}
}

func FuzzHostiles(f *testing.F) {
	for _, s := range []string{
		"1.2.3.4\n", "10.0.0.0/8 # rfc1918\n", "# only a comment\n\n", "2001:db8::/32\n",
		"5.6.7.0/255.255.255.0\n", "::ffff:1.2.3.0/120\n", "0.0.0.0/0\n::/0\n", "1.2.3.4/33\n",
		"fe80::1%eth0\n", "1.2.3.4 junk\n", "\r\n1.1.1.1\r\n", strings.Repeat("9", 300),
	} {
		f.Add([]byte(s), uint32(0x01020304))
	}
	f.Fuzz(func(t *testing.T, data []byte, probe uint32) {
		set, rep, err := ParseHostiles(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Entries+rep.Bad > rep.Lines || len(rep.FirstBad) > hostilesBadKept {
			t.Fatalf("report inconsistent: %+v", rep)
		}
		// The set agrees with the prefixes of the lines taken one by one.
		var want []netip.Prefix
		for _, line := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimRight(line, "\r")) > HostilesMaxLine {
				continue
			}
			if p, ok, _ := parseHostileLine(line); ok {
				want = append(want, p)
			}
		}
		var b4 [4]byte
		binary.BigEndian.PutUint32(b4[:], probe)
		probes := []netip.Addr{netip.AddrFrom4(b4)}
		for _, p := range want {
			probes = append(probes, p.Addr(), p.Masked().Addr())
		}
		for _, a := range probes {
			in := false
			for _, p := range want {
				pa, pb := p.Addr(), p.Bits()
				if pa.Is4In6() && pb >= 96 {
					p = netip.PrefixFrom(pa.Unmap(), pb-96)
				}
				if p.Masked().Contains(a.Unmap()) {
					in = true
				}
			}
			if got := set.Contains(a); got != in {
				t.Fatalf("Contains(%s) = %v, want %v", a, got, in)
			}
		}
	})
}

// BenchmarkHostilesLookup: a lookup in 100k prefixes, as made for every
// connection.
func BenchmarkHostilesLookup(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	prefixes := make([]netip.Prefix, 0, 100_000)
	for len(prefixes) < 90_000 {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], r.Uint32())
		prefixes = append(prefixes, netip.PrefixFrom(netip.AddrFrom4(a), 16+r.IntN(17)))
	}
	for len(prefixes) < 100_000 {
		var a [16]byte
		binary.BigEndian.PutUint64(a[:], r.Uint64())
		prefixes = append(prefixes, netip.PrefixFrom(netip.AddrFrom16(a), 32+r.IntN(97)))
	}
	set := NewAddrSet(prefixes...)
	h := NewHostiles(0, nil)
	h.SetStatic(set, "hostiles.txt")
	probes := make([]netip.Addr, 1024)
	for i := range probes {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], r.Uint32())
		probes[i] = netip.AddrFrom4(a)
	}
	b.Run("static", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			h.Banned(probes[i&1023])
		}
		b.ReportMetric(float64(set.Len()), "ranges")
	})
	// With 10k dynamic bans as well: a second lookup, under a mutex.
	for i := range 10_000 {
		h.Ban(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), time.Hour, "bench")
	}
	b.Run("static+bans", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			h.Banned(probes[i&1023])
		}
	})
}

// BenchmarkHostilesParse: parsing a 100k-line hostiles file.
func BenchmarkHostilesParse(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	var buf bytes.Buffer
	for range 100_000 {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], r.Uint32())
		buf.WriteString(netip.PrefixFrom(netip.AddrFrom4(a), 16+r.IntN(17)).Masked().String() + "\n")
	}
	b.SetBytes(int64(buf.Len()))
	for b.Loop() {
		if _, rep, err := ParseHostiles(bytes.NewReader(buf.Bytes())); err != nil || rep.Entries != 100_000 {
			b.Fatal(err, rep.Entries)
		}
	}
}
