package servent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"gnutella/protocol"
)

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
		remote := addrPortOf(conn.RemoteAddr())
		if s.refused(conn) { // hostiles.go: a hostile or banned address, before anything else
			continue
		}
		if !s.adm.allowAccept(remote.Addr(), s.now()) {
			_ = conn.Close() // a connect-and-close flood: unread
			continue
		}
		pc, evict := s.adm.enter(conn, remote.Addr(), len(s.Links()))
		if evict != nil {
			_ = evict.Close()
		}
		if pc == nil {
			_ = conn.Close() // over a cap or the descriptor budget: unread
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer pc.done()
			s.serveConn(conn, pc, remote)
		}()
	}
}

// serveConn reads the first line of an inbound connection and hands the
// connection to whoever speaks that protocol. pc is its pending entry
// (admission.go), left when the handshake is done or the connection is
// handed over.
//
// One deadline, set here, bounds the first line and the whole handshake
// or HTTP request head (docs/protocol.md §2.2): nothing restarts it per
// line, so a peer dripping bytes is cut after HandshakeTimeout, not after
// a timeout per line.
func (s *Servent) serveConn(conn net.Conn, pc *pendingConn, remote netip.AddrPort) {
	_ = conn.SetDeadline(s.now().Add(s.cfg.HandshakeTimeout))
	// Stop must not wait HandshakeTimeout for a peer stalling here.
	stop := context.AfterFunc(s.ctx, func() { _ = conn.Close() })
	defer stop()
	if fw := s.cfg.Firewall; fw != nil {
		fw.SawInbound(remote)
	}
	br := bufio.NewReaderSize(conn, 2048)
	// A first byte that is not plain ASCII text is taken for TLS or garbage.
	first, err := br.Peek(1)
	if err != nil {
		conn.Close()
		return
	}
	if first[0] == tlsRecordHandshake && s.cfg.TLS {
		tc, err := s.acceptTLS(conn, br) // tls.go
		if err != nil {
			s.log.Debug().Stringer("remote", remote).Err(err).Msg("inbound TLS failed")
			conn.Close()
			return
		}
		conn = tc
		br = bufio.NewReaderSize(tc, 2048)
		if first, err = br.Peek(1); err != nil {
			conn.Close()
			return
		}
	}
	if c := first[0]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '\r' || c == '\n') {
		conn.Close()
		return
	}
	head, err := peekFirstLine(br)
	if err != nil && !errors.Is(err, protocol.ErrLineTooLong) {
		conn.Close()
		return
	}
	httpLike := bytes.HasPrefix(head, []byte("GET ")) || bytes.HasPrefix(head, []byte("HEAD "))
	line, err := protocol.ReadLine(br)
	if err != nil {
		switch {
		case !errors.Is(err, protocol.ErrLineTooLong):
			conn.Close()
		case httpLike: // an HTTP client must get an HTTP status line
			writeAndClose(conn, "HTTP/1.1 414 URI Too Long\r\nServer: "+userAgent()+
				"\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nURI Too Long\n")
		default:
			writeAndClose(conn, string(s.refusal(413, "Request Entity Too Large", remote.Addr())))
		}
		return
	}
	switch {
	case strings.HasPrefix(line, "GNUTELLA CONNECT/"):
		if !s.adm.allowHandshake(remote.Addr(), s.now()) {
			s.log.Debug().Stringer("remote", remote).Msg("handshake rate exceeded")
			writeAndClose(conn, string(s.refusal(429, "Too Many Requests", remote.Addr())))
			return
		}
		s.acceptGnutella(conn, br, line, pc)
	case strings.HasPrefix(line, "GET ") || strings.HasPrefix(line, "HEAD "):
		// An HTTP connection stays in the pending table as long as it is
		// served (its head, its upload, its kept-alive waits): otherwise a
		// request line followed by nothing would escape the caps.
		if t := s.cfg.Transfers; t != nil {
			t.ServeHTTPConn(conn, br, line)
			return
		}
		_, _ = protocol.ReadHeaders(br, len(line))
		writeAndClose(conn, "HTTP/1.1 404 Not Found\r\nServer: "+userAgent()+
			"\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nConnection: close\r\n\r\nNot Found\n")
	case strings.HasPrefix(line, "GIV "):
		if !pc.leave() {
			conn.Close()
			return
		}
		s.serveGIV(conn, br, line) // giv.go
	case strings.HasPrefix(line, "WALKCHECK "):
		s.serveWalkCheck(conn, line)
	case line == "CONNECT BACK" || line == "":
		if fw := s.cfg.Firewall; fw != nil {
			fw.SawConnectBack(remote)
		}
		conn.Close()
	case strings.Contains(line, "HTTP"):
		writeAndClose(conn, "HTTP/1.1 501 Not Implemented\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
	default:
		conn.Close()
	}
}

// peekFirstLine waits until the first line is in br's buffer (or more
// bytes than a line may hold are) and returns what is buffered, unread:
// the caller sees how a line too long began before ReadLine consumes it.
// It returns ErrLineTooLong when no line ending came in time.
func peekFirstLine(br *bufio.Reader) ([]byte, error) {
	const most = protocol.MaxHandshakeLine + 2 // the text, "\r" and "\n"
	for n := 1; ; {
		buf, err := br.Peek(n)
		if err != nil {
			return buf, err
		}
		buf, _ = br.Peek(br.Buffered())
		if bytes.IndexByte(buf, '\n') >= 0 {
			return buf, nil
		}
		if len(buf) >= most {
			return buf, protocol.ErrLineTooLong
		}
		n = len(buf) + 1
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
