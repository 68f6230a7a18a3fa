package servent

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gnutella/firewall"
	"gnutella/protocol"
	"gnutella/servent/hostcache"
)

// Gnutella over UDP (docs/protocol.md, "UDP"), on the port number of the
// TCP listener: one descriptor per datagram, read with the protocol
// package's caps. Today it carries pings and pongs: we answer pings with
// our pong, with packed ultrapeer addresses (GGEP "IPP") when the ping asks
// with "SCP" and with "UDPHC" when we are an ultrapeer (a UDP host cache),
// and we ping host caches (Config.UHCs, and those we learnt) to find
// ultrapeers. Out-of-band hits and GUESS will enter at handleDatagram.
//
// Defences: datagrams over maxUDPDatagram are dropped unread; each address
// has a budget of Config.UDPRate datagrams per UDPRateWindow (loopback
// too), and one that keeps flooding past it is banned for HostileBan
// (loopback and the whitelist are never banned unless RateLimitLoopback);
// hostile addresses are ignored. No amplification: a reply to an address
// that has not proved it can receive our datagrams is never larger than
// the datagram that provoked it. An address proves itself by holding a
// TCP link to us, by answering a ping of ours with its MUID, or by being a
// host we pinged ourselves and still await. A ping from an unproven
// address whose pong would be larger is answered with a bare ping (23
// bytes, never larger than any ping); the pong follows once the sender's
// pong to it comes back.

const (
	// maxUDPDatagram is the largest datagram read; longer ones (truncated
	// by the read) are dropped.
	maxUDPDatagram = 16 << 10
	// udpQueueLen bounds the datagrams waiting to be sent.
	udpQueueLen = 64
	// udpProofLife is how long an address that proved itself stays proven.
	udpProofLife = 10 * time.Minute
	// udpAwaitLife is how long a ping of ours waits for its pong, and a
	// ping we owe a pong waits for its sender's proof.
	udpAwaitLife = 20 * time.Second
	// udpMaxTracked bounds each table of addresses and MUIDs.
	udpMaxTracked = 4096
	// udpPackedHosts is how many ultrapeers an IPP carries.
	udpPackedHosts = 10
	// udpMaxLearnt bounds the IPP entries read from one pong.
	udpMaxLearnt = 30
	// uhcPingEvery is the least time between two pings to one host cache.
	uhcPingEvery = 30 * time.Second
	// uhcPerRound is how many learnt host caches one bootstrap round pings.
	uhcPerRound = 3
	// udpBanAfter refused datagrams within UDPRateWindow ban the address.
	udpBanAfter = 200
)

// PacketTransport is the UDP side a Transport may have: ListenPacket
// listens for datagrams on addr ("ip:port"). TCPTransport has it; a
// Transport without it (the in-memory network, memnet) runs with no UDP.
type PacketTransport interface {
	ListenPacket(addr string) (net.PacketConn, error)
}

// udpPrio orders the send queue: replies that keep the network working
// (pongs, proof pings) before anything else.
type udpPrio uint8

const (
	udpPrioControl udpPrio = iota // pongs and pings
	udpPrioBulk                   // later: out-of-band hits, GUESS
	udpPrios
)

type udpOut struct {
	to  netip.AddrPort
	msg []byte
}

// udpSent is a ping of ours awaiting its pong.
type udpSent struct {
	to    netip.AddrPort
	at    time.Time
	proof bool // sent to prove the address of a pinger we owe a pong
}

// udpOwed is a pong we owe to an address that has not proved itself yet.
type udpOwed struct {
	ping  protocol.GUID
	hosts bool // the ping asked for packed hosts (SCP)
	at    time.Time
}

// UDPStats counts what the UDP side did, in datagrams.
type UDPStats struct {
	Received    int64    `json:"received"`
	Sent        int64    `json:"sent"`
	Malformed   int64    `json:"malformed"`    // dropped: not one well-formed descriptor
	Oversized   int64    `json:"oversized"`    // dropped: longer than maxUDPDatagram
	RateLimited int64    `json:"rate_limited"` // dropped: over the address's budget
	Hostile     int64    `json:"hostile"`      // dropped: from a hostile or banned address
	Unsolicited int64    `json:"unsolicited"`  // dropped: pongs to no ping of ours
	Unhandled   int64    `json:"unhandled"`    // dropped: types not handled over UDP (yet)
	QueueFull   int64    `json:"queue_full"`   // replies dropped because the send queue was full
	Proofs      int64    `json:"proofs"`       // bare pings sent to prove a pinger's address
	PongsSent   int64    `json:"pongs_sent"`
	PongsRead   int64    `json:"pongs_read"`
	OOB         OOBStats `json:"oob"` // out-of-band hits (oob.go)
}

type udpStats struct {
	received, sent, malformed, oversized, rateLimited, hostile atomic.Int64
	unsolicited, unhandled, queueFull, proofs, pongsSent       atomic.Int64
	pongsRead                                                  atomic.Int64
}

// udpSide is the servent's UDP socket and its state.
type udpSide struct {
	s     *Servent
	conn  net.PacketConn
	ready chan struct{} // one token: the send queue went non-empty
	stats udpStats

	mu      sync.Mutex
	rate    *firewall.RateLimit[netip.Addr] // datagrams per address
	refused *firewall.RateLimit[netip.Addr] // refused datagrams per address (bans)
	proven  map[netip.AddrPort]time.Time    // proved until
	sent    map[protocol.GUID]udpSent       // our pings, by MUID
	await   map[netip.AddrPort]time.Time    // hosts we pinged, last time
	owed    map[netip.AddrPort]udpOwed      // pongs owed to unproven pingers
	lastUHC map[netip.AddrPort]time.Time    // last ping to each host cache
	oob     oobState                        // out-of-band hits (oob.go), its own lock
	q       [udpPrios][]udpOut
	queued  int
}

func newUDPSide(s *Servent, conn net.PacketConn) *udpSide {
	u := &udpSide{
		s:       s,
		conn:    conn,
		ready:   make(chan struct{}, 1),
		proven:  map[netip.AddrPort]time.Time{},
		sent:    map[protocol.GUID]udpSent{},
		await:   map[netip.AddrPort]time.Time{},
		owed:    map[netip.AddrPort]udpOwed{},
		lastUHC: map[netip.AddrPort]time.Time{},
	}
	if s.cfg.UDPRate > 0 {
		u.rate = firewall.NewRateLimit[netip.Addr](s.cfg.UDPRate, s.cfg.UDPRateWindow, maxRateEntries)
		u.refused = firewall.NewRateLimit[netip.Addr](udpBanAfter, s.cfg.UDPRateWindow, maxRateEntries)
	}
	return u
}

// startUDP listens for datagrams on the TCP listener's address and port.
// Without a PacketTransport, or when UDP is off or the port is taken, the
// servent runs without UDP (logged).
func (s *Servent) startUDP(tcp net.Addr) {
	pt, ok := s.cfg.Transport.(PacketTransport)
	if !s.cfg.UDP || !ok {
		return
	}
	conn, err := pt.ListenPacket(tcp.String())
	if err != nil {
		s.log.Warn().Err(err).Str("addr", tcp.String()).Msg("no UDP: cannot listen")
		return
	}
	s.udp = newUDPSide(s, conn)
	s.wg.Add(2)
	go s.udp.readLoop()
	go s.udp.writeLoop()
	s.log.Info().Str("udp", conn.LocalAddr().String()).Msg("listening for UDP")
}

// UDPAddr is the local address of the UDP socket, invalid without one.
func (s *Servent) UDPAddr() netip.AddrPort {
	if s.udp == nil {
		return netip.AddrPort{}
	}
	return addrPortOf(s.udp.conn.LocalAddr())
}

// UDPStats returns the UDP counters (all zero without a UDP socket).
func (s *Servent) UDPStats() UDPStats {
	if s.udp == nil {
		return UDPStats{}
	}
	st := &s.udp.stats
	return UDPStats{
		Received: st.received.Load(), Sent: st.sent.Load(),
		Malformed: st.malformed.Load(), Oversized: st.oversized.Load(),
		RateLimited: st.rateLimited.Load(), Hostile: st.hostile.Load(),
		Unsolicited: st.unsolicited.Load(), Unhandled: st.unhandled.Load(),
		QueueFull: st.queueFull.Load(), Proofs: st.proofs.Load(),
		PongsSent: st.pongsSent.Load(), PongsRead: st.pongsRead.Load(),
		OOB: s.udp.oob.snapshot(),
	}
}

func (u *udpSide) readLoop() {
	defer u.s.wg.Done()
	buf := make([]byte, maxUDPDatagram+1)
	for {
		n, addr, err := u.conn.ReadFrom(buf)
		if err != nil {
			if u.s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			u.s.log.Debug().Err(err).Msg("UDP read") // an ICMP error of an earlier send: keep reading
			continue
		}
		u.stats.received.Add(1)
		if n > maxUDPDatagram {
			u.stats.oversized.Add(1)
			continue
		}
		u.handleDatagram(buf[:n], addrPortOf(addr))
	}
}

func (u *udpSide) writeLoop() {
	defer u.s.wg.Done()
	for {
		select {
		case <-u.s.ctx.Done():
			return
		case <-u.ready:
		}
		for {
			out, ok := u.pop()
			if !ok {
				break
			}
			if _, err := u.conn.WriteTo(out.msg, net.UDPAddrFromAddrPort(out.to)); err != nil {
				u.s.log.Debug().Err(err).Stringer("to", out.to).Msg("UDP send")
				continue
			}
			u.stats.sent.Add(1)
		}
	}
}

// close ends both goroutines (the caller has cancelled the context).
func (u *udpSide) close() {
	_ = u.conn.Close()
	select {
	case u.ready <- struct{}{}:
	default:
	}
}

// send queues msg for to. When the queue is full, a message of lower
// priority makes room, or msg is dropped.
func (u *udpSide) send(to netip.AddrPort, msg []byte, prio udpPrio) bool {
	u.mu.Lock()
	if u.queued >= udpQueueLen {
		dropped := false
		for p := udpPrios - 1; p > prio; p-- {
			if n := len(u.q[p]); n > 0 {
				u.q[p] = u.q[p][:n-1]
				u.queued--
				dropped = true
				break
			}
		}
		if !dropped {
			u.mu.Unlock()
			u.stats.queueFull.Add(1)
			return false
		}
		u.stats.queueFull.Add(1)
	}
	u.q[prio] = append(u.q[prio], udpOut{to, msg})
	u.queued++
	u.mu.Unlock()
	select {
	case u.ready <- struct{}{}:
	default:
	}
	return true
}

func (u *udpSide) pop() (udpOut, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for p := range u.q {
		if len(u.q[p]) > 0 {
			out := u.q[p][0]
			u.q[p][0] = udpOut{}
			u.q[p] = u.q[p][1:]
			u.queued--
			return out, true
		}
	}
	return udpOut{}, false
}

// handleDatagram is the UDP entry point: one datagram b from from.
func (u *udpSide) handleDatagram(b []byte, from netip.AddrPort) {
	from = hostcache.Canon(from)
	ip := from.Addr()
	if !ip.Is4() || from.Port() == 0 {
		u.stats.malformed.Add(1) // IPv4 only, like our pongs
		return
	}
	if _, bad := u.s.hostiles.Banned(ip); bad {
		u.stats.hostile.Add(1)
		return
	}
	now := u.s.now()
	if !u.admit(ip, now) {
		u.stats.rateLimited.Add(1)
		return
	}
	h, payload, err := protocol.DecodeDatagram(b, u.s.cfg.Limits)
	if err != nil {
		u.stats.malformed.Add(1)
		return
	}
	if u.handleGUESS(h, payload, len(b), from, now) { // guess.go
		return
	}
	switch h.Type {
	case protocol.TypePing:
		u.handlePing(h, payload, len(b), from, now)
	case protocol.TypePong:
		u.handlePong(h, payload, from, now)
	case protocol.TypeVendor, protocol.TypeStdVendor, protocol.TypeQueryHit:
		u.handleOOB(h, payload, from, now) // oob.go
	default:
		u.stats.unhandled.Add(1)
	}
}

// admit spends one datagram of ip's budget; a flood past it bans ip
// unless it is exempt (loopback, the whitelist).
func (u *udpSide) admit(ip netip.Addr, now time.Time) bool {
	if u.rate == nil {
		return true
	}
	key := addrKey(ip)
	u.mu.Lock()
	v, _ := u.rate.Allow(key, now)
	ban := false
	if v != firewall.RateOK {
		if r, _ := u.refused.Allow(key, now); r == firewall.RateTooMany {
			ban = true
		}
	}
	u.mu.Unlock()
	if ban && u.s.cfg.HostileBan > 0 && !u.s.adm.rateExempted(ip) {
		u.s.hostiles.Ban(ip, u.s.cfg.HostileBan, "UDP flood")
		u.s.log.Debug().Stringer("addr", ip).Msg("banned: UDP flood")
	}
	return v == firewall.RateOK
}

// handlePing answers a ping with our pong, or, when the pong would be
// larger than the ping and the sender has not proved its address, with a
// bare ping that asks it to.
func (u *udpSide) handlePing(h protocol.Header, payload []byte, size int, from netip.AddrPort, now time.Time) {
	if h.ID == u.s.id {
		u.stats.unhandled.Add(1) // gtk-gnutella's UDP connect-back probe: later
		return
	}
	p, err := protocol.DecodePing(payload)
	if err != nil {
		u.stats.malformed.Add(1)
		return
	}
	_, hosts := p.HostsRequest()
	pong := u.s.udpPong(h.ID, hosts, from)
	if pong == nil {
		return
	}
	if len(pong) <= size || u.provenOrAwaited(from, now) {
		u.sendPong(from, pong)
		return
	}
	u.mu.Lock()
	if o, ok := u.owed[from]; ok && now.Sub(o.at) < udpAwaitLife {
		u.owed[from] = udpOwed{ping: h.ID, hosts: hosts, at: o.at} // one proof at a time; answer the latest ping
		u.mu.Unlock()
		return
	}
	if len(u.owed) >= udpMaxTracked {
		pruneTimes(u.owed, func(o udpOwed) bool { return now.Sub(o.at) >= udpAwaitLife })
		if len(u.owed) >= udpMaxTracked {
			u.mu.Unlock()
			return
		}
	}
	u.owed[from] = udpOwed{ping: h.ID, hosts: hosts, at: now}
	u.mu.Unlock()
	u.stats.proofs.Add(1)
	u.ping(from, &protocol.Ping{}, true, now)
}

func (u *udpSide) sendPong(to netip.AddrPort, pong []byte) {
	u.stats.pongsSent.Add(1) // counted first: the reply to it can race back
	if !u.send(to, pong, udpPrioControl) {
		u.stats.pongsSent.Add(-1)
	}
}

// handlePong takes a pong that answers a ping of ours (others are
// dropped: an unsolicited pong may carry a spoofed source): its sender
// proved its address and speaks UDP, and what it says goes to the host
// cache; a pong we owed it is sent.
func (u *udpSide) handlePong(h protocol.Header, payload []byte, from netip.AddrPort, now time.Time) {
	u.mu.Lock()
	sent, ok := u.sent[h.ID]
	if ok && sent.to == from {
		delete(u.sent, h.ID)
		delete(u.await, from)
		u.proveLocked(from, now)
	}
	owed, isOwed := u.owed[from]
	if ok && sent.to == from && isOwed {
		delete(u.owed, from)
	}
	u.mu.Unlock()
	if !ok || sent.to != from {
		u.stats.unsolicited.Add(1)
		return
	}
	// What the pong teaches is recorded before the pong we owed goes
	// out: the prover may act on our reply at once.
	u.learnPong(payload, from, now)
	if sent.proof && isOwed && now.Sub(owed.at) < udpAwaitLife {
		if pong := u.s.udpPong(owed.ping, owed.hosts, from); pong != nil {
			u.sendPong(from, pong)
		}
	}
}

// learnPong records what a solicited pong from a proven address says.
func (u *udpSide) learnPong(payload []byte, from netip.AddrPort, now time.Time) {
	p, err := protocol.DecodePong(payload)
	if err != nil {
		u.stats.malformed.Add(1)
		return
	}
	u.stats.pongsRead.Add(1)
	s := u.s
	s.hosts.SawUDP(from, p.Ultrapeer(), p.UDPHostCache(), now)
	s.noteGUESS(p, from, now)
	if p.SpeaksTLS() {
		s.tls.speaksTLS(from)
	}
	if addr := p.AddrPort(); addr != s.Addr() && addr.Port() != 0 && addr != from {
		s.hosts.Add(addr, p.Ultrapeer(), hostcache.SourcePong, now)
	}
	if addrs, ok, err := p.PackedHosts(); ok && err == nil {
		for i, a := range addrs {
			if i == udpMaxLearnt {
				break
			}
			if a != s.Addr() && a.Port() != 0 {
				s.hosts.Add(a, true, hostcache.SourcePong, now) // IPP lists ultrapeers
			}
		}
	}
}

// provenOrAwaited says whether from may get a reply larger than what it
// sent: it proved its address, holds a TCP link to us, or is a host we
// pinged ourselves and still await.
func (u *udpSide) provenOrAwaited(from netip.AddrPort, now time.Time) bool {
	u.mu.Lock()
	until, proven := u.proven[from]
	at, awaited := u.await[from]
	u.mu.Unlock()
	if proven && now.Before(until) || awaited && now.Sub(at) < udpAwaitLife {
		return true
	}
	for _, l := range u.s.Links() {
		if l.Remote.Addr().Unmap() == from.Addr() {
			return true
		}
	}
	return false
}

func (u *udpSide) proveLocked(a netip.AddrPort, now time.Time) {
	if _, ok := u.proven[a]; !ok && len(u.proven) >= udpMaxTracked {
		pruneTimes(u.proven, func(until time.Time) bool { return !now.Before(until) })
		if len(u.proven) >= udpMaxTracked {
			return
		}
	}
	u.proven[a] = now.Add(udpProofLife)
}

// ping sends p to to and remembers its MUID for the pong. proof marks a
// ping that asks a pinger to prove its address.
func (u *udpSide) ping(to netip.AddrPort, p *protocol.Ping, proof bool, now time.Time) bool {
	id := protocol.NewGUID()
	m := protocol.Message{Header: protocol.Header{ID: id, TTL: 1}, Payload: p}
	b, err := m.AppendTo(nil)
	if err != nil {
		return false
	}
	u.mu.Lock()
	if len(u.sent) >= udpMaxTracked {
		pruneTimes(u.sent, func(e udpSent) bool { return now.Sub(e.at) >= udpAwaitLife })
		pruneTimes(u.await, func(at time.Time) bool { return now.Sub(at) >= udpAwaitLife })
		if len(u.sent) >= udpMaxTracked {
			u.mu.Unlock()
			return false
		}
	}
	u.sent[id] = udpSent{to: to, at: now, proof: proof}
	if !proof {
		u.await[to] = now
	}
	u.mu.Unlock()
	return u.send(to, b, udpPrioControl)
}

// pruneTimes deletes the entries of m that expired says are over.
func pruneTimes[K comparable, V any](m map[K]V, expired func(V) bool) {
	for k, v := range m {
		if expired(v) {
			delete(m, k)
		}
	}
}

// udpPong is our pong to ping id, ready for the wire: our own pong, with
// "UDPHC" when we are an ultrapeer (we serve as a UDP host cache) and,
// when the ping asked (SCP), up to udpPackedHosts ultrapeers in "IPP":
// those we are linked to first, then the host cache's, never the asker.
func (s *Servent) udpPong(id protocol.GUID, hosts bool, to netip.AddrPort) []byte {
	p := s.ownPong()
	if p == nil {
		return nil
	}
	if !s.isLeaf() {
		p.GGEP = append(p.GGEP, protocol.Extension{ID: protocol.GGEPUDPHostCache})
	}
	if hosts {
		self := s.Addr()
		skip := func(a netip.AddrPort) bool { return a == to || a == self || !a.Addr().Unmap().Is4() }
		var addrs []netip.AddrPort
		seen := map[netip.AddrPort]bool{}
		for _, l := range s.Links() {
			if len(addrs) == udpPackedHosts {
				break
			}
			if l.Kind == LinkUltrapeer && l.Listen.IsValid() && !skip(l.Listen) && !seen[l.Listen] {
				seen[l.Listen] = true
				addrs = append(addrs, l.Listen)
			}
		}
		if len(addrs) < udpPackedHosts {
			for _, a := range s.hosts.Sample(udpPackedHosts, true, func(a netip.AddrPort) bool { return skip(a) || seen[a] }) {
				if len(addrs) == udpPackedHosts {
					break
				}
				addrs = append(addrs, a)
			}
		}
		if len(addrs) > 0 {
			p.GGEP = append(p.GGEP, protocol.PackedHostsExtension(addrs))
		}
	}
	m := protocol.Message{Header: protocol.Header{ID: id, TTL: 1}, Payload: p}
	b, err := m.AppendTo(nil)
	if err != nil {
		return nil
	}
	return b
}

// uhcBootstrap pings the UDP host caches (Config.UHCs, then up to
// uhcPerRound learnt ones), each at most every uhcPingEvery, asking for
// ultrapeers (SCP). The connector calls it when the host cache has no
// host to dial.
func (s *Servent) uhcBootstrap(now time.Time) {
	u := s.udp
	if u == nil {
		return
	}
	targets := append([]netip.AddrPort(nil), s.uhcs...)
	targets = append(targets, s.hosts.HostCaches(uhcPerRound, nil)...)
	var flags byte
	if !s.isLeaf() {
		flags = protocol.SCPUltrapeer
	}
	for _, a := range targets {
		if a == s.Addr() || a == s.UDPAddr() {
			continue
		}
		if _, bad := s.hostiles.Banned(a.Addr()); bad {
			continue
		}
		u.mu.Lock()
		due := now.Sub(u.lastUHC[a]) >= uhcPingEvery
		if due {
			if len(u.lastUHC) >= udpMaxTracked {
				pruneTimes(u.lastUHC, func(at time.Time) bool { return now.Sub(at) >= uhcPingEvery })
			}
			u.lastUHC[a] = now
		}
		u.mu.Unlock()
		if due {
			u.ping(a, protocol.NewHostsRequest(flags, protocol.VendorVersion{Vendor: VendorCode, Version: 1}), false, now)
		}
	}
}
