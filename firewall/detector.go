package firewall

import (
	"net/netip"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// DetectorConfig configures a Detector.
type DetectorConfig struct {
	// AssumeFirewalledAfter is how long we stay reachable without fresh
	// proof. Zero or negative means DefaultAssumeFirewalledAfter.
	AssumeFirewalledAfter time.Duration
	// AcceptLocalProof counts connections from loopback and private
	// addresses as proof (a local test network). Off on the internet.
	AcceptLocalProof bool
	// Logger gets the flips (info) and the ignored proofs (debug). The zero
	// Logger is silent.
	Logger zerolog.Logger
}

// Detector tracks whether we are firewalled (docs/protocol.md §6.6). It starts
// firewalled; an inbound connection from an outside host we are not linked
// to, or a connect-back we asked for, proves we are reachable; after
// AssumeFirewalledAfter without such proof, Tick makes us firewalled again.
//
// A Detector is safe for concurrent use. It starts no goroutines: the owner
// calls Tick now and then (say every minute, or at Deadline).
type Detector struct {
	after      time.Duration
	acceptLoc  bool
	log        zerolog.Logger
	mu         sync.Mutex
	firewalled bool
	since      time.Time // of the last flip (or of creation)
	lastProof  time.Time // zero until the first proof
	changed    chan struct{}
}

// NewDetector returns a Detector that believes we are firewalled since now.
func NewDetector(cfg DetectorConfig, now time.Time) *Detector {
	after := cfg.AssumeFirewalledAfter
	if after <= 0 {
		after = DefaultAssumeFirewalledAfter
	}
	return &Detector{
		after:      after,
		acceptLoc:  cfg.AcceptLocalProof,
		log:        cfg.Logger,
		firewalled: true,
		since:      now,
		changed:    make(chan struct{}),
	}
}

// Inbound records an inbound TCP connection from remote. It is proof that
// we are reachable unless remote is a local address (see AcceptLocalProof)
// or a host we are already linked to (alreadyLinked): that one may merely
// have found a way through a connection we opened. This is LimeWire's rule
// (AcceptorImpl.checkFirewall/isOutsideConnection).
func (d *Detector) Inbound(remote netip.AddrPort, alreadyLinked bool, now time.Time) {
	switch {
	case alreadyLinked:
		d.log.Debug().Stringer("remote", remote).Msg("inbound from a linked host: no reachability proof")
	case !d.acceptLoc && isLocalAddr(remote.Addr()):
		d.log.Debug().Stringer("remote", remote).Msg("inbound from a local address: no reachability proof")
	default:
		d.proof(now, "inbound", remote)
	}
}

// ConnectBack records that a connect-back we asked for (BEAR/7) reached our
// listening port: proof that we are reachable. A connect-back from a local
// address counts only with AcceptLocalProof. Whether the host is linked to
// us does not matter: we asked it to connect.
func (d *Detector) ConnectBack(remote netip.AddrPort, now time.Time) {
	if !d.acceptLoc && isLocalAddr(remote.Addr()) {
		d.log.Debug().Stringer("remote", remote).Msg("connect-back from a local address: no reachability proof")
		return
	}
	d.proof(now, "connect-back", remote)
}

func (d *Detector) proof(now time.Time, what string, remote netip.AddrPort) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.After(d.lastProof) {
		d.lastProof = now
	}
	if d.firewalled {
		d.flipLocked(false, now)
		d.log.Info().Str("proof", what).Stringer("remote", remote).Msg("reachable: no longer firewalled")
	}
}

// Tick makes us firewalled again when the last proof is at least
// AssumeFirewalledAfter old.
func (d *Detector) Tick(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.firewalled || now.Sub(d.lastProof) < d.after {
		return
	}
	d.flipLocked(true, now)
	d.log.Info().Dur("without_proof", now.Sub(d.lastProof)).Msg("no incoming connection for too long: firewalled")
}

// flipLocked changes the state and wakes the Changed waiters. d.mu is held.
func (d *Detector) flipLocked(firewalled bool, now time.Time) {
	d.firewalled = firewalled
	d.since = now
	close(d.changed)
	d.changed = make(chan struct{})
}

// Firewalled reports whether we believe we are not reachable from outside.
func (d *Detector) Firewalled() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.firewalled
}

// Changed returns a channel that is closed at the next flip (either way).
// Call it again after each wake-up for the following one.
func (d *Detector) Changed() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed
}

// State returns the current belief, when it started (creation or the last
// flip) and the time of the last proof (zero if none yet).
func (d *Detector) State() (firewalled bool, since time.Time, lastProof time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.firewalled, d.since, d.lastProof
}

// Deadline returns when Tick will flip us back to firewalled without new
// proof, and false if we are firewalled already.
func (d *Detector) Deadline() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.firewalled {
		return time.Time{}, false
	}
	return d.lastProof.Add(d.after), true
}
