// Package hostcache is the host cache of a servent: the bounded set of
// addresses it knows and can dial, with dial back-off, X-Try headers and a
// file that survives restarts. It sits below servent (which fills it from
// pongs, handshakes and GWebCaches) and below gwc (which shares its
// address policy).
package hostcache

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"gnutella/firewall"
	"gnutella/protocol"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Source says where the host cache learned an address.
type Source uint8

const (
	// SourcePeerFlag is an address given on the command line (--peer).
	// Such entries are evicted last.
	SourcePeerFlag Source = iota
	// SourcePong is an address read from a Pong.
	SourcePong
	// SourceXTry is an address from an X-Try handshake header.
	SourceXTry
	// SourceXTryUltrapeers is an address from an X-Try-Ultrapeers header.
	SourceXTryUltrapeers
	// SourceGWebCache is an address returned by a GWebCache.
	SourceGWebCache
	// SourceConnected is an address we completed a handshake with.
	SourceConnected
	// SourceSaved is an address read back from the host cache file.
	SourceSaved
)

func (s Source) String() string {
	switch s {
	case SourcePeerFlag:
		return "peer-flag"
	case SourcePong:
		return "pong"
	case SourceXTry:
		return "x-try"
	case SourceXTryUltrapeers:
		return "x-try-ultrapeers"
	case SourceGWebCache:
		return "gwebcache"
	case SourceConnected:
		return "connected"
	case SourceSaved:
		return "saved"
	}
	return "source(" + strconv.Itoa(int(s)) + ")"
}

// Back-off after failed dials: hostBackoffBase doubled per consecutive
// failure, capped at hostBackoffMax.
const (
	hostBackoffBase = 30 * time.Second
	hostBackoffMax  = time.Hour
	// hostMaxFailures caps the stored failure count (the back-off is capped
	// long before).
	hostMaxFailures = 1000
	// hostLoadMaxBytes bounds how much of a host cache file Load reads.
	hostLoadMaxBytes = 1 << 20
	// hostLoadMaxLine bounds one line of a host cache file; longer lines are skipped.
	hostLoadMaxLine = 256
	// hostTryMaxItems bounds how many entries of one X-Try header are looked at.
	hostTryMaxItems = 100
)

type hostEntry struct {
	addr     netip.AddrPort
	ultra    bool
	src      Source
	lastSeen time.Time // last time it was advertised to us or we connected
	failures int       // consecutive failed dials
	retryAt  time.Time // not picked before this (back-off)
	good     bool      // we completed a handshake with it at least once
	// waived: added by AddPeer although the policy refuses its class
	// (loopback or private); dialled, but never advertised.
	waived bool
	udp    hostUDP // what we learnt of it over UDP
}

// hostUDP is what a host showed over UDP, saved as the fifth field of its
// line: 0 nothing, 1 it answered a UDP ping of ours, 3 it is also a UDP
// host cache (its pong carried "UDPHC"); bit 4 marks a GUESS ultrapeer (its
// pong carried "GUE", docs/protocol.md §11 "GUESS").
type hostUDP uint8

const (
	hostSpeaksUDP hostUDP = 1 << 0
	hostIsUHC     hostUDP = 1 << 1
	hostGUESS     hostUDP = 1 << 2
)

// Cache holds the addresses a servent knows and can dial. It is bounded:
// when full, adding a new address evicts the worst entry (failing, never
// connected, oldest; --peer addresses go last). It is safe for concurrent use.
//
// AllowLoopback and AllowPrivate must be set before the cache is shared.
type Cache struct {
	// AddrPolicy says which addresses the cache admits (the project's one
	// address policy; a testnet on one machine allows loopback). With
	// Hostiles set, hostile and banned addresses are neither stored nor,
	// if banned after they were stored, picked or sampled.
	firewall.AddrPolicy

	mu    sync.Mutex
	max   int
	hosts map[netip.AddrPort]*hostEntry
}

// New returns an empty cache holding at most max addresses (at
// least 1).
func New(max int) *Cache {
	if max < 1 {
		max = 1
	}
	return &Cache{max: max, hosts: make(map[netip.AddrPort]*hostEntry)}
}

// Canon unmaps IPv4-in-IPv6 addresses and drops IPv6 zones, so one host
// has one key.
func Canon(a netip.AddrPort) netip.AddrPort {
	ip := a.Addr().Unmap().WithZone("")
	return netip.AddrPortFrom(ip, a.Port())
}

// Valid reports whether a would be admitted by Add under the cache's policy.
func (c *Cache) Valid(a netip.AddrPort) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Check(Canon(a)) == nil
}

// Refusal returns nil if Add would admit a under the cache's policy, else
// why not (a *firewall.AddrError).
func (c *Cache) Refusal(a netip.AddrPort) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Check(Canon(a))
}

// AddPeer adds a as an address the user asked to dial (a --peer): like
// Add with SourcePeerFlag, but a loopback or private address is admitted
// even when the policy refuses its class. Such an address is dialled but
// never advertised (Sample). Hostile, invalid and port-0 addresses are
// still refused: AddPeer returns why (a *firewall.AddrError).
func (c *Cache) AddPeer(a netip.AddrPort, ultra bool, now time.Time) error {
	a = Canon(a)
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.Check(a)
	if err != nil && !Waivable(err) {
		return err
	}
	e := c.addLocked(a, ultra, SourcePeerFlag, now)
	e.waived = err != nil
	return nil
}

// Waivable reports whether err, an error of the address policy, refuses
// an address only for its class (loopback, private, link-local or
// reserved), which a --peer given by the user overrides (AddPeer).
func Waivable(err error) bool {
	var ae *firewall.AddrError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.Class {
	case firewall.AddrLoopback, firewall.AddrPrivate, firewall.AddrLinkLocal, firewall.AddrBogon:
		return true
	}
	return false
}

// Add records that a is a Gnutella host (an ultrapeer if ultra), learned from
// src at now. A known address is refreshed. It returns false if the address is
// refused by the policy (port 0, unspecified, multicast, broadcast, reserved,
// and unless allowed loopback or non-public addresses).
//
// The ultra flag of a known entry is set by any source but cleared only by
// SourceConnected or SourcePeerFlag, which know better than hearsay.
func (c *Cache) Add(a netip.AddrPort, ultra bool, src Source, now time.Time) bool {
	a = Canon(a)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Check(a) != nil {
		return false
	}
	c.addLocked(a, ultra, src, now)
	return true
}

func (c *Cache) addLocked(a netip.AddrPort, ultra bool, src Source, now time.Time) *hostEntry {
	if e, ok := c.hosts[a]; ok {
		if now.After(e.lastSeen) {
			e.lastSeen = now
		}
		if ultra || src == SourceConnected || src == SourcePeerFlag {
			e.ultra = ultra
		}
		if src == SourcePeerFlag || (src == SourceConnected && e.src != SourcePeerFlag) {
			e.src = src
		}
		return e
	}
	if len(c.hosts) >= c.max {
		c.evictLocked()
	}
	e := &hostEntry{addr: a, ultra: ultra, src: src, lastSeen: now}
	c.hosts[a] = e
	return e
}

// worse reports whether a should be evicted before b.
func (a *hostEntry) worse(b *hostEntry) bool {
	if pa, pb := a.src == SourcePeerFlag, b.src == SourcePeerFlag; pa != pb {
		return pb
	}
	if a.failures != b.failures {
		return a.failures > b.failures
	}
	if a.good != b.good {
		return b.good
	}
	if !a.lastSeen.Equal(b.lastSeen) {
		return a.lastSeen.Before(b.lastSeen)
	}
	return a.addr.Compare(b.addr) < 0 // deterministic
}

// better reports whether a should be dialled (or advertised) before b.
func (a *hostEntry) better(b *hostEntry) bool {
	if a.ultra != b.ultra {
		return a.ultra
	}
	if a.failures != b.failures {
		return a.failures < b.failures
	}
	if a.good != b.good {
		return a.good
	}
	if !a.lastSeen.Equal(b.lastSeen) {
		return a.lastSeen.After(b.lastSeen)
	}
	return a.addr.Compare(b.addr) < 0
}

func (c *Cache) evictLocked() {
	var worst *hostEntry
	for _, e := range c.hosts {
		if worst == nil || e.worse(worst) {
			worst = e
		}
	}
	if worst != nil {
		delete(c.hosts, worst.addr)
	}
}

// Pick returns the best address to dial at now: not in back-off and not
// skipped (the caller skips addresses it is connected to or dialling).
// Ultrapeers come first, then hosts with fewer failures, hosts we connected
// to before, and recently seen ones. Pick does not change the cache: call
// Failed or Connected with the outcome.
func (c *Cache) Pick(now time.Time, skip func(netip.AddrPort) bool) (netip.AddrPort, bool) {
	addrs := c.ranked(func(e *hostEntry) bool { return !e.retryAt.After(now) && c.CheckHostile(e.addr) == nil })
	// skip is called without the lock so it may use the cache itself.
	for _, a := range addrs {
		if skip == nil || !skip(a) {
			return a, true
		}
	}
	return netip.AddrPort{}, false
}

// Backoff is how long an address is not picked after failures
// consecutive failed dials: 30 s, 60 s, 120 s, ... capped at one hour.
func Backoff(failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := hostBackoffBase
	for i := 1; i < failures; i++ {
		d *= 2
		if d >= hostBackoffMax {
			return hostBackoffMax
		}
	}
	return d
}

// Failed records a failed dial (or a refused handshake) of a at now: the
// address is not picked again for Backoff(failures). Unknown addresses
// are ignored.
func (c *Cache) Failed(a netip.AddrPort, now time.Time) {
	a = Canon(a)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.hosts[a]
	if !ok {
		return
	}
	if e.failures < hostMaxFailures {
		e.failures++
	}
	e.retryAt = now.Add(Backoff(e.failures))
}

// Connected records a completed handshake with a at now: its back-off is
// reset and it is marked good. An unknown (but admissible) address is added.
func (c *Cache) Connected(a netip.AddrPort, now time.Time) {
	a = Canon(a)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.hosts[a]
	if !ok {
		if c.Check(a) != nil {
			return
		}
		e = c.addLocked(a, false, SourceConnected, now)
	}
	e.failures = 0
	e.retryAt = time.Time{}
	e.good = true
	if now.After(e.lastSeen) {
		e.lastSeen = now
	}
}

// Remove forgets a.
func (c *Cache) Remove(a netip.AddrPort) {
	a = Canon(a)
	c.mu.Lock()
	delete(c.hosts, a)
	c.mu.Unlock()
}

// Has reports whether a is in the cache.
func (c *Cache) Has(a netip.AddrPort) bool {
	a = Canon(a)
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.hosts[a]
	return ok
}

// Len returns the number of addresses held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.hosts)
}

// SawUDP records that a answered a UDP ping of ours, and whether it is a
// UDP host cache, adding it (as an ultrapeer when ultra) when the policy
// admits it. It reports whether a is in the cache afterwards.
func (c *Cache) SawUDP(a netip.AddrPort, ultra, uhc bool, now time.Time) bool {
	flags := hostSpeaksUDP
	if uhc {
		flags |= hostIsUHC
	}
	return c.markUDP(a, ultra, false, flags, now)
}

// markUDP sets flags on a's entry, adding it (as an ultrapeer when ultra)
// as learnt from a pong when the policy admits it; sure makes a known entry
// an ultrapeer too. It reports whether a is in the cache afterwards.
func (c *Cache) markUDP(a netip.AddrPort, ultra, sure bool, flags hostUDP, now time.Time) bool {
	a = Canon(a)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.hosts[a]
	if !ok {
		if c.Check(a) != nil {
			return false
		}
		e = c.addLocked(a, ultra, SourcePong, now)
	}
	if sure {
		e.ultra = true
	}
	e.udp |= flags
	return true
}

// SawGUESS records that a is an ultrapeer that serves GUESS queries (a pong
// of it or about it carried "GUE", or a GUESS server listed it in "IPP"),
// adding it when the policy admits it. It reports whether a is in the
// cache afterwards.
func (c *Cache) SawGUESS(a netip.AddrPort, now time.Time) bool {
	return c.markUDP(a, true, true, hostGUESS, now)
}

// GUESSHosts returns up to n of the GUESS ultrapeers the cache knows, best
// first, skipping what skip says.
func (c *Cache) GUESSHosts(n int, skip func(netip.AddrPort) bool) []netip.AddrPort {
	return c.withUDP(hostGUESS, n, skip)
}

// SpeaksUDP reports whether a answered a UDP ping of ours.
func (c *Cache) SpeaksUDP(a netip.AddrPort) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.hosts[Canon(a)]
	return ok && e.udp&hostSpeaksUDP != 0
}

// HostCaches returns up to n of the UDP host caches the cache knows (hosts
// whose pong carried "UDPHC"), best first, skipping what skip says.
func (c *Cache) HostCaches(n int, skip func(netip.AddrPort) bool) []netip.AddrPort {
	return c.withUDP(hostIsUHC, n, skip)
}

// withUDP returns up to n hosts that showed flag over UDP, best first,
// skipping hostile ones and what skip says.
func (c *Cache) withUDP(flag hostUDP, n int, skip func(netip.AddrPort) bool) []netip.AddrPort {
	addrs := c.ranked(func(e *hostEntry) bool { return e.udp&flag != 0 && c.CheckHostile(e.addr) == nil })
	out := make([]netip.AddrPort, 0, min(n, len(addrs)))
	for _, a := range addrs {
		if len(out) == n {
			break
		}
		if skip == nil || !skip(a) {
			out = append(out, a)
		}
	}
	return out
}

// Sample returns up to n addresses worth advertising (in X-Try or
// X-Try-Ultrapeers, which carry 10): hosts whose last dial did not fail, best
// first (ultrapeers, connected before, recently seen). With ultraOnly only
// ultrapeers are returned. skip excludes addresses (such as the peer being
// answered, or ourselves).
func (c *Cache) Sample(n int, ultraOnly bool, skip func(netip.AddrPort) bool) []netip.AddrPort {
	if n <= 0 {
		return nil
	}
	addrs := c.ranked(func(e *hostEntry) bool {
		return e.failures == 0 && (!ultraOnly || e.ultra) && !e.waived && c.CheckHostile(e.addr) == nil
	})
	out := make([]netip.AddrPort, 0, min(n, len(addrs)))
	for _, a := range addrs {
		if len(out) == n {
			break
		}
		if skip != nil && skip(a) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// TryHeader formats Sample(n, ultraOnly, skip) as the value of an X-Try or
// X-Try-Ultrapeers header: "ip:port,ip:port,...". It is empty when there is
// nothing to offer (then the header should be left out).
func (c *Cache) TryHeader(n int, ultraOnly bool, skip func(netip.AddrPort) bool) string {
	var b strings.Builder
	for i, a := range c.Sample(n, ultraOnly, skip) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(a.String())
	}
	return b.String()
}

// AddTryHeader adds every address of an X-Try or X-Try-Ultrapeers header
// value (protocol.ParseTryList's form: "host[:port][junk],...", the port
// 6346 when missing, timestamps ignored) and returns how many were
// admitted. At most hostTryMaxItems entries are looked at.
func (c *Cache) AddTryHeader(value string, ultra bool, src Source, now time.Time) int {
	items := protocol.ParseTryList(value)
	if len(items) > hostTryMaxItems {
		items = items[:hostTryMaxItems]
	}
	n := 0
	for _, a := range items {
		if c.Add(a, ultra, src, now) {
			n++
		}
	}
	return n
}

// Save writes the cache to path atomically (a temporary file in the same
// folder, synced, then renamed over path), best entries first, one host a
// line: "ip:port ultra lastseen-unix failures" with ultra 1 or 0.
func (c *Cache) Save(path string) error {
	c.mu.Lock()
	entries := make([]hostEntry, 0, len(c.hosts))
	for _, e := range c.hosts {
		entries = append(entries, *e)
	}
	c.mu.Unlock()
	slices.SortFunc(entries, func(a, b hostEntry) int {
		if a.better(&b) {
			return -1
		}
		if b.better(&a) {
			return 1
		}
		return 0
	})

	var buf bytes.Buffer
	buf.WriteString("# gnutella host cache: ip:port ultra(1/0) lastseen-unix failures udp(0, 1 speaks UDP, 3 UDP host cache)\n")
	for _, e := range entries {
		u := 0
		if e.ultra {
			u = 1
		}
		var seen int64
		if !e.lastSeen.IsZero() {
			seen = e.lastSeen.Unix()
		}
		fmt.Fprintf(&buf, "%s %d %d %d %d\n", e.addr, u, seen, e.failures, e.udp)
	}
	return writeFileAtomic(path, buf.Bytes())
}

// writeFileAtomic replaces path by data so that readers see either the old
// or the new content, never a torn file.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save %s: %w (is the data folder writable?)", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("save %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save %s: %w", path, err)
	}
	// Make the rename itself durable; not every system can sync a folder.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Load adds the hosts saved in path (by Save) and returns how many were
// admitted. A missing file is not an error (0, nil). Malformed, over-long and
// refused lines are skipped; at most 1 MiB and as many lines as the cache
// holds are read. Saved back-off is not restored (a restart gives every host
// a fresh chance) but failure counts are, so failing hosts are tried last.
// Last-seen times in the future are clamped to now.
func (c *Cache) Load(path string, now time.Time) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load host cache: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() {
		return 0, fmt.Errorf("load host cache: %s is not a regular file", path)
	}
	r := bufio.NewReaderSize(io.LimitReader(f, hostLoadMaxBytes), hostLoadMaxLine)
	added := 0
	c.mu.Lock()
	limit := c.max
	c.mu.Unlock()
	for added < limit {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Over-long line: skip the rest of it.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			if err != nil {
				break
			}
			continue
		}
		if len(line) > 0 {
			if e, ok := parseHostLine(line, now); ok {
				if c.restore(e) {
					added++
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return added, fmt.Errorf("load host cache: %w", err)
		}
	}
	return added, nil
}

// parseHostLine parses "ip:port ultra lastseen-unix failures [udp]"; extra fields
// are ignored so that later versions may add some.
func parseHostLine(line []byte, now time.Time) (hostEntry, bool) {
	s := strings.TrimSpace(string(line))
	if s == "" || s[0] == '#' {
		return hostEntry{}, false
	}
	f := strings.Fields(s)
	if len(f) < 4 {
		return hostEntry{}, false
	}
	a, err := netip.ParseAddrPort(f[0])
	if err != nil {
		return hostEntry{}, false
	}
	var ultra bool
	switch strings.ToLower(f[1]) {
	case "1", "true", "u", "ultra":
		ultra = true
	case "0", "false", "l", "leaf":
	default:
		return hostEntry{}, false
	}
	secs, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || secs < 0 {
		return hostEntry{}, false
	}
	fails, err := strconv.Atoi(f[3])
	if err != nil || fails < 0 {
		return hostEntry{}, false
	}
	var udp hostUDP
	if len(f) > 4 {
		if v, err := strconv.ParseUint(f[4], 10, 8); err == nil {
			udp = hostUDP(v) & (hostSpeaksUDP | hostIsUHC | hostGUESS)
		}
	}
	seen := time.Unix(secs, 0)
	if secs == 0 {
		seen = time.Time{}
	}
	if seen.After(now) {
		seen = now
	}
	return hostEntry{
		addr:     Canon(a),
		ultra:    ultra,
		src:      SourceSaved,
		lastSeen: seen,
		failures: min(fails, hostMaxFailures),
		udp:      udp,
	}, true
}

// restore puts a loaded entry in the cache unless the address is refused or
// already known (live knowledge beats the file).
func (c *Cache) restore(e hostEntry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Check(e.addr) != nil {
		return false
	}
	if _, ok := c.hosts[e.addr]; ok {
		return false
	}
	if len(c.hosts) >= c.max {
		c.evictLocked()
	}
	ne := e
	c.hosts[e.addr] = &ne
	return true
}

// ranked lists the addresses of the entries keep accepts, best first.
func (c *Cache) ranked(keep func(*hostEntry) bool) []netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	cands := make([]*hostEntry, 0, len(c.hosts))
	for _, e := range c.hosts {
		if keep(e) {
			cands = append(cands, e)
		}
	}
	slices.SortFunc(cands, func(a, b *hostEntry) int {
		switch {
		case a.better(b):
			return -1
		case b.better(a):
			return 1
		}
		return 0
	})
	addrs := make([]netip.AddrPort, len(cands))
	for i, e := range cands {
		addrs[i] = e.addr
	}
	return addrs
}
