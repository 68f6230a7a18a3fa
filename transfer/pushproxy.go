package transfer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"gnutella/firewall"
	"gnutella/protocol"
)

// Both sides of the HTTP push-proxy request (docs/protocol.md §6.5): the downloader
// asks a push proxy to send a Push for it (RequestPushProxy), and the
// upload server answers such requests for the leaves it proxies
// (Server.pushProxy). The request is parsed by firewall.ParsePushProxyRequest
// and the statuses are firewall.PushProxyStatus.

// pushProxy serves GET /gnutella/push-proxy?ServerId=<base32 GUID> (also
// /gnutella/pushproxy? and /gnet/push-proxy?guid=<hex>) with the required
// X-Node header.
func (s *Server) pushProxy(conn net.Conn, r *request) bool {
	head := r.method == "HEAD"
	if s.PushProxy == nil {
		s.refuse(conn, r, 404, "Not Found", head)
		return false
	}
	servent, _, xnode, err := firewall.ParsePushProxyRequest(r.target, r.h.Get("X-Node"))
	if err != nil {
		s.Logger.Debug().Str("remote", r.remote.String()).Err(err).Msg("push-proxy request refused")
		s.refuse(conn, r, int(firewall.PushProxyBadRequest), firewall.PushProxyBadRequest.Reason(), head)
		return false
	}
	// gtk-gnutella's "tls=true", or X-Features: tls: the Push asks for a
	// TLS callback
	tls := firewall.PushProxyWantsTLS(r.target) || r.h.HasFeature("tls")
	code := s.PushProxy(servent, xnode, tls)
	reason := http.StatusText(code)
	switch st := firewall.PushProxyStatus(code); st {
	case firewall.PushProxySent, firewall.PushProxyRouted, firewall.PushProxyBadRequest, firewall.PushProxyGone:
		reason = st.Reason()
	}
	if code < 200 || code > 299 {
		s.refuse(conn, r, code, reason, head)
		return false
	}
	b := s.statusLine(make([]byte, 0, 256), code, reason)
	b = appendHeader(b, "Content-Length", "0")
	if !r.keepAlive {
		b = appendHeader(b, "Connection", "close")
	} else if r.minor == 0 {
		b = appendHeader(b, "Connection", "Keep-Alive")
	}
	b = append(b, '\r', '\n')
	_ = conn.SetWriteDeadline(time.Now().Add(s.idle()))
	if _, err := conn.Write(b); err != nil {
		return false
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return r.keepAlive
}

// ErrProxyGone is returned by RequestPushProxy when the proxy answers 410:
// the servent is no longer connected to it, do not use it again.
var ErrProxyGone = errors.New("transfer: push proxy no longer serves that servent")

// RequestPushProxy asks a push proxy (docs/protocol.md §6.5) to send a Push to
// serventID on our behalf: GET /gnutella/push-proxy?ServerId=<base32> with
// X-Node, our listening address, and "&tls=true" when tls (we take TLS
// there: the callback may use it, as gtk-gnutella asks). nil means 202 or 203 (sent); any other
// answer, or none, means the proxy must not be used again. A nil dial
// means firewall.TCPDialer.
func RequestPushProxy(ctx context.Context, dial firewall.Dialer,
	proxy netip.AddrPort, serventID protocol.GUID, xnode netip.AddrPort, tls bool, userAgent string) error {
	if dial == nil {
		dial = firewall.TCPDialer{}
	}
	conn, err := dial.Dial(ctx, proxy.String())
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(PushProxyTimeout))
	target := "/gnutella/push-proxy?ServerId=" + serventID.Base32()
	if tls {
		target += "&tls=true"
	}
	req := "GET " + target + " HTTP/1.1\r\n" +
		"User-Agent: " + userAgent + "\r\n" +
		"Host: " + proxy.String() + "\r\n" +
		"X-Node: " + xnode.String() + "\r\n" +
		"Connection: close\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		return err
	}
	code, _, reason, _, err := readResponseHead(bufio.NewReaderSize(conn, 1024))
	if err != nil {
		return err
	}
	switch code {
	case 202, 203:
		return nil
	case 410:
		return ErrProxyGone
	}
	return fmt.Errorf("push proxy %s: %d %s", proxy, code, reason)
}
