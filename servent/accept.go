package servent

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"gnutella/protocol"
	"gnutella/ultrapeer"
)

// Hooks let the packages above servent take over what arrives on the one
// port and what the router hands up. A nil hook has a safe default.
type Hooks struct {
	// HTTP serves a GET or HEAD request whose first line was already read.
	// It owns conn and must close it. Default: 404 and close.
	HTTP func(conn net.Conn, br *bufio.Reader, requestLine string)
	// GIV handles a push callback. It owns conn. Default: close.
	GIV func(conn net.Conn, br *bufio.Reader, giv protocol.GIV)
	// ConnectBack is told of a connect-back test that reached us (§6.6).
	ConnectBack func(remote netip.AddrPort)
	// Inbound is told of every inbound connection (firewall detection).
	Inbound func(remote netip.AddrPort)
	// Answer returns the results we hold for a query (nil: none).
	Answer func(q *protocol.Query, h protocol.Header) []protocol.Result
	// Push is given a Push addressed to our servent ID.
	Push func(p *protocol.Push, h protocol.Header)
	// QueryHit is given every hit routed to us (for our own searches).
	QueryHit func(h protocol.Header, hit *protocol.QueryHit, from *Link)
	// Firewalled reports whether we believe we are not reachable.
	Firewalled func() bool
	// Busy reports whether every upload slot is taken.
	Busy func() bool
	// RouteTable is given QRP route-table updates (ultrapeer package).
	RouteTable func(l *Link, h protocol.Header, payload []byte)
	// QRPTable is our library's QRP table (nil: empty); called every
	// connector tick, so it should return a cached table while the library
	// has not changed.
	QRPTable func() *ultrapeer.Table
	// ShareStats reports how many files and KiB we share (for our Pong).
	ShareStats func() (files, kb uint32)
	// Trace, when set, sees every descriptor a link hands to the router,
	// with whether it was a duplicate. Tests count with it.
	Trace func(from *Link, h protocol.Header, dup bool)
}

func (s *Servent) acceptLoop() {
	defer s.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		conn, err := s.listener.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn().Err(err).Msg("accept failed")
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(conn)
		}()
	}
}

// serveConn reads the first line of an inbound connection and hands the
// connection to whoever speaks that protocol.
func (s *Servent) serveConn(conn net.Conn) {
	_ = conn.SetDeadline(s.now().Add(s.cfg.HandshakeTimeout))
	// Stop must not wait HandshakeTimeout for a peer stalling here.
	stop := context.AfterFunc(s.ctx, func() { _ = conn.Close() })
	defer stop()
	remote := addrPortOf(conn.RemoteAddr())
	if s.cfg.Hooks.Inbound != nil {
		s.cfg.Hooks.Inbound(remote)
	}
	br := bufio.NewReaderSize(conn, 2048)
	// A first byte that is not plain ASCII text is taken for TLS or garbage.
	first, err := br.Peek(1)
	if err != nil {
		conn.Close()
		return
	}
	if c := first[0]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '\r' || c == '\n') {
		conn.Close()
		return
	}
	line, err := protocol.ReadLine(br)
	if err != nil {
		if errors.Is(err, protocol.ErrLineTooLong) {
			writeAndClose(conn, string(s.refusal(413, "Request Entity Too Large", remote.Addr())))
			return
		}
		conn.Close()
		return
	}
	switch {
	case strings.HasPrefix(line, "GNUTELLA CONNECT/"):
		s.acceptGnutella(conn, br, line)
	case strings.HasPrefix(line, "GET ") || strings.HasPrefix(line, "HEAD "):
		if s.cfg.Hooks.HTTP != nil {
			s.cfg.Hooks.HTTP(conn, br, line)
			return
		}
		_, _ = protocol.ReadHeaders(br, len(line))
		writeAndClose(conn, "HTTP/1.1 404 Not Found\r\nServer: "+userAgent()+
			"\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nConnection: close\r\n\r\nNot Found\n")
	case strings.HasPrefix(line, "GIV "):
		giv, err := protocol.ParseGIV(line)
		if err != nil || s.cfg.Hooks.GIV == nil {
			conn.Close()
			return
		}
		// the empty line after the GIV
		if l2, err := protocol.ReadLine(br); err != nil || l2 != "" {
			conn.Close()
			return
		}
		s.cfg.Hooks.GIV(conn, br, giv)
	case strings.HasPrefix(line, "WALKCHECK "):
		s.serveWalkCheck(conn, line)
	case line == "CONNECT BACK" || line == "":
		if s.cfg.Hooks.ConnectBack != nil {
			s.cfg.Hooks.ConnectBack(remote)
		}
		conn.Close()
	case strings.Contains(line, "HTTP"):
		writeAndClose(conn, "HTTP/1.1 501 Not Implemented\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
	default:
		conn.Close()
	}
}

func writeAndClose(conn net.Conn, s string) {
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = conn.Write([]byte(s))
	// Closing with unread input makes the kernel reset the connection, and
	// the peer may lose our answer: half-close and discard what it still
	// sends, for a moment.
	if cw, ok := conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.CopyN(io.Discard, conn, 64<<10)
	}
	conn.Close()
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func userAgent() string { return "gnutella/" + Version }
