package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// The errors of PushGuard.Allow. The returned errors wrap them with
// details: test with errors.Is.
var (
	// ErrPushRate: too many callbacks to that IP within the window (or too
	// many distinct targets to remember: we then refuse new ones).
	ErrPushRate = errors.New("push callback rate limit")
	// ErrPushBanned: a connect-back to that ip:port failed recently.
	ErrPushBanned = errors.New("push callback target banned after a failed connect-back")
	// ErrPushAddress: not an address we connect back to (the error also
	// wraps the *AddrError of the policy).
	ErrPushAddress = errors.New("push callback address refused")
)

// PushPolicy configures a PushGuard. Zero numeric fields take the
// DefaultPush... values (defaults.go); the AddrPolicy is the Internet's unless set.
type PushPolicy struct {
	PerIP   int           // callbacks per IP within Window (5)
	Window  time.Duration // sliding window (30 s)
	FailBan time.Duration // how long a failed ip:port is skipped (500 s)
	// AddrPolicy says where we may connect back to (a local test network:
	// AllowLoopback and AllowPrivate).
	AddrPolicy
	// MaxEntries bounds the IPs and the bans remembered (8192 each). When
	// every remembered IP is still within its window, pushes to new IPs
	// are refused with ErrPushRate until entries expire.
	MaxEntries int
}

func (p PushPolicy) withDefaults() PushPolicy {
	if p.PerIP <= 0 {
		p.PerIP = DefaultPushPerIP
	}
	if p.Window <= 0 {
		p.Window = DefaultPushWindow
	}
	if p.FailBan <= 0 {
		p.FailBan = DefaultPushFailBan
	}
	if p.MaxEntries <= 0 {
		p.MaxEntries = DefaultPushMaxEntries
	}
	return p
}

// PushGuard applies a PushPolicy before we answer a Push with a callback
// (gtk-gnutella uploads.c handle_push_request). It is safe for concurrent
// use and its memory is bounded by MaxEntries.
type PushGuard struct {
	p         PushPolicy
	mu        sync.Mutex
	rates     *RateLimit[netip.Addr] // key: IPv4, or the /64 of an IPv6
	bans      map[netip.AddrPort]time.Time
	nextPrune time.Time
}

// NewPushGuard returns a guard applying p (zero fields take the defaults).
func NewPushGuard(p PushPolicy) *PushGuard {
	p = p.withDefaults()
	return &PushGuard{
		p:     p,
		rates: NewRateLimit[netip.Addr](p.PerIP, p.Window, p.MaxEntries),
		bans:  make(map[netip.AddrPort]time.Time),
	}
}

// Policy returns the policy in force, defaults filled in.
func (g *PushGuard) Policy() PushPolicy { return g.p }

// rateKey is the IP the rate limit counts against: IPv4 as is, IPv6 by its
// /64 (one host usually owns a whole /64).
func rateKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

func canonAddrPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Allow decides whether we may connect back to addr now. It checks, in this
// order, the address (ErrPushAddress), a ban on that ip:port after a failed
// connect-back (ErrPushBanned) and the rate per IP (ErrPushRate: at most
// PerIP callbacks within any Window). When it returns nil the attempt is
// counted; a refused attempt is not.
//
// A hostile or banned address (AddrPolicy.Hostiles) is always refused with
// ErrPushAddress.
func (g *PushGuard) Allow(addr netip.AddrPort, now time.Time) error {
	if err := g.p.Check(addr); err != nil {
		return fmt.Errorf("%w: %w", ErrPushAddress, err)
	}
	return g.allow(addr, now)
}

// AllowLinked is Allow for a callback to the real remote address of a
// peer linked to us (not an address it claims): as gtk-gnutella, the
// address check is waived for a private, link-local or bogon address the
// peer did connect from, but never for loopback nor an invalid address,
// and hostiles, bans and the rate apply as for any Push
// (docs/protocol.md §6.4, §8.3).
func (g *PushGuard) AllowLinked(addr netip.AddrPort, now time.Time) error {
	p := g.p.AddrPolicy
	p.AllowPrivate = true
	if err := p.Check(addr); err != nil {
		return fmt.Errorf("%w: %w", ErrPushAddress, err)
	}
	return g.allow(addr, now)
}

func (g *PushGuard) allow(addr netip.AddrPort, now time.Time) error {
	addr = canonAddrPort(addr)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.maybePruneLocked(now)

	if until, ok := g.bans[addr]; ok {
		if now.Before(until) {
			return fmt.Errorf("%w: %s for another %v", ErrPushBanned, addr, until.Sub(now).Round(time.Second))
		}
		delete(g.bans, addr)
	}

	key := rateKey(addr.Addr())
	switch v, n := g.rates.Allow(key, now); v {
	case RateFull:
		return fmt.Errorf("%w: %d callback targets in the last %v", ErrPushRate, len(g.rates.m), g.p.Window)
	case RateTooMany:
		return fmt.Errorf("%w: %d callbacks to %s in the last %v", ErrPushRate, n, key, g.p.Window)
	}
	return nil
}

// Failed records that the connect-back to addr failed: that ip:port is
// refused for FailBan (gtk: 500 s).
func (g *PushGuard) Failed(addr netip.AddrPort, now time.Time) {
	if !addr.IsValid() {
		return
	}
	addr = canonAddrPort(addr)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.maybePruneLocked(now)
	if _, ok := g.bans[addr]; !ok && len(g.bans) >= g.p.MaxEntries {
		g.pruneLocked(now)
		if len(g.bans) >= g.p.MaxEntries {
			// Evict the ban that ends first: at worst we retry a dead
			// address a little early.
			var victim netip.AddrPort
			var first time.Time
			for k, until := range g.bans {
				if !victim.IsValid() || until.Before(first) {
					victim, first = k, until
				}
			}
			delete(g.bans, victim)
		}
	}
	g.bans[addr] = now.Add(g.p.FailBan)
}

// Len returns how many IPs and bans the guard remembers.
func (g *PushGuard) Len() (ips, bans int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.rates.m), len(g.bans)
}

// maybePruneLocked prunes once per Window.
func (g *PushGuard) maybePruneLocked(now time.Time) {
	if now.Before(g.nextPrune) && g.nextPrune.Sub(now) <= g.p.Window {
		return
	}
	g.nextPrune = now.Add(g.p.Window)
	g.pruneLocked(now)
}

// pruneLocked forgets the IPs without a callback in the last Window and the
// bans that ended.
func (g *PushGuard) pruneLocked(now time.Time) {
	g.rates.prune(now)
	for k, until := range g.bans {
		if !now.Before(until) {
			delete(g.bans, k)
		}
	}
}
