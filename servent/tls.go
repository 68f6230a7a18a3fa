package servent

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"gnutella/protocol"
)

// TLS links, as gtk-gnutella makes them (docs/protocol.md, "TLS"): there is
// no PKI in Gnutella, so each servent has a self-signed certificate of its
// own and a client checks none (it only wants the link encrypted). An
// inbound connection whose first byte is a TLS handshake record (0x16,
// where a plain one begins with a letter) is served over TLS on the same
// port; we dial a peer over TLS when it said it speaks it (X-Features:
// tls/1.0 in a handshake), and fall back to plain TCP when the TLS
// handshake fails, as gtk-gnutella does.

// tlsFeature is what X-Features says of TLS (gtk-gnutella's "tls/1.0").
const tlsFeature = "tls/1.0"

// maxTLSHosts bounds the addresses remembered as speaking TLS.
const maxTLSHosts = 2048

// tlsRecordHandshake is the first byte of a TLS ClientHello.
const tlsRecordHandshake = 0x16

// tlsState is a servent's TLS identity and what it knows of its peers.
type tlsState struct {
	once   sync.Once
	server *tls.Config
	client *tls.Config
	err    error

	accepted atomic.Int64 // inbound TLS connections (links and HTTP)

	mu    sync.Mutex
	hosts *simplelru.LRU[netip.AddrPort, struct{}] // listen addresses that speak TLS
}

// configs makes the certificate on first use: a servent that never meets
// TLS pays nothing for it.
func (t *tlsState) configs() (server, client *tls.Config, err error) {
	t.once.Do(func() {
		var cert tls.Certificate
		cert, t.err = selfSignedCert()
		if t.err != nil {
			return
		}
		t.server = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		// No PKI: the client takes any certificate (what gtk-gnutella's
		// anonymous and self-signed sessions give); the link is encrypted,
		// not authenticated.
		t.client = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec
	})
	return t.server, t.client, t.err
}

// selfSignedCert is an ECDSA P-256 certificate for one year, signed by its
// own key.
func selfSignedCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "gnutella servent"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// speaksTLS notes that the peer listening at a said it speaks TLS.
func (t *tlsState) speaksTLS(a netip.AddrPort) {
	if !a.IsValid() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hosts == nil {
		t.hosts, _ = simplelru.NewLRU[netip.AddrPort, struct{}](maxTLSHosts, nil)
	}
	t.hosts.Add(a, struct{}{})
}

// knownTLS reports whether the peer at a said it speaks TLS.
func (t *tlsState) knownTLS(a netip.AddrPort) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hosts != nil && t.hosts.Contains(a)
}

// forget drops a from the hosts that speak TLS (its TLS handshake failed).
func (t *tlsState) forget(a netip.AddrPort) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hosts != nil {
		t.hosts.Remove(a)
	}
}

// featuresTLS reports whether X-Features in h names tls.
func featuresTLS(h *protocol.Headers) bool { return h.HasFeature("tls") }

// bufferedConn is a connection whose first bytes were read into br: reads
// come from br first.
type bufferedConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// acceptTLS runs the server side of a TLS handshake on an inbound
// connection that began with a TLS record (its bytes so far in br), within
// the connection's deadline.
func (s *Servent) acceptTLS(conn net.Conn, br *bufio.Reader) (*tls.Conn, error) {
	server, _, err := s.tls.configs()
	if err != nil {
		return nil, err
	}
	tc := tls.Server(&bufferedConn{Conn: conn, br: br}, server)
	if err := tc.HandshakeContext(s.ctx); err != nil {
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	s.tls.accepted.Add(1)
	return tc, nil
}

// tlsDialer dials for HTTP transfers as dialLink does for links.
type tlsDialer struct{ s *Servent }

func (d tlsDialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return d.s.transport.Dial(ctx, addr)
	}
	return d.s.dialLink(ctx, ap)
}

// dialLink dials addr for a Gnutella link or an HTTP transfer: over TLS
// when addr is known to speak it (then plain TCP again if that fails),
// else plain.
func (s *Servent) dialLink(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	conn, err := s.transport.Dial(ctx, addr.String())
	if err != nil || !s.cfg.TLS || !s.tls.knownTLS(addr) {
		return conn, err
	}
	_, client, err := s.tls.configs()
	if err != nil {
		return conn, nil
	}
	tc := tls.Client(conn, client)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		s.tls.forget(addr)
		s.log.Debug().Stringer("addr", addr).Err(err).Msg("TLS handshake failed: dialling again without TLS")
		return s.transport.Dial(ctx, addr.String())
	}
	return tc, nil
}

// isTLS reports whether conn is a TLS connection.
func isTLS(conn net.Conn) bool {
	_, ok := conn.(*tls.Conn)
	return ok
}
