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
	if s.refused(conn) { // hostiles.go
		return
	}
	_ = conn.SetDeadline(s.now().Add(s.cfg.HandshakeTimeout))
	// Stop must not wait HandshakeTimeout for a peer stalling here.
	stop := context.AfterFunc(s.ctx, func() { _ = conn.Close() })
	defer stop()
	remote := addrPortOf(conn.RemoteAddr())
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
		if t := s.cfg.Transfers; t != nil {
			t.ServeHTTPConn(conn, br, line)
			return
		}
		_, _ = protocol.ReadHeaders(br, len(line))
		writeAndClose(conn, "HTTP/1.1 404 Not Found\r\nServer: "+userAgent()+
			"\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nConnection: close\r\n\r\nNot Found\n")
	case strings.HasPrefix(line, "GIV "):
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
