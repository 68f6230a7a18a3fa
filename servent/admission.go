package servent

import (
	"gnutella/firewall"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Admission of inbound connections on the one port, before they cost us
// more than a descriptor: the caps on pending connections (accepted, first
// line or handshake not done yet), per address and in total; the
// file-descriptor budget; and the rate of Gnutella handshakes per address
// (429, as gtk-gnutella answers a third connection in a minute).
//
// An address is counted as itself for IPv4 and as its /64 for IPv6
// (addrKey): one host usually holds a whole /64.
//
// When the total cap (or the descriptor budget) is reached, a newcomer does
// not simply lose to whoever came first: the oldest pending connection of
// the address that holds the most is closed for it, as long as that address
// would still hold more than the newcomer's. Idle connections from a few
// addresses therefore cannot lock out a peer from another one; to fill the
// table against it an attacker needs as many addresses as the table has
// slots.

// pendingConn is one inbound connection between accept and the end of its
// handshake (or its hand-off to a download, for a GIV), or for as long as
// it is served over HTTP: every inbound connection that is not a link.
type pendingConn struct {
	conn net.Conn
	key  netip.Addr
	adm  *admissions
	gone bool // left or evicted; under admissions.mu
}

// admissions is the servent's bookkeeping of inbound connections.
type admissions struct {
	maxPending, perAddr int

	// held counts the inbound connections accepted and not yet done with
	// by serveConn (pending or being served over HTTP, GIV or a walker
	// check); links are counted apart, from the link table.
	held atomic.Int64
	// fdLimit is RLIMIT_NOFILE (0: unknown, no budget); fdBase the
	// descriptors open when we started (the process's own: files, the
	// listener, other servents); fdReserve those kept free for outbound
	// dials, downloads, the control API and the host-cache file.
	fdLimit, fdBase, fdReserve int64

	rateLoop    bool // rate-limit loopback too
	rateExempt  []netip.Prefix
	mu          sync.Mutex // guards the fields below; a leaf mutex
	pending     map[netip.Addr][]*pendingConn
	total       int
	handshakes  *firewall.RateLimit[netip.Addr] // admitted Gnutella handshakes (nil: no limit)
	accepts     *firewall.RateLimit[netip.Addr] // accepted connections (nil: no limit)
	evicted     atomic.Int64
	refusedFull atomic.Int64
	refusedRate atomic.Int64
}

// maxRateEntries bounds each rate table: when every address it holds is
// still within its window, a new address is refused until one expires
// (firewall.RateLimit), so a flood from many addresses cannot reset the
// count of the one being limited.
const maxRateEntries = 1 << 16

func (a *admissions) init(cfg *Config) {
	a.maxPending, a.perAddr = cfg.MaxPending, cfg.MaxPendingPerAddr
	a.rateLoop, a.rateExempt = cfg.RateLimitLoopback, cfg.RateWhitelist
	a.fdReserve = int64(cfg.FDReserve)
	a.pending = make(map[netip.Addr][]*pendingConn)
	if cfg.HandshakeRate > 0 {
		a.handshakes = firewall.NewRateLimit[netip.Addr](cfg.HandshakeRate, cfg.HandshakeRateWindow, maxRateEntries)
	}
	if cfg.AcceptRate > 0 {
		a.accepts = firewall.NewRateLimit[netip.Addr](cfg.AcceptRate, cfg.AcceptRateWindow, maxRateEntries)
	}
}

// start reads the descriptor limit and what is already open.
func (a *admissions) start() {
	limit, open := fdLimits()
	a.fdLimit, a.fdBase = int64(limit), int64(open)
}

// Sizing the ultrapeer's default leaf limit (DefaultMaxLeaves): a leaf
// link costs one descriptor and, idle, about 4-6 KB of memory over plain TCP
// and 8-11 KB with deflate both ways (BENCHMARKS.md, LeafLinkMemory); a
// leaf that talks takes buffers while it does. leafMemory is that figure
// with room for traffic, leafMemoryShare the part of the machine's memory
// the leaves may have, leafOtherFDs the descriptors kept for everything
// else (ultrapeer links, uploads, downloads, the share's files), and
// maxDefaultLeaves the ceiling: the most leaves BenchmarkUltrapeerCapacity
// shows one process holding, with 64 ultrapeer links, under 200 MB.
const (
	leafMemory       = 16 << 10
	leafMemoryShare  = 8
	leafOtherFDs     = 128
	minDefaultLeaves = 32
	maxDefaultLeaves = 5000
	defaultFDReserve = 64 // Config.FDReserve's default
)

// DefaultMaxLeaves is the leaf limit DefaultConfig gives: the leaves that
// fit in the descriptor limit (RLIMIT_NOFILE, less Config.FDReserve and
// leafOtherFDs) and in an eighth of the memory (the machine's, or the
// cgroup's when that is less) at 16 KiB a leaf, at most 5,000 and at least
// 32. Where neither limit can be read it is 300.
func DefaultMaxLeaves() int { return defaultMaxLeaves() }

// defaultMaxLeaves reads the limits once: DefaultConfig is called for
// every servent of a testnet.
var defaultMaxLeaves = sync.OnceValue(func() int {
	limit, _ := fdLimits()
	return leafCapacity(int64(limit), memoryLimit(), defaultFDReserve)
})

// memoryLimit is readMemoryLimit, read once: every servent's QRP budget
// asks for it (qrp.go).
var memoryLimit = sync.OnceValue(readMemoryLimit)

// leafCapacity is DefaultMaxLeaves for a descriptor limit and a memory
// size in bytes (0: unknown).
func leafCapacity(fdLimit, memory, fdReserve int64) int {
	if fdLimit <= 0 && memory <= 0 {
		return 300
	}
	n := int64(maxDefaultLeaves)
	if fdLimit > 0 {
		n = min(n, fdLimit-fdReserve-leafOtherFDs)
	}
	if memory > 0 {
		n = min(n, memory/leafMemoryShare/leafMemory)
	}
	return int(max(n, minDefaultLeaves))
}

// addrKey is the unit an address is counted in: IPv4 itself, IPv6 its /64.
func addrKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return ip
}

// enter admits a just-accepted connection from ip as pending, or says it
// must be closed at once. links is how many links we hold (each a
// descriptor). The connection it evicts for this one, if any, is closed
// by the caller of enter (after the lock is released).
func (a *admissions) enter(conn net.Conn, ip netip.Addr, links int) (pc *pendingConn, evict net.Conn) {
	key := addrKey(ip)
	held := a.held.Add(1)
	fdFull := a.fdLimit > 0 && a.fdBase+held+int64(links)+a.fdReserve > a.fdLimit
	a.mu.Lock()
	defer a.mu.Unlock()
	own := len(a.pending[key])
	if own >= a.perAddr {
		a.held.Add(-1)
		a.refusedFull.Add(1)
		return nil, nil
	}
	if a.total >= a.maxPending || fdFull {
		victim := a.victimLocked(own)
		if victim == nil {
			a.held.Add(-1)
			a.refusedFull.Add(1)
			return nil, nil
		}
		a.removeLocked(victim)
		a.evicted.Add(1)
		evict = victim.conn
	}
	pc = &pendingConn{conn: conn, key: key, adm: a}
	a.pending[key] = append(a.pending[key], pc)
	a.total++
	return pc, evict
}

// victimLocked picks the oldest pending connection of the address holding
// the most, if it holds at least two more than own.
func (a *admissions) victimLocked(own int) *pendingConn {
	var most []*pendingConn
	for _, l := range a.pending {
		if len(l) > len(most) {
			most = l
		}
	}
	if len(most) < own+2 {
		return nil
	}
	return most[0]
}

func (a *admissions) removeLocked(pc *pendingConn) {
	pc.gone = true
	l := a.pending[pc.key]
	for i, x := range l {
		if x == pc {
			l = append(l[:i:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(a.pending, pc.key)
	} else {
		a.pending[pc.key] = l
	}
	a.total--
}

// leave ends pc's pending time: its handshake is done or it was handed
// over. It reports false when pc was evicted meanwhile (its connection is
// closed; the caller drops it). Calling it again is harmless.
func (pc *pendingConn) leave() bool {
	a := pc.adm
	a.mu.Lock()
	defer a.mu.Unlock()
	if pc.gone {
		return false
	}
	a.removeLocked(pc)
	return true
}

// done is called once serveConn is finished with the connection (closed,
// or now a link, which the link table counts).
func (pc *pendingConn) done() {
	pc.leave()
	pc.adm.held.Add(-1)
}

// rateExempted says whether ip escapes the handshake rate limit: the
// whitelist, and loopback unless RateLimitLoopback.
func (a *admissions) rateExempted(ip netip.Addr) bool {
	if ip.IsLoopback() && !a.rateLoop {
		return true
	}
	for _, p := range a.rateExempt {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// allowHandshake counts a Gnutella handshake from ip at now and reports
// whether it is within HandshakeRate per HandshakeRateWindow. Refused
// attempts are not counted: a peer that keeps trying gets its next chance
// when the oldest admitted handshake leaves the window.
func (a *admissions) allowHandshake(ip netip.Addr, now time.Time) bool {
	return a.allowRate(a.handshakes, ip, now)
}

// allowAccept counts a connection accepted from ip at now and reports
// whether it is within AcceptRate per AcceptRateWindow: a connect-and-close
// flood from one address is closed at accept, unread, beyond it.
func (a *admissions) allowAccept(ip netip.Addr, now time.Time) bool {
	if a.allowRate(a.accepts, ip, now) {
		return true
	}
	a.refusedRate.Add(1)
	return false
}

func (a *admissions) allowRate(t *firewall.RateLimit[netip.Addr], ip netip.Addr, now time.Time) bool {
	if t == nil || a.rateExempted(ip) {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	v, _ := t.Allow(addrKey(ip), now)
	return v == firewall.RateOK
}

// AdmissionStats are the counters of inbound admission.
type AdmissionStats struct {
	Pending int   `json:"pending"`  // connections pending now
	Held    int64 `json:"held"`     // inbound connections held outside links
	Refused int64 `json:"refused"`  // closed at accept (caps or descriptors)
	Flooded int64 `json:"flooded"`  // closed at accept (AcceptRate)
	Evicted int64 `json:"evicted"`  // pending ones closed for a newcomer
	FDLimit int64 `json:"fd_limit"` // RLIMIT_NOFILE (0: unknown)
}

// Admission returns the admission counters.
func (s *Servent) Admission() AdmissionStats {
	a := &s.adm
	a.mu.Lock()
	n := a.total
	a.mu.Unlock()
	return AdmissionStats{Pending: n, Held: a.held.Load(), Refused: a.refusedFull.Load(),
		Flooded: a.refusedRate.Load(), Evicted: a.evicted.Load(), FDLimit: a.fdLimit}
}
