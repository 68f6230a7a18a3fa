package firewall

import (
	"bytes"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestDetectorStartsFirewalled(t *testing.T) {
	d := NewDetector(DetectorConfig{}, t0)
	fw, since, last := d.State()
	if !fw || !d.Firewalled() || !since.Equal(t0) || !last.IsZero() {
		t.Fatalf("State() = %v, %v, %v; want firewalled since t0, no proof", fw, since, last)
	}
	if _, ok := d.Deadline(); ok {
		t.Fatal("Deadline() reported a deadline while firewalled")
	}
	// Tick with no proof ever stays firewalled and does not flip.
	ch := d.Changed()
	d.Tick(t0.Add(time.Hour))
	if !d.Firewalled() || closed(ch) {
		t.Fatal("Tick changed a firewalled detector")
	}
}

func TestDetectorOutsideInboundProves(t *testing.T) {
	d := NewDetector(DetectorConfig{}, t0)
	ch := d.Changed()
	at := t0.Add(time.Minute)
	d.Inbound(ap("8.8.8.8:40000"), false, at)
	if d.Firewalled() {
		t.Fatal("outside inbound did not prove reachability")
	}
	if !closed(ch) {
		t.Fatal("Changed not closed on the flip")
	}
	ch2 := d.Changed()
	if ch2 == ch || closed(ch2) {
		t.Fatal("Changed not replaced by a fresh channel after the flip")
	}
	fw, since, last := d.State()
	if fw || !since.Equal(at) || !last.Equal(at) {
		t.Fatalf("State() = %v, %v, %v", fw, since, last)
	}
	// More proof while reachable: no flip, lastProof moves.
	d.Inbound(ap("9.9.9.9:1"), false, at.Add(time.Minute))
	if closed(ch2) {
		t.Fatal("Changed closed without a flip")
	}
	if _, since, last := d.State(); !since.Equal(at) || !last.Equal(at.Add(time.Minute)) {
		t.Fatalf("since %v last %v", since, last)
	}
}

func TestDetectorLocalVersusOutside(t *testing.T) {
	cases := []struct {
		remote  string
		outside bool
	}{
		{"127.0.0.1:1234", false},
		{"127.8.9.10:1234", false},
		{"10.1.2.3:1234", false},
		{"172.16.0.1:1234", false},
		{"172.31.255.255:1234", false},
		{"192.168.1.1:1234", false},
		{"100.64.0.1:1234", false},
		{"169.254.1.1:1234", false},
		{"0.0.0.0:1234", false},
		{"0.1.2.3:1234", false},
		{"[::1]:1234", false},
		{"[fd00::1]:1234", false},
		{"[fe80::1]:1234", false},
		{"[::ffff:127.0.0.1]:1234", false},
		{"[::ffff:192.168.0.1]:1234", false},
		{"8.8.8.8:1234", true},
		{"172.32.0.1:1234", true},
		{"100.128.0.1:1234", true},
		{"[2001:4860::8888]:1234", true},
		{"[::ffff:8.8.4.4]:1234", true},
	}
	for _, c := range cases {
		d := NewDetector(DetectorConfig{}, t0)
		d.Inbound(ap(c.remote), false, t0)
		if got := !d.Firewalled(); got != c.outside {
			t.Errorf("Inbound(%s): reachable = %v, want %v", c.remote, got, c.outside)
		}
		d = NewDetector(DetectorConfig{}, t0)
		d.ConnectBack(ap(c.remote), t0)
		if got := !d.Firewalled(); got != c.outside {
			t.Errorf("ConnectBack(%s): reachable = %v, want %v", c.remote, got, c.outside)
		}
		// With AcceptLocalProof everything counts.
		d = NewDetector(DetectorConfig{AcceptLocalProof: true}, t0)
		d.Inbound(ap(c.remote), false, t0)
		if d.Firewalled() {
			t.Errorf("AcceptLocalProof: Inbound(%s) did not prove", c.remote)
		}
	}
	// The invalid AddrPort is never outside.
	d := NewDetector(DetectorConfig{}, t0)
	d.Inbound(netip.AddrPort{}, false, t0)
	if !d.Firewalled() {
		t.Error("the zero AddrPort proved reachability")
	}
}

func TestDetectorAlreadyLinkedIsNoProof(t *testing.T) {
	for _, local := range []bool{false, true} {
		d := NewDetector(DetectorConfig{AcceptLocalProof: local}, t0)
		d.Inbound(ap("8.8.8.8:6346"), true, t0)
		d.Inbound(ap("127.0.0.1:6346"), true, t0)
		if !d.Firewalled() {
			t.Errorf("AcceptLocalProof=%v: a linked host proved reachability", local)
		}
		// A connect-back we asked for counts even from a host we are linked
		// to (it is usually one of our peers).
		d.ConnectBack(ap("8.8.8.8:6346"), t0)
		if d.Firewalled() {
			t.Errorf("AcceptLocalProof=%v: connect-back did not prove", local)
		}
	}
}

func TestDetectorFlipsBackAfterSilence(t *testing.T) {
	d := NewDetector(DetectorConfig{AssumeFirewalledAfter: 10 * time.Minute}, t0)
	p := t0.Add(time.Minute)
	d.ConnectBack(ap("8.8.8.8:6346"), p)
	if dl, ok := d.Deadline(); !ok || !dl.Equal(p.Add(10*time.Minute)) {
		t.Fatalf("Deadline() = %v, %v", dl, ok)
	}
	ch := d.Changed()
	d.Tick(p.Add(10*time.Minute - time.Nanosecond))
	if d.Firewalled() || closed(ch) {
		t.Fatal("flipped before AssumeFirewalledAfter")
	}
	flip := p.Add(10 * time.Minute)
	d.Tick(flip)
	if !d.Firewalled() || !closed(ch) {
		t.Fatal("did not flip at exactly AssumeFirewalledAfter")
	}
	if fw, since, last := d.State(); !fw || !since.Equal(flip) || !last.Equal(p) {
		t.Fatalf("State() = %v, %v, %v", fw, since, last)
	}
	// Another Tick does nothing; new proof flips again.
	ch = d.Changed()
	d.Tick(flip.Add(time.Hour))
	if closed(ch) {
		t.Fatal("Tick flipped a firewalled detector")
	}
	d.Inbound(ap("1.1.1.1:80"), false, flip.Add(2*time.Hour))
	if d.Firewalled() || !closed(ch) {
		t.Fatal("fresh proof did not flip back")
	}
}

func TestDetectorFreshProofExtends(t *testing.T) {
	d := NewDetector(DetectorConfig{}, t0) // default 30 min
	d.Inbound(ap("8.8.8.8:1"), false, t0)
	d.Inbound(ap("8.8.8.8:2"), false, t0.Add(20*time.Minute))
	d.Tick(t0.Add(30 * time.Minute))
	if d.Firewalled() {
		t.Fatal("flipped although the last proof is 10 min old")
	}
	d.Tick(t0.Add(50*time.Minute - time.Nanosecond))
	if d.Firewalled() {
		t.Fatal("flipped early")
	}
	d.Tick(t0.Add(50 * time.Minute))
	if !d.Firewalled() {
		t.Fatal("default AssumeFirewalledAfter is not 30 min")
	}
}

func TestDetectorProofOutOfOrderDoesNotRewind(t *testing.T) {
	d := NewDetector(DetectorConfig{}, t0)
	d.Inbound(ap("8.8.8.8:1"), false, t0.Add(time.Hour))
	d.Inbound(ap("8.8.8.8:1"), false, t0) // a late report with an older time
	if _, _, last := d.State(); !last.Equal(t0.Add(time.Hour)) {
		t.Fatalf("lastProof rewound to %v", last)
	}
}

func TestDetectorLogsFlips(t *testing.T) {
	var buf bytes.Buffer
	d := NewDetector(DetectorConfig{AssumeFirewalledAfter: time.Minute, Logger: zerolog.New(&buf)}, t0)
	d.Inbound(ap("8.8.8.8:1"), false, t0)
	d.Tick(t0.Add(time.Minute))
	out := buf.String()
	if !strings.Contains(out, "no longer firewalled") || !strings.Contains(out, "for too long: firewalled") {
		t.Fatalf("log lacks the flips:\n%s", out)
	}
}

func TestDetectorConcurrent(t *testing.T) {
	d := NewDetector(DetectorConfig{AssumeFirewalledAfter: time.Second}, t0)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				now := t0.Add(time.Duration(i) * time.Second)
				switch i % 4 {
				case 0:
					d.Inbound(ap("8.8.8.8:1"), false, now)
				case 1:
					d.Tick(now)
				case 2:
					_ = d.Firewalled()
					_, _, _ = d.State()
				case 3:
					_ = d.Changed()
					d.ConnectBack(ap("9.9.9.9:1"), now)
				}
			}
		}()
	}
	wg.Wait()
}
