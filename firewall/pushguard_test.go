package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestPushGuardDefaults(t *testing.T) {
	p := NewPushGuard(PushPolicy{}).Policy()
	if p.PerIP != 5 || p.Window != 30*time.Second || p.FailBan != 500*time.Second || p.MaxEntries != DefaultPushMaxEntries {
		t.Fatalf("defaults = %+v", p)
	}
	if p.AllowPrivate || p.AllowLoopback {
		t.Fatal("private or loopback allowed by default")
	}
}

func mustAllow(t *testing.T, g *PushGuard, a netip.AddrPort, now time.Time) {
	t.Helper()
	if err := g.Allow(a, now); err != nil {
		t.Fatalf("Allow(%s, t0+%v) = %v", a, now.Sub(t0), err)
	}
}

func mustRefuse(t *testing.T, g *PushGuard, a netip.AddrPort, now time.Time, want error) {
	t.Helper()
	if err := g.Allow(a, now); !errors.Is(err, want) {
		t.Fatalf("Allow(%s, t0+%v) = %v, want %v", a, now.Sub(t0), err, want)
	}
}

func TestPushGuardRateExactlyFivePer30s(t *testing.T) {
	g := NewPushGuard(PushPolicy{})
	a := ap("8.8.8.8:6346")
	for i := 0; i < 5; i++ {
		mustAllow(t, g, a, t0.Add(time.Duration(i)*time.Second))
	}
	mustRefuse(t, g, a, t0.Add(5*time.Second), ErrPushRate)
	// Another port of the same IP shares the limit.
	mustRefuse(t, g, ap("8.8.8.8:1"), t0.Add(5*time.Second), ErrPushRate)
	// Another IP does not.
	mustAllow(t, g, ap("8.8.4.4:6346"), t0.Add(5*time.Second))
	// The first callback (t0) is still inside the window just before 30 s.
	mustRefuse(t, g, a, t0.Add(30*time.Second-time.Nanosecond), ErrPushRate)
	// At exactly 30 s it has left the window: one slot.
	mustAllow(t, g, a, t0.Add(30*time.Second))
	mustRefuse(t, g, a, t0.Add(30*time.Second), ErrPushRate)
	// The window slides: the t0+1s callback leaves at t0+31s.
	mustRefuse(t, g, a, t0.Add(31*time.Second-time.Nanosecond), ErrPushRate)
	mustAllow(t, g, a, t0.Add(31*time.Second))
	// Long after, the full allowance is back.
	later := t0.Add(10 * time.Minute)
	for i := 0; i < 5; i++ {
		mustAllow(t, g, a, later)
	}
	mustRefuse(t, g, a, later, ErrPushRate)
}

func TestPushGuardRefusalsAreNotCounted(t *testing.T) {
	g := NewPushGuard(PushPolicy{PerIP: 2, Window: 10 * time.Second})
	a := ap("8.8.8.8:6346")
	mustAllow(t, g, a, t0)
	mustAllow(t, g, a, t0)
	for i := 0; i < 100; i++ {
		mustRefuse(t, g, a, t0.Add(time.Duration(i)*50*time.Millisecond), ErrPushRate)
	}
	// Had the refusals counted, this would still be refused.
	mustAllow(t, g, a, t0.Add(10*time.Second))
	mustAllow(t, g, a, t0.Add(10*time.Second))
	mustRefuse(t, g, a, t0.Add(10*time.Second), ErrPushRate)
}

func TestPushGuardBanAfterFailure(t *testing.T) {
	g := NewPushGuard(PushPolicy{})
	a := ap("8.8.8.8:6346")
	mustAllow(t, g, a, t0)
	g.Failed(a, t0)
	mustRefuse(t, g, a, t0.Add(time.Second), ErrPushBanned)
	mustRefuse(t, g, a, t0.Add(500*time.Second-time.Nanosecond), ErrPushBanned)
	// The ban is on ip:port: another port of that IP may be tried.
	mustAllow(t, g, ap("8.8.8.8:6347"), t0.Add(time.Second))
	// IPv4-mapped is the same target.
	mustRefuse(t, g, ap("[::ffff:8.8.8.8]:6346"), t0.Add(time.Second), ErrPushBanned)
	// Expired at exactly FailBan.
	mustAllow(t, g, a, t0.Add(500*time.Second))
	if _, bans := g.Len(); bans != 0 {
		t.Fatalf("expired ban still remembered: %d", bans)
	}
	// A banned attempt is not counted either.
	g2 := NewPushGuard(PushPolicy{PerIP: 1, FailBan: time.Second})
	g2.Failed(a, t0)
	mustRefuse(t, g2, a, t0, ErrPushBanned)
	mustAllow(t, g2, a, t0.Add(time.Second))
}

func TestPushGuardAddressPolicy(t *testing.T) {
	internet := PushPolicy{}
	testnet := PushPolicy{AddrPolicy: AddrPolicy{AllowPrivate: true, AllowLoopback: true}}
	cases := []struct {
		addr              string
		internet, testnet bool // allowed? (a testnet admits link-local and bogons: a lab may use them)
	}{
		{"8.8.8.8:6346", true, true},
		{"1.2.3.4:1", true, true},
		{"223.255.255.254:6346", true, true},
		{"8.8.8.8:0", false, false},
		{"0.0.0.0:6346", false, false},
		{"0.1.2.3:6346", false, false},
		{"127.0.0.1:6346", false, true},
		{"127.1.2.3:6346", false, true},
		{"10.0.0.1:6346", false, true},
		{"172.16.5.4:6346", false, true},
		{"192.168.0.10:6346", false, true},
		{"100.64.0.1:6346", false, true},
		{"169.254.0.1:6346", false, true},
		{"192.0.2.1:6346", false, true},
		{"198.51.100.7:6346", false, true},
		{"203.0.113.9:6346", false, true},
		{"198.18.0.1:6346", false, true},
		{"192.0.0.8:6346", false, true},
		{"224.0.0.1:6346", false, false},
		{"239.255.255.250:1900", false, false},
		{"240.0.0.1:6346", false, false},
		{"255.255.255.255:6346", false, false},
		{"[::ffff:8.8.8.8]:6346", true, true},
		{"[::ffff:127.0.0.1]:6346", false, true},
		{"[::ffff:0.0.0.0]:6346", false, false},
		{"[2001:4860::8888]:6346", true, true},
		{"[::]:6346", false, false},
		{"[::1]:6346", false, true},
		{"[fd12:3456::1]:6346", false, true},
		{"[fe80::1]:6346", false, true},
		{"[ff02::1]:6346", false, false},
		{"[2001:db8::1]:6346", false, true},
		{"[100::1]:6346", false, true},
		{"[2001:4860::8888]:0", false, false},
	}
	for _, c := range cases {
		for _, pc := range []struct {
			name string
			p    PushPolicy
			want bool
		}{{"internet", internet, c.internet}, {"testnet", testnet, c.testnet}} {
			err := NewPushGuard(pc.p).Allow(ap(c.addr), t0)
			if pc.want && err != nil {
				t.Errorf("%s: Allow(%s) = %v, want allowed", pc.name, c.addr, err)
			}
			if !pc.want && !errors.Is(err, ErrPushAddress) {
				t.Errorf("%s: Allow(%s) = %v, want ErrPushAddress", pc.name, c.addr, err)
			}
			if err2 := pc.p.Check(ap(c.addr)); (err2 == nil) != pc.want {
				t.Errorf("%s: Check(%s) = %v", pc.name, c.addr, err2)
			}
		}
	}
	if err := NewPushGuard(internet).Allow(netip.AddrPort{}, t0); !errors.Is(err, ErrPushAddress) {
		t.Errorf("Allow(zero AddrPort) = %v", err)
	}
	// Private without loopback and the reverse.
	if NewPushGuard(PushPolicy{AddrPolicy: AddrPolicy{AllowPrivate: true}}).Allow(ap("127.0.0.1:1"), t0) == nil {
		t.Error("AllowPrivate allowed loopback")
	}
	if NewPushGuard(PushPolicy{AddrPolicy: AddrPolicy{AllowLoopback: true}}).Allow(ap("10.0.0.1:1"), t0) == nil {
		t.Error("AllowLoopback allowed a private address")
	}
}

func TestPushGuardIPv6CountsPer64(t *testing.T) {
	g := NewPushGuard(PushPolicy{PerIP: 2})
	mustAllow(t, g, ap("[2001:4860:1:2::1]:6346"), t0)
	mustAllow(t, g, ap("[2001:4860:1:2::2]:6346"), t0)
	mustRefuse(t, g, ap("[2001:4860:1:2:ffff::3]:6346"), t0, ErrPushRate)
	mustAllow(t, g, ap("[2001:4860:1:3::1]:6346"), t0)
}

func TestPushGuardBoundedMemory(t *testing.T) {
	g := NewPushGuard(PushPolicy{MaxEntries: 4})
	ip := func(i int) netip.AddrPort { return ap(fmt.Sprintf("8.8.%d.%d:6346", i/256, i%256)) }
	for i := 0; i < 4; i++ {
		mustAllow(t, g, ip(i), t0)
	}
	// Full of live entries: new targets are refused, known ones still work.
	mustRefuse(t, g, ip(4), t0.Add(time.Second), ErrPushRate)
	mustAllow(t, g, ip(0), t0.Add(time.Second))
	if ips, _ := g.Len(); ips != 4 {
		t.Fatalf("remembers %d IPs, want 4", ips)
	}
	// Once the window has passed the old entries are forgotten.
	mustAllow(t, g, ip(4), t0.Add(time.Minute))
	if ips, _ := g.Len(); ips > 4 {
		t.Fatalf("remembers %d IPs, more than MaxEntries", ips)
	}
	// Many different targets over a long time stay bounded.
	for i := 0; i < 5000; i++ {
		_ = g.Allow(ip(i), t0.Add(time.Duration(i)*time.Second))
		g.Failed(ip(i), t0.Add(time.Duration(i)*time.Second))
		if ips, bans := g.Len(); ips > 4 || bans > 4 {
			t.Fatalf("after %d: %d IPs, %d bans", i, ips, bans)
		}
	}
	// The newest ban survives eviction.
	mustRefuse(t, g, ip(4999), t0.Add(5000*time.Second), ErrPushBanned)
}

func TestPushGuardPrunes(t *testing.T) {
	g := NewPushGuard(PushPolicy{})
	for i := 0; i < 100; i++ {
		a := ap(fmt.Sprintf("9.9.%d.1:6346", i))
		mustAllow(t, g, a, t0)
		g.Failed(a, t0)
	}
	mustAllow(t, g, ap("1.1.1.1:1"), t0.Add(time.Hour))
	if ips, bans := g.Len(); ips != 1 || bans != 0 {
		t.Fatalf("after an hour: %d IPs, %d bans remembered", ips, bans)
	}
	// A clock that jumps backwards does not stall pruning.
	mustAllow(t, g, ap("1.1.1.2:1"), t0.Add(-time.Hour))
}

func TestPushGuardConcurrent(t *testing.T) {
	g := NewPushGuard(PushPolicy{MaxEntries: 64})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				a := ap(fmt.Sprintf("8.8.%d.%d:6346", w, i%200))
				now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
				if g.Allow(a, now) == nil && i%3 == 0 {
					g.Failed(a, now)
				}
				_, _ = g.Len()
			}
		}()
	}
	wg.Wait()
}

// AllowLinked (a callback to a linked peer's real address) waives only the
// private classes: never loopback, invalid addresses or hostiles, and the
// rate and failure bans hold.
func TestPushGuardAllowLinked(t *testing.T) {
	h := NewHostiles(0, nil)
	h.Ban(netip.MustParseAddr("10.0.0.9"), time.Hour, "test")
	g := NewPushGuard(PushPolicy{AddrPolicy: AddrPolicy{Hostiles: h}})
	now := time.Unix(1000, 0)
	priv := netip.MustParseAddrPort("10.0.0.1:6346")
	if err := g.Allow(priv, now); !errors.Is(err, ErrPushAddress) {
		t.Fatalf("Allow(private) = %v", err)
	}
	for i := range DefaultPushPerIP {
		if err := g.AllowLinked(netip.AddrPortFrom(priv.Addr(), uint16(7000+i)), now); err != nil {
			t.Fatalf("AllowLinked(private) #%d = %v", i, err)
		}
	}
	if err := g.AllowLinked(priv, now); !errors.Is(err, ErrPushRate) {
		t.Fatalf("AllowLinked over the rate = %v", err)
	}
	for _, s := range []string{"127.0.0.1:6346", "10.0.0.9:6346", "0.0.0.0:6346", "10.0.0.2:0", "224.0.0.1:6346"} {
		if err := g.AllowLinked(netip.MustParseAddrPort(s), now); !errors.Is(err, ErrPushAddress) {
			t.Errorf("AllowLinked(%s) = %v, want ErrPushAddress", s, err)
		}
	}
	g.Failed(netip.MustParseAddrPort("10.0.0.3:6346"), now)
	if err := g.AllowLinked(netip.MustParseAddrPort("10.0.0.3:6346"), now); !errors.Is(err, ErrPushBanned) {
		t.Errorf("AllowLinked after a failure = %v", err)
	}
}
