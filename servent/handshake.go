package servent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent/hostcache"
	"gnutella/transfer"
)

// The 0.6 three-step handshake (docs/protocol.md §2.2) in both directions, the 0.4 inbound
// form, and the admission decisions (409, 503 + X-Try-Ultrapeers).

// HandshakeError is an outbound handshake refused by the peer.
type HandshakeError struct {
	Code   int
	Reason string
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("peer refused the handshake: %d %s", e.Code, e.Reason)
}

// ourHeaders are the capability headers of a modern servent.
func (s *Servent) ourHeaders(peer netip.Addr) protocol.Headers {
	var h protocol.Headers
	self := s.Addr()
	h.Add("User-Agent", userAgent())
	if self.IsValid() && !self.Addr().IsUnspecified() {
		h.Add("Listen-IP", self.String())
		h.Add("Node", self.String())
	}
	if peer.IsValid() {
		h.Add("Remote-IP", peer.String())
	}
	h.Add("GUID", s.id.String())
	h.Add("X-Ultrapeer", boolHeader(!s.isLeaf()))
	h.Add("X-Query-Routing", "0.2")
	if s.cfg.UltrapeerQRP {
		h.Add("X-Ultrapeer-Query-Routing", "0.1")
	}
	h.Add("X-Dynamic-Querying", "0.1")
	h.Add("X-Degree", strconv.Itoa(max(s.cfg.MaxLinks, 16)))
	h.Add("X-Max-TTL", strconv.Itoa(int(s.cfg.MaxTTL)))
	h.Add("X-Ext-Probes", "0.1")
	h.Add("X-Random-Walk", "0.1")
	h.Add("X-Gossip", "0.1")
	h.Add("Pong-Caching", "0.1")
	h.Add("GGEP", "0.5")
	h.Add("Vendor-Message", "0.2")
	h.Add("Bye-Packet", "0.1")
	h.Add("X-Requeries", "False")
	var features []string
	if s.cfg.TLS {
		features = append(features, tlsFeature) // tls.go
	}
	if s.servesBrowse() {
		features = append(features, transfer.BrowseFeature) // browse.go
	}
	if len(features) > 0 {
		h.Add("X-Features", strings.Join(features, ", "))
	}
	if s.cfg.Deflate {
		h.Add("Accept-Encoding", "deflate")
	}
	return h
}

func boolHeader(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// capsOf reads the peer's capabilities from its headers.
func capsOf(version string, h *protocol.Headers) Capabilities {
	// a constant rather than the slice of the handshake's first line, which
	// would otherwise live as long as the link
	switch version {
	case "0.6":
		version = "0.6"
	case "0.4":
		version = "0.4"
	}
	c := Capabilities{Version: version}
	if version == "0.4" {
		return c
	}
	c.Ultrapeer, c.UltrapeerHeader = h.Bool("X-Ultrapeer")
	has := func(name string) bool { return h.Has(name) }
	c.PongCaching = has("Pong-Caching")
	c.GGEP = has("GGEP")
	c.VendorMessages = has("Vendor-Message")
	c.ByePacket = has("Bye-Packet")
	c.QueryRouting = has("X-Query-Routing")
	c.UltrapeerQueryRouting = has("X-Ultrapeer-Query-Routing")
	c.DynamicQuerying = has("X-Dynamic-Querying")
	c.ExtProbes = has("X-Ext-Probes")
	c.RandomWalk = has("X-Random-Walk")
	c.Gossip = has("X-Gossip")
	c.MaxTTL = 7 // gtk's assumption for a peer that does not say
	if v, err := strconv.Atoi(strings.TrimSpace(h.Get("X-Max-TTL"))); err == nil && v > 0 && v < 256 {
		c.MaxTTL = uint8(v)
	}
	c.Degree = 8
	if v, err := strconv.Atoi(strings.TrimSpace(h.Get("X-Degree"))); err == nil && v > 0 {
		c.Degree = v
	}
	return c
}

func listenAddrOf(h *protocol.Headers) netip.AddrPort {
	for _, name := range []string{"Listen-IP", "X-My-Address", "Node", "X-Node"} {
		if v := h.Get(name); v != "" {
			if ap, err := protocol.ParseListenAddr(v); err == nil {
				return ap
			}
		}
	}
	return netip.AddrPort{}
}

// learnFromHeaders feeds X-Try and X-Try-Ultrapeers into the host cache and
// Remote-IP into our advertised address.
func (s *Servent) learnFromHeaders(h *protocol.Headers) {
	now := s.now()
	for _, v := range h.Values("X-Try-Ultrapeers") {
		s.hosts.AddTryHeader(v, true, hostcache.SourceXTryUltrapeers, now)
	}
	for _, v := range h.Values("X-Try") {
		s.hosts.AddTryHeader(v, false, hostcache.SourceXTry, now)
	}
	if self := s.Addr(); self.Addr().IsUnspecified() {
		if a, err := netip.ParseAddr(strings.TrimSpace(h.Get("Remote-IP"))); err == nil {
			ap := netip.AddrPortFrom(a.Unmap(), self.Port())
			s.self.Store(&ap)
		}
	}
}

// admission is admit's verdict.
type admission struct {
	kind   LinkKind
	code   int
	reason string
	// needed is the X-Ultrapeer-Needed we answer ("" = none); guide is true
	// when it is "False" to an ultrapeer: leaf guidance (docs/protocol.md §2.4).
	needed string
	guide  bool
}

// admit decides whether a 0.6 peer with these capabilities may link to us,
// and as what: the negotiation matrix of docs/protocol.md §2.4. A non-2xx code refuses it.
func (s *Servent) admit(c Capabilities, peerID protocol.GUID, listen netip.AddrPort) admission {
	if !peerID.IsZero() && peerID == s.id {
		return admission{code: 409, reason: "Connected to self"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var peers, leaves int
	for _, l := range s.links {
		if (!peerID.IsZero() && l.PeerID == peerID) || (listen.IsValid() && l.Listen == listen) {
			return admission{code: 409, reason: "Already connected"}
		}
		if l.Kind == LinkLeaf {
			leaves++
		} else {
			peers++
		}
	}
	if s.isLeaf() {
		switch {
		case !c.UltrapeerHeader || !c.Ultrapeer:
			// a leaf keeps only ultrapeer links; send the peer to ours
			return admission{code: 503, reason: "Shielded leaf node"}
		case peers >= s.cfg.LeafUltrapeers:
			return admission{code: 503, reason: "Too many ultra connections"}
		}
		return admission{kind: LinkUltrapeer, code: 200, reason: "OK"}
	}
	a := admission{code: 200, reason: "OK"}
	switch {
	case peers < s.cfg.MaxLinks:
		a.needed = "True"
	case leaves < s.cfg.MaxLeaves:
		a.needed = "False"
	}
	switch {
	case c.UltrapeerHeader && !c.Ultrapeer:
		if leaves >= s.cfg.MaxLeaves {
			return admission{code: 503, reason: "Too many leaf connections"}
		}
		a.kind = LinkLeaf
	case c.UltrapeerHeader:
		if peers >= s.cfg.MaxLinks {
			if leaves >= s.cfg.MaxLeaves {
				return admission{code: 503, reason: "Too many ultra connections"}
			}
			a.guide = true // full of ultrapeers, leaf slots free: become our leaf
		}
		a.kind = LinkUltrapeer
	default:
		if peers >= s.cfg.MaxLinks {
			return admission{code: 503, reason: "Too many connections"}
		}
		a.kind = LinkNormal
	}
	return a
}

// refusal writes a 0.6 error status with the headers docs/protocol.md §2.2 asks for.
func (s *Servent) refusal(code int, reason string, peer netip.Addr) []byte {
	resp := protocol.HandshakeResponse{Version: "0.6", Code: code, Reason: reason}
	resp.Headers.Add("User-Agent", userAgent())
	if peer.IsValid() {
		resp.Headers.Add("Remote-IP", peer.String())
	}
	if code == 503 {
		try := s.hosts.Sample(10, true, func(ap netip.AddrPort) bool { return ap == s.Addr() })
		for _, l := range s.Links() {
			if len(try) >= 10 {
				break
			}
			// A Listen-IP is the peer's claim: it is passed on only when it
			// names the address the link really comes from, so that no peer
			// can have us point others at a victim (and only when our own
			// host cache's policy, hostiles included, would take it).
			if l.Kind == LinkUltrapeer && l.Listen.IsValid() &&
				l.Listen.Addr().Unmap() == l.Remote.Addr().Unmap() && s.hosts.Valid(l.Listen) {
				try = append(try, l.Listen)
			}
		}
		if len(try) > 0 {
			resp.Headers.Add("X-Try-Ultrapeers", protocol.FormatTryList(try))
		}
	}
	return resp.AppendTo(nil)
}

// acceptGnutella runs the server side of the handshake.
// pc is its pending entry, left once the handshake is done.
func (s *Servent) acceptGnutella(conn net.Conn, br *bufio.Reader, first string, pc *pendingConn) {
	remote := addrPortOf(conn.RemoteAddr())
	req, err := protocol.ReadHandshakeRequestAfter(first, br)
	if err != nil {
		code, reason := 400, "Bad Request"
		if errors.Is(err, protocol.ErrLineTooLong) || errors.Is(err, protocol.ErrTooManyLines) ||
			errors.Is(err, protocol.ErrHeadersTooLarge) {
			code, reason = 413, "Request Entity Too Large"
		}
		s.log.Debug().Err(err).Stringer("remote", remote).Msg("bad handshake")
		writeAndClose(conn, string(s.refusal(code, reason, remote.Addr())))
		return
	}
	if req.Version == "0.4" {
		s.accept04(conn, br, remote, pc)
		return
	}
	caps := capsOf(req.Version, &req.Headers)
	peerID, _ := protocol.ParseGUID(strings.TrimSpace(req.Headers.Get("GUID")))
	listen := listenAddrOf(&req.Headers)
	s.learnFromHeaders(&req.Headers)
	adm := s.admit(caps, peerID, listen)
	kind := adm.kind
	if adm.code != 200 {
		s.log.Debug().Int("code", adm.code).Str("reason", adm.reason).Stringer("remote", remote).Msg("refusing link")
		writeAndClose(conn, string(s.refusal(adm.code, adm.reason, remote.Addr())))
		return
	}
	resp := protocol.HandshakeResponse{Version: "0.6", Code: 200, Reason: "OK", Headers: s.ourHeaders(remote.Addr())}
	deflateOut := s.cfg.Deflate && acceptsDeflate(&req.Headers)
	if deflateOut {
		resp.Headers.Add("Content-Encoding", "deflate")
	}
	if adm.needed != "" {
		resp.Headers.Add("X-Ultrapeer-Needed", adm.needed)
	}
	if _, err := conn.Write(resp.AppendTo(nil)); err != nil {
		conn.Close()
		return
	}
	final, err := protocol.ReadHandshakeResponse(br)
	if err != nil || !final.OK() {
		conn.Close()
		return
	}
	if adm.guide {
		if up, ok := final.Headers.Bool("X-Ultrapeer"); ok && !up {
			kind = LinkLeaf // it took our guidance
			caps.Ultrapeer = false
		} else {
			conn.Close() // no ultrapeer slot left, and it will not be our leaf
			return
		}
	}
	if !pc.leave() {
		conn.Close() // evicted for a newcomer while it dawdled
		return
	}
	l := s.newLink(conn, br, true, kind, caps)
	l.PeerID, l.Listen, l.UserAgent = peerID, listen, req.Headers.Get("User-Agent")
	l.TLS = isTLS(conn)
	if featuresTLS(&req.Headers) && listen.IsValid() && listen.Addr() == l.Remote.Addr() {
		s.tls.speaksTLS(listen)
	}
	l.setDeflateOut(deflateOut)
	l.DeflateIn = sendsDeflate(&final.Headers)
	if l.DeflateIn && !s.cfg.Deflate {
		writeAndClose(conn, "") // gtk 400-Byes this; we just refuse the stream
		return
	}
	s.runLink(l)
}

// accept04 answers an inbound 0.4 handshake: "GNUTELLA OK", no headers.
func (s *Servent) accept04(conn net.Conn, br *bufio.Reader, remote netip.AddrPort, pc *pendingConn) {
	if s.isLeaf() || s.LinkCount(LinkNormal, LinkUltrapeer) >= s.cfg.MaxLinks || !pc.leave() {
		conn.Close()
		return
	}
	ok := protocol.HandshakeResponse{Version: "0.4", Code: 200}
	if _, err := conn.Write(ok.AppendTo(nil)); err != nil {
		conn.Close()
		return
	}
	s.runLink(s.newLink(conn, br, true, LinkNormal, Capabilities{Version: "0.4"}))
}

func acceptsDeflate(h *protocol.Headers) bool {
	for _, v := range h.Values("Accept-Encoding") {
		for _, e := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(e), "deflate") {
				return true
			}
		}
	}
	return false
}

func sendsDeflate(h *protocol.Headers) bool {
	return strings.EqualFold(strings.TrimSpace(h.Get("Content-Encoding")), "deflate")
}

// Connect dials addr and runs the client side of the handshake. On success
// the link is running when it returns.
func (s *Servent) Connect(ctx context.Context, addr netip.AddrPort) (*Link, error) {
	if s.state.Load() != 1 {
		return nil, errStopping
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	conn, err := s.dialLink(ctx, addr) // tls.go
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	req := protocol.HandshakeRequest{Version: "0.6", Headers: s.ourHeaders(addr.Addr())}
	if _, err := conn.Write(req.AppendTo(nil)); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 2048)
	resp, err := protocol.ReadHandshakeResponse(br)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("handshake with %s: %w", addr, err)
	}
	s.learnFromHeaders(&resp.Headers)
	if !resp.OK() {
		conn.Close()
		return nil, &HandshakeError{Code: resp.Code, Reason: resp.Reason}
	}
	caps := capsOf(resp.Version, &resp.Headers)
	peerID, _ := protocol.ParseGUID(strings.TrimSpace(resp.Headers.Get("GUID")))
	listen := listenAddrOf(&resp.Headers)
	if !listen.IsValid() {
		listen = addr
	}
	kind := LinkNormal
	switch {
	case caps.UltrapeerHeader && caps.Ultrapeer:
		kind = LinkUltrapeer
	case caps.UltrapeerHeader && !s.isLeaf():
		kind = LinkLeaf
	}
	final := protocol.HandshakeResponse{Version: "0.6", Code: 200, Reason: "OK"}
	refuse := func(code int, reason string) (*Link, error) {
		final.Code, final.Reason = code, reason
		_, _ = conn.Write(final.AppendTo(nil))
		conn.Close()
		return nil, fmt.Errorf("refused %s: %d %s", addr, code, reason)
	}
	if s.isLeaf() && kind != LinkUltrapeer {
		return refuse(403, "Leaf node needs an ultrapeer")
	}
	if !peerID.IsZero() && peerID == s.id {
		return refuse(409, "Connected to self")
	}
	deflateOut := s.cfg.Deflate && acceptsDeflate(&resp.Headers)
	if deflateOut {
		final.Headers.Add("Content-Encoding", "deflate")
	}
	becomeLeaf := false
	if needed, ok := resp.Headers.Bool("X-Ultrapeer-Needed"); ok && !needed && kind == LinkUltrapeer && !s.isLeaf() {
		// Leaf guidance (docs/protocol.md §2.4): taken by the role rules (roles.go).
		if s.takesGuidance() {
			final.Headers.Add("X-Ultrapeer", "False")
			becomeLeaf = true
		}
	}
	l := s.newLink(conn, br, false, kind, caps)
	l.PeerID, l.Listen, l.UserAgent = peerID, listen, resp.Headers.Get("User-Agent")
	l.TLS = isTLS(conn)
	if featuresTLS(&resp.Headers) {
		s.tls.speaksTLS(addr)
	}
	l.setDeflateOut(deflateOut)
	l.DeflateIn = sendsDeflate(&resp.Headers)
	if l.DeflateIn && !s.cfg.Deflate {
		return refuse(400, "Compression not accepted")
	}
	if err := s.addLink(l); err != nil {
		return refuse(409, "Already connected")
	}
	if _, err := conn.Write(final.AppendTo(nil)); err != nil {
		s.removeLink(l)
		conn.Close()
		return nil, err
	}
	stop()
	_ = conn.SetDeadline(noDeadline)
	s.hosts.Connected(addr, s.now())
	l.start()
	if becomeLeaf {
		s.switchMode(ModeLeaf, "leaf guidance from "+addr.String(), l)
	}
	s.greet(l)
	return l, nil
}

var noDeadline time.Time

// newLink builds a link around a connection whose handshake is done.
func (s *Servent) newLink(conn net.Conn, br *bufio.Reader, inbound bool, kind LinkKind, caps Capabilities) *Link {
	l := &Link{
		Kind: kind, Inbound: inbound, Remote: addrPortOf(conn.RemoteAddr()), Caps: caps,
		Since: s.now(), s: s, conn: conn, br: br,
		leafID: -1,
	}
	l.q = newSendQueue(s.cfg.SendQueueBytes, l.startWriter)
	l.abuse.Limits = routing.DefaultAbuseLimits() // zero limits kick on the first duplicate
	return l
}

// runLink registers an inbound link and starts it.
func (s *Servent) runLink(l *Link) {
	if err := s.addLink(l); err != nil {
		l.conn.Close()
		return
	}
	_ = l.conn.SetDeadline(noDeadline)
	l.start()
	s.greet(l)
	s.log.Debug().Stringer("link", l).Bool("inbound", true).Msg("link up")
}

// greet sends what a modern servent sends right after the handshake: a
// handshake ping (gtk-gnutella sends no queries to a silent neighbour) and
// the vendor messages we support.
func (s *Servent) greet(l *Link) {
	l.sendAlivePing()
	if l.Caps.VendorMessages {
		_ = l.sendMessage(protocol.Header{ID: protocol.NewGUID(), TTL: 1}, supportedVendorMessages())
	}
}
