package hostcache

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gnutella/firewall"
)

var hcT0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func hcAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// hcPub returns the i-th of many public test addresses.
func hcPub(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{8, byte(i >> 16), byte(i >> 8), byte(i)}), 6346)
}

func TestHostCacheAddressFilter(t *testing.T) {
	cases := []struct {
		addr            string
		public, loop, p bool // admitted by: default policy, AllowLoopback, AllowPrivate
	}{
		{"8.8.8.8:6346", true, true, true},
		{"[2001:4860:4860::8888]:6346", true, true, true},
		{"[::ffff:8.8.4.4]:6346", true, true, true}, // IPv4-mapped
		{"8.8.8.8:0", false, false, false},
		{"0.0.0.0:6346", false, false, false},
		{"[::]:6346", false, false, false},
		{"0.1.2.3:6346", false, false, false},
		{"224.0.0.1:6346", false, false, false},
		{"239.255.255.250:1900", false, false, false},
		{"[ff02::1]:6346", false, false, false},
		{"255.255.255.255:6346", false, false, false},
		{"250.1.2.3:6346", false, false, false},
		{"127.0.0.1:6346", false, true, false},
		{"127.9.9.9:6346", false, true, false},
		{"[::1]:6346", false, true, false},
		{"10.0.0.1:6346", false, false, true},
		{"172.16.5.4:6346", false, false, true},
		{"192.168.1.1:6346", false, false, true},
		{"169.254.1.1:6346", false, false, true},
		{"100.64.0.1:6346", false, false, true},
		{"192.0.2.1:6346", false, false, true},
		{"203.0.113.9:6346", false, false, true},
		{"[fd00::1]:6346", false, false, true},
		{"[fe80::1]:6346", false, false, true},
	}
	for _, c := range cases {
		a := hcAP(c.addr)
		for _, pol := range []struct {
			name       string
			loop, priv bool
			want       bool
		}{
			{"default", false, false, c.public},
			{"loopback", true, false, c.loop},
			{"private", false, true, c.p},
		} {
			hc := New(10)
			hc.AllowLoopback, hc.AllowPrivate = pol.loop, pol.priv
			if got := hc.Add(a, true, SourcePong, hcT0); got != pol.want {
				t.Errorf("%s policy, Add(%s) = %v, want %v", pol.name, c.addr, got, pol.want)
			}
			if got := hc.Valid(a); got != pol.want {
				t.Errorf("%s policy, Valid(%s) = %v, want %v", pol.name, c.addr, got, pol.want)
			}
			if want := map[bool]int{true: 1, false: 0}[pol.want]; hc.Len() != want {
				t.Errorf("%s policy, after Add(%s) Len = %d, want %d", pol.name, c.addr, hc.Len(), want)
			}
		}
	}
	// A zero AddrPort is refused too.
	if New(1).Add(netip.AddrPort{}, false, SourcePong, hcT0) {
		t.Error("zero AddrPort admitted")
	}
}

func TestHostCacheCanonicalAddress(t *testing.T) {
	hc := New(10)
	hc.Add(hcAP("[::ffff:8.8.4.4]:6346"), false, SourcePong, hcT0)
	hc.Add(hcAP("8.8.4.4:6346"), false, SourcePong, hcT0)
	if hc.Len() != 1 || !hc.Has(hcAP("8.8.4.4:6346")) {
		t.Fatalf("IPv4-mapped and plain IPv4 should be one entry; Len = %d", hc.Len())
	}
}

func TestHostCacheBounds(t *testing.T) {
	hc := New(3)
	for i := range 5 {
		if !hc.Add(hcPub(i), false, SourcePong, hcT0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("Add(%s) refused", hcPub(i))
		}
	}
	if hc.Len() != 3 {
		t.Fatalf("Len = %d, want 3", hc.Len())
	}
	for i := range 5 {
		if want := i >= 2; hc.Has(hcPub(i)) != want {
			t.Errorf("Has(%s) = %v, want %v (oldest evicted first)", hcPub(i), !want, want)
		}
	}

	// Failed entries go before fresh ones, even old fresh ones; good ones
	// (connected) stay before unverified ones; --peer entries go last.
	hc = New(4)
	hc.Add(hcPub(100), false, SourcePeerFlag, hcT0)                // oldest, but sticky
	hc.Add(hcPub(101), false, SourcePong, hcT0.Add(1*time.Second)) // old, never failed
	hc.Add(hcPub(102), false, SourcePong, hcT0.Add(9*time.Second)) // recent but failing
	hc.Failed(hcPub(102), hcT0.Add(10*time.Second))
	hc.Add(hcPub(103), false, SourcePong, hcT0.Add(2*time.Second))
	hc.Connected(hcPub(103), hcT0.Add(3*time.Second)) // good
	hc.Add(hcPub(104), false, SourcePong, hcT0.Add(20*time.Second))
	if hc.Has(hcPub(102)) {
		t.Error("the failing entry should be evicted first")
	}
	hc.Add(hcPub(105), false, SourcePong, hcT0.Add(21*time.Second))
	if hc.Has(hcPub(101)) {
		t.Error("the old unverified entry should be evicted next")
	}
	hc.Add(hcPub(106), false, SourcePong, hcT0.Add(22*time.Second))
	if !hc.Has(hcPub(100)) || !hc.Has(hcPub(103)) {
		t.Error("the --peer entry and the good entry should survive")
	}
	if hc.Has(hcPub(104)) {
		t.Error("the oldest unverified entry should go before the good one")
	}
	if hc.Len() != 4 {
		t.Errorf("Len = %d, want 4", hc.Len())
	}
	if New(0).Add(hcPub(1), false, SourcePong, hcT0) != true {
		t.Error("a cache made with max 0 should still hold one host")
	}
}

func TestHostBackoff(t *testing.T) {
	want := []time.Duration{0, 30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute,
		8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
	for f, w := range want {
		if got := Backoff(f); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", f, got, w)
		}
	}
	if Backoff(1<<30) != time.Hour {
		t.Error("Backoff must stay capped for huge counts")
	}
}

func TestHostCacheFailedBackoffAndConnected(t *testing.T) {
	hc := New(10)
	a := hcPub(1)
	hc.Add(a, true, SourcePong, hcT0)
	pick := func(now time.Time) bool {
		got, ok := hc.Pick(now, nil)
		return ok && got == a
	}
	if !pick(hcT0) {
		t.Fatal("fresh host not picked")
	}
	now := hcT0
	for i, d := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute,
		8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour, time.Hour} {
		hc.Failed(a, now)
		if pick(now.Add(d - time.Second)) {
			t.Fatalf("failure %d: picked %v after the failure, back-off should be %v", i+1, d-time.Second, d)
		}
		if !pick(now.Add(d)) {
			t.Fatalf("failure %d: not picked %v after the failure", i+1, d)
		}
		now = now.Add(d)
	}
	hc.Failed(a, now)
	hc.Connected(a, now.Add(time.Second))
	if !pick(now.Add(time.Second)) {
		t.Fatal("Connected should reset the back-off")
	}
	hc.Failed(a, now.Add(2*time.Second))
	if pick(now.Add(2*time.Second+29*time.Second)) || !pick(now.Add(32*time.Second)) {
		t.Fatal("after Connected the back-off should restart at 30 s")
	}
	// Unknown addresses are ignored by Failed; Connected adds them.
	hc.Failed(hcPub(2), hcT0)
	if hc.Has(hcPub(2)) {
		t.Error("Failed added an unknown address")
	}
	hc.Connected(hcPub(3), hcT0)
	if !hc.Has(hcPub(3)) {
		t.Error("Connected should add an unknown admissible address")
	}
	hc.Connected(hcAP("127.0.0.1:6346"), hcT0)
	if hc.Has(hcAP("127.0.0.1:6346")) {
		t.Error("Connected added a refused address")
	}
	hc.Remove(hcPub(3))
	if hc.Has(hcPub(3)) {
		t.Error("Remove did not remove")
	}
}

func TestHostCachePickOrder(t *testing.T) {
	hc := New(100)
	leafNew := hcPub(1)
	ultraOld := hcPub(2)
	ultraNew := hcPub(3)
	ultraFailed := hcPub(4)
	hc.Add(leafNew, false, SourcePong, hcT0.Add(50*time.Second))
	hc.Add(ultraOld, true, SourceXTryUltrapeers, hcT0.Add(10*time.Second))
	hc.Add(ultraNew, true, SourceXTryUltrapeers, hcT0.Add(40*time.Second))
	hc.Add(ultraFailed, true, SourceXTryUltrapeers, hcT0.Add(45*time.Second))
	hc.Failed(ultraFailed, hcT0) // back-off ends at hcT0+30s

	now := hcT0.Add(time.Minute)
	var order []netip.AddrPort
	seen := map[netip.AddrPort]bool{}
	for {
		a, ok := hc.Pick(now, func(a netip.AddrPort) bool { return seen[a] })
		if !ok {
			break
		}
		seen[a] = true
		order = append(order, a)
	}
	want := []netip.AddrPort{ultraNew, ultraOld, ultraFailed, leafNew}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("pick order = %v, want %v (ultrapeers, never failed, recent first)", order, want)
	}
	// In back-off: not picked at all.
	hc.Failed(ultraNew, now)
	if a, _ := hc.Pick(now, nil); a != ultraOld {
		t.Errorf("Pick = %v, want %v while %v is in back-off", a, ultraOld, ultraNew)
	}
	// Everything skipped → false.
	if _, ok := hc.Pick(now, func(netip.AddrPort) bool { return true }); ok {
		t.Error("Pick should fail when everything is skipped")
	}
	if _, ok := New(5).Pick(now, nil); ok {
		t.Error("Pick on an empty cache should fail")
	}
	// A good (connected) host goes before an unverified one of the same kind.
	hc2 := New(10)
	hc2.Add(hcPub(10), true, SourcePong, hcT0.Add(time.Minute))
	hc2.Add(hcPub(11), true, SourcePong, hcT0)
	hc2.Connected(hcPub(11), hcT0)
	if a, _ := hc2.Pick(hcT0.Add(2*time.Minute), nil); a != hcPub(11) {
		t.Errorf("Pick = %v, want the host we connected to before", a)
	}
}

func TestHostCacheUltraFlag(t *testing.T) {
	hc := New(10)
	a := hcPub(1)
	hc.Add(a, true, SourcePong, hcT0)
	hc.Add(a, false, SourceXTry, hcT0) // hearsay does not demote
	if got := hc.Sample(10, true, nil); len(got) != 1 {
		t.Fatal("hearsay demoted an ultrapeer")
	}
	hc.Add(a, false, SourceConnected, hcT0) // the handshake does
	if got := hc.Sample(10, true, nil); len(got) != 0 {
		t.Fatal("a handshake saying leaf should demote")
	}
}

func TestHostCacheSample(t *testing.T) {
	hc := New(100)
	for i := range 30 {
		hc.Add(hcPub(i), i%2 == 0, SourcePong, hcT0.Add(time.Duration(i)*time.Second))
	}
	hc.Failed(hcPub(28), hcT0.Add(time.Hour))
	got := hc.Sample(10, true, func(a netip.AddrPort) bool { return a == hcPub(26) })
	if len(got) != 10 {
		t.Fatalf("Sample returned %d, want 10", len(got))
	}
	// Most recent ultrapeers first, skipping the failed 28 and the skipped 26.
	want := []netip.AddrPort{hcPub(24), hcPub(22), hcPub(20), hcPub(18), hcPub(16), hcPub(14), hcPub(12), hcPub(10), hcPub(8), hcPub(6)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Sample = %v, want %v", got, want)
	}
	all := hc.Sample(100, false, nil)
	if len(all) != 29 {
		t.Errorf("Sample(100, false) returned %d, want 29 (one failed)", len(all))
	}
	if hc.Sample(0, false, nil) != nil {
		t.Error("Sample(0) should be nil")
	}
	hdr := hc.TryHeader(3, true, nil)
	if hdr != "8.0.0.26:6346,8.0.0.24:6346,8.0.0.22:6346" {
		t.Errorf("TryHeader = %q", hdr)
	}
	if New(3).TryHeader(10, false, nil) != "" {
		t.Error("TryHeader of an empty cache should be empty")
	}
}

func TestHostCacheAddTryHeader(t *testing.T) {
	hc := New(100)
	v := " 1.2.3.4:6347, 5.6.7.8 ,9.9.9.9:1234 2003-10-10T10:00Z,[2001:4860::1]:6348," +
		"2001:4860::2,garbage,1.1.1.1:0,10.0.0.1:6346,4.4.4.4:6349junk,,host.example:6346"
	n := hc.AddTryHeader(v, true, SourceXTryUltrapeers, hcT0)
	want := []string{"1.2.3.4:6347", "5.6.7.8:6346", "9.9.9.9:1234", "[2001:4860::1]:6348",
		"[2001:4860::2]:6346", "4.4.4.4:6349"}
	if n != len(want) || hc.Len() != len(want) {
		t.Errorf("AddTryHeader admitted %d (Len %d), want %d", n, hc.Len(), len(want))
	}
	for _, w := range want {
		if !hc.Has(hcAP(w)) {
			t.Errorf("missing %s", w)
		}
	}
	// Bounded: a header with 10,000 entries only looks at 100.
	var b strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&b, "%s,", hcPub(i))
	}
	hc2 := New(100000)
	if n := hc2.AddTryHeader(b.String(), false, SourceXTry, hcT0); n != hostTryMaxItems {
		t.Errorf("AddTryHeader of 10,000 entries admitted %d, want %d", n, hostTryMaxItems)
	}
}

func TestHostCacheSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts.txt")
	hc := New(100)
	hc.AllowLoopback = true
	hc.Add(hcPub(1), true, SourcePong, hcT0)
	hc.Add(hcPub(2), false, SourcePong, hcT0.Add(time.Minute))
	hc.Add(hcAP("[2001:4860::1]:6346"), true, SourceGWebCache, hcT0.Add(2*time.Minute))
	hc.Add(hcAP("127.0.0.1:7000"), true, SourcePeerFlag, hcT0)
	hc.Failed(hcPub(2), hcT0.Add(time.Hour))
	hc.Failed(hcPub(2), hcT0.Add(2*time.Hour))
	hc.SawUDP(hcPub(1), true, true, hcT0)
	if err := hc.Save(path); err != nil {
		t.Fatal(err)
	}
	// Saving again over the file works and leaves no temporary files.
	if err := hc.Save(path); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("data folder holds %d files after Save, want 1: %v", len(ents), ents)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "8.0.0.2:6346 0 "+fmt.Sprint(hcT0.Add(time.Minute).Unix())+" 2 0\n") {
		t.Errorf("saved file lacks the expected line for 8.0.0.2:\n%s", data)
	}

	now := hcT0.Add(3 * time.Hour)
	hc2 := New(100)
	hc2.AllowLoopback = true
	n, err := hc2.Load(path, now)
	if err != nil || n != 4 {
		t.Fatalf("Load = %d, %v; want 4, nil", n, err)
	}
	if got := hc2.HostCaches(10, nil); len(got) != 1 || got[0] != hcPub(1) || !hc2.SpeaksUDP(hcPub(1)) || hc2.SpeaksUDP(hcPub(2)) {
		t.Errorf("after Load, UDP host caches %v, %v speaks UDP %v, %v %v: want only %v, a UHC", got, hcPub(1), hc2.SpeaksUDP(hcPub(1)), hcPub(2), hc2.SpeaksUDP(hcPub(2)), hcPub(1))
	}
	hc.mu.Lock()
	hc2.mu.Lock()
	for a, e := range hc.hosts {
		e2, ok := hc2.hosts[a]
		if !ok {
			t.Errorf("%s lost in the round trip", a)
			continue
		}
		if e2.ultra != e.ultra || !e2.lastSeen.Equal(e.lastSeen) || e2.failures != e.failures {
			t.Errorf("%s: loaded ultra=%v seen=%v failures=%d, saved ultra=%v seen=%v failures=%d",
				a, e2.ultra, e2.lastSeen, e2.failures, e.ultra, e.lastSeen, e.failures)
		}
		if !e2.retryAt.IsZero() {
			t.Errorf("%s: back-off restored, a restart should give a fresh chance", a)
		}
	}
	hc2.mu.Unlock()
	hc.mu.Unlock()

	// Without AllowLoopback the loopback line is refused.
	hc3 := New(100)
	if n, err := hc3.Load(path, now); err != nil || n != 3 {
		t.Errorf("Load without loopback = %d, %v; want 3, nil", n, err)
	}
	// A smaller cache reads only as many lines as it holds: the best ones.
	hc4 := New(2)
	hc4.AllowLoopback = true
	if n, err := hc4.Load(path, now); err != nil || n != 2 || hc4.Len() != 2 {
		t.Errorf("Load into a 2-host cache = %d, %v (Len %d)", n, err, hc4.Len())
	}
	if hc4.Has(hcPub(2)) {
		t.Error("the failing host should not be among the 2 best")
	}
}

func TestHostCacheLoadMissingAndErrors(t *testing.T) {
	dir := t.TempDir()
	hc := New(10)
	if n, err := hc.Load(filepath.Join(dir, "nope"), hcT0); n != 0 || err != nil {
		t.Errorf("Load of a missing file = %d, %v; want 0, nil", n, err)
	}
	if _, err := hc.Load(dir, hcT0); err == nil {
		t.Error("Load of a folder should fail")
	}
	if err := hc.Save(filepath.Join(dir, "no", "such", "dir", "hosts")); err == nil {
		t.Error("Save into a missing folder should fail")
	}
}

func TestHostCacheLoadCorrupt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts.txt")
	future := hcT0.Add(48 * time.Hour).Unix()
	content := "# comment\n" +
		"\n" +
		"8.0.0.1:6346 1 1700000000 0\n" + // good
		"8.0.0.2:6346 1 1700000000\n" + // too few fields
		"8.0.0.3:6346 x 1700000000 0\n" + // bad ultra
		"8.0.0.4:6346 1 -5 0\n" + // negative time
		"8.0.0.5:6346 1 1700000000 -1\n" + // negative failures
		"8.0.0.6 1 1700000000 0\n" + // no port
		"\x00\xff\xfe binary junk \x01\n" +
		"8.0.0.7:6346 0 " + fmt.Sprint(future) + " 3 extra fields ok\n" + // future time clamped
		strings.Repeat("A", 3<<20) + "\n" + // a 3 MiB line
		"8.0.0.8:6346 1 1700000000 0\n" // after the 1 MiB limit: not read
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	hc := New(100)
	n, err := hc.Load(path, hcT0)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || !hc.Has(hcAP("8.0.0.1:6346")) || !hc.Has(hcAP("8.0.0.7:6346")) {
		t.Errorf("Load = %d, want 2 (8.0.0.1 and 8.0.0.7)", n)
	}
	hc.mu.Lock()
	if e := hc.hosts[hcAP("8.0.0.7:6346")]; e == nil || !e.lastSeen.Equal(hcT0) || e.failures != 3 {
		t.Errorf("future last-seen not clamped to now: %+v", e)
	}
	hc.mu.Unlock()

	// An over-long line followed by good lines within the limit is skipped alone.
	content = strings.Repeat("B", 10000) + "\n8.0.0.9:6346 1 1700000000 0\n" + strings.Repeat("C", 500)
	os.WriteFile(path, []byte(content), 0o600)
	hc = New(100)
	if n, err := hc.Load(path, hcT0); n != 1 || err != nil {
		t.Errorf("Load after a long line = %d, %v; want 1, nil", n, err)
	}
}

func TestHostCacheLoadHuge(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts.txt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := range 200000 { // ~6 MB of valid lines
		fmt.Fprintf(&b, "%s 1 1700000000 0\n", hcPub(i))
	}
	f.WriteString(b.String())
	f.Close()
	hc := New(1000)
	if n, err := hc.Load(path, hcT0); err != nil || n != 1000 || hc.Len() != 1000 {
		t.Errorf("Load into a 1,000-host cache = %d, %v (Len %d)", n, err, hc.Len())
	}
	big := New(1 << 20)
	n, err := big.Load(path, hcT0)
	// Lines are 26 to 30 bytes long; only the first MiB may be read.
	if err != nil || n > hostLoadMaxBytes/26 || n < hostLoadMaxBytes/31 {
		t.Errorf("Load into a huge cache = %d, %v; want what 1 MiB holds (%d..%d)",
			n, err, hostLoadMaxBytes/31, hostLoadMaxBytes/26)
	}
}

func TestHostCacheConcurrent(t *testing.T) {
	hc := New(200)
	path := filepath.Join(t.TempDir(), "hosts.txt")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				now := hcT0.Add(time.Duration(i) * time.Second)
				a := hcPub(g*1000 + i%300)
				hc.Add(a, i%3 == 0, SourcePong, now)
				switch i % 7 {
				case 0:
					hc.Failed(a, now)
				case 1:
					hc.Connected(a, now)
				case 2:
					hc.Pick(now, func(x netip.AddrPort) bool { return hc.Has(x) && x == a })
				case 3:
					hc.Sample(10, true, nil)
				case 4:
					hc.Remove(a)
				case 5:
					if g == 0 && i%50 == 5 {
						if err := hc.Save(path); err != nil {
							t.Error(err)
						}
					}
				case 6:
					hc.AddTryHeader("8.8.8.8:6346,9.9.9.9", true, SourceXTry, now)
					hc.Len()
				}
			}
		}()
	}
	wg.Wait()
	if hc.Len() > 200 {
		t.Errorf("Len = %d exceeds the bound", hc.Len())
	}
	n, err := New(500).Load(path, hcT0)
	if err != nil || n == 0 {
		t.Errorf("Load after concurrent saves = %d, %v", n, err)
	}
}

func TestHostilesAreNotStoredPickedOrSampled(t *testing.T) {
	now := time.Unix(1000, 0)
	h := firewall.NewHostiles(0, func() time.Time { return now })
	h.SetStatic(firewall.NewAddrSet(netip.MustParsePrefix("127.0.0.8/29")), "test list")
	c := New(10)
	c.AllowLoopback = true
	c.Hostiles = h
	if c.Add(netip.MustParseAddrPort("127.0.0.9:6346"), true, SourcePong, now) {
		t.Fatal("hostile pong address stored")
	}
	if n := c.AddTryHeader("127.0.0.10:6346,127.0.0.2:6346", true, SourceXTry, now); n != 1 || c.Len() != 1 {
		t.Fatalf("X-Try: %d admitted, %d held; want only 127.0.0.2", n, c.Len())
	}
	// Banned after it was stored: neither picked nor advertised.
	h.Ban(netip.MustParseAddr("127.0.0.2"), time.Hour, "test")
	if a, ok := c.Pick(now, nil); ok {
		t.Errorf("banned %s picked", a)
	}
	if got := c.Sample(10, false, nil); len(got) != 0 {
		t.Errorf("banned hosts sampled: %v", got)
	}
}

// SawGUESS marks a host (adding it, as an ultrapeer, when the policy
// admits it); GUESSHosts lists only marked ones; the mark survives a save
// and a load (bit 4 of the fifth field).
func TestHostCacheGUESSMarkSurvivesSaveAndLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts.txt")
	hc := New(100)
	hc.Add(hcPub(1), false, SourcePong, hcT0)
	if !hc.SawGUESS(hcPub(1), hcT0) || !hc.SawGUESS(hcPub(2), hcT0) {
		t.Fatal("SawGUESS refused a public address")
	}
	if hc.SawGUESS(hcAP("127.0.0.1:7000"), hcT0) {
		t.Error("SawGUESS added a loopback address the policy refuses")
	}
	hc.Add(hcPub(3), true, SourcePong, hcT0)
	got := hc.GUESSHosts(10, nil)
	slices.SortFunc(got, netip.AddrPort.Compare)
	if !slices.Equal(got, []netip.AddrPort{hcPub(1), hcPub(2)}) {
		t.Fatalf("GUESSHosts = %v, want %v and %v", got, hcPub(1), hcPub(2))
	}
	if err := hc.Save(path); err != nil {
		t.Fatal(err)
	}
	hc2 := New(100)
	if _, err := hc2.Load(path, hcT0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got2 := hc2.GUESSHosts(10, func(a netip.AddrPort) bool { return a == hcPub(2) })
	if !slices.Equal(got2, []netip.AddrPort{hcPub(1)}) {
		t.Errorf("after Load, GUESSHosts skipping %v = %v, want %v", hcPub(2), got2, hcPub(1))
	}
}
