// The test binary parses gtk-gnutella's certificates as the command does
// (main.go says why).
//
//go:debug x509negativeserial=1
package servent

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/testnet/await"
)

// A peer that says X-Features: tls/1.0 in its handshake is dialled over
// TLS the next time, and the TLS link carries messages; a servent with TLS
// off never dials TLS.
func TestTLSLinkAfterThePeerSaidIt(t *testing.T) {
	var queries atomic.Int64
	cb := testConfig()
	cb.Trace = func(l *Link, h protocol.Header, dup bool) {
		if h.Type == protocol.TypeQuery && l.TLS {
			queries.Add(1)
		}
	}
	b := startServent(t, cb)
	a := startServent(t, testConfig())
	l, err := a.Connect(ctxT(t), b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if l.TLS {
		t.Fatal("the first link is over TLS: nothing said b speaks it")
	}
	if !a.tls.knownTLS(b.Addr()) {
		t.Fatal("b's X-Features: tls/1.0 was not noted")
	}
	l.Bye(protocol.ByeManualRemoval, "reconnecting over TLS")
	await.Until(t, "the plain link to close", func() bool { return len(a.Links()) == 0 && len(b.Links()) == 0 })

	l, err = a.Connect(ctxT(t), b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if !l.TLS {
		t.Fatal("the second link is not over TLS")
	}
	await.Until(t, "b's side of the link", func() bool { return len(b.Links()) == 1 })
	if bl := b.Links()[0]; !bl.TLS {
		t.Error("b does not see its inbound link as TLS")
	}
	a.Search(context.Background(), protocol.NewQuery("over tls", protocol.QueryFlagMark), routing.Flood{TTL: 2}, 0, 50*time.Millisecond)
	await.Until(t, "the query to reach b over TLS", func() bool { return queries.Load() > 0 })

	// With TLS off, the same knowledge does not make a TLS link.
	cc := testConfig()
	cc.TLS = false
	c := startServent(t, cc)
	c.tls.speaksTLS(b.Addr())
	lc, err := c.Connect(ctxT(t), b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if lc.TLS {
		t.Error("a servent with TLS off dialled TLS")
	}
}

// The listening port serves HTTP over TLS too, and a TLS record that is
// not a TLS handshake is dropped without an answer.
func TestTLSInboundHTTPAndGarbage(t *testing.T) {
	b := startServent(t, testConfig())
	conn, err := tls.Dial("tcp", b.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, "GET /get/1/x HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 ") {
		t.Fatalf("HTTP over TLS answered %q, %v", line, err)
	}

	raw, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, _ = raw.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o'})
	_ = raw.SetReadDeadline(time.Now().Add(30 * time.Second))
	// A TLS alert is all it may send before it closes the connection.
	n, err := io.Copy(io.Discard, raw)
	if isTimeout(err) {
		t.Fatalf("the server kept the connection open after a TLS record that is no handshake (%d bytes read)", n)
	}
	if n > 64 {
		t.Errorf("the server answered garbage with %d bytes", n)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// featuresTLS reads gtk-gnutella's X-Features.
func TestFeaturesTLS(t *testing.T) {
	for v, want := range map[string]bool{
		"tls/1.0, browse/1.0, fwalt/0.1, queue/1.1": true,
		"browse/1.0":          false,
		"  TLS/1.0":           true,
		"tlsx/1.0, fwalt/0.1": false,
		"":                    false,
	} {
		var h protocol.Headers
		h.Add("X-Features", v)
		if got := featuresTLS(&h); got != want {
			t.Errorf("featuresTLS(%q) = %v", v, got)
		}
	}
}

// A download from a holder known to speak TLS runs over TLS (the holder's
// port takes TLS for HTTP as for links), and the file is right.
func TestTLSDownload(t *testing.T) {
	shareDir := t.TempDir()
	content := sharedFile(t, shareDir, "wombat tls transfer.bin", 200_000)
	cs := testNodeConfig(t)
	cs.ShareDirs = []string{shareDir}
	cd := testNodeConfig(t)
	cd.DownloadDir = t.TempDir()
	holder, getter := startNode(t, cs), startNode(t, cd)
	hashNow(t, holder)
	// The link's handshake tells the getter that the holder speaks TLS.
	l, err := getter.Connect(ctxT(t), holder.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if !getter.tls.knownTLS(holder.Addr()) {
		t.Fatal("the holder's X-Features: tls/1.0 was not noted")
	}
	linkTLS := int64(0)
	if l.TLS {
		linkTLS = 1
	}
	hit := searchOne(t, getter, "wombat tls")
	downloadHit(ctxT(t), t, getter, hit, content)
	if n := holder.tls.accepted.Load() - linkTLS; n < 1 {
		t.Errorf("the holder accepted %d TLS connections for the download", n)
	}
}

// A firewalled holder that takes TLS says so in its hits (GGEP "TLS"); the
// getter's Push asks for a TLS callback (GGEP "TLS") and the holder's GIV
// callback comes over TLS. A holder without TLS says nothing and calls
// back in plain TCP. The file is right either way.
func TestPushCallbackOverTLSWhenTheHolderSaysTLS(t *testing.T) {
	for _, holderTLS := range []bool{true, false} {
		t.Run(fmt.Sprintf("holder TLS %v", holderTLS), func(t *testing.T) {
			shareDir := t.TempDir()
			content := sharedFile(t, shareDir, "numbat push tls.bin", 150_000)
			cs := testNodeConfig(t)
			cs.ShareDirs = []string{shareDir}
			cs.AcceptLocalProof = false // firewalled: nothing proves it reachable
			cs.TLS = holderTLS
			cd := testNodeConfig(t)
			cd.DownloadDir = t.TempDir()
			holder, getter := startNode(t, cs), startNode(t, cd)
			hashNow(t, holder)
			if _, err := holder.Connect(ctxT(t), getter.Addr()); err != nil {
				t.Fatal(err)
			}
			await.Until(t, "the getter to be reachable", func() bool { return !getter.Firewall.Firewalled() })
			if err := getter.WaitLinks(ctxT(t), 1); err != nil {
				t.Fatal(err)
			}
			awaitPeerTable(t, getter, holder.ID()) // searching before it may find nothing
			hit := searchOne(t, getter, "numbat push")
			if !hit.Push || hit.TLS != holderTLS {
				t.Fatalf("hit push=%v tls=%v, want push, tls=%v", hit.Push, hit.TLS, holderTLS)
			}
			before := getter.tls.accepted.Load()
			downloadHit(ctxT(t), t, getter, hit, content)
			n := getter.tls.accepted.Load() - before
			if holderTLS && n < 1 {
				t.Errorf("the getter accepted no TLS connection: the callback was plain")
			}
			if !holderTLS && n != 0 {
				t.Errorf("the getter accepted %d TLS connections from a holder without TLS", n)
			}
		})
	}
}

// The same through a push proxy: a firewalled leaf names its ultrapeer in
// its hits, the getter asks that proxy with gtk-gnutella's "&tls=true",
// the proxy's Push carries GGEP "TLS" and the leaf calls back over TLS.
func TestPushCallbackOverTLSThroughAPushProxy(t *testing.T) {
	shareDir := t.TempDir()
	content := sharedFile(t, shareDir, "bilby proxy tls.bin", 120_000)
	cs := testNodeConfig(t)
	cs.Mode = ModeLeaf
	cs.ShareDirs = []string{shareDir}
	cs.AcceptLocalProof = false
	cu := testNodeConfig(t)
	cd := testNodeConfig(t)
	cd.DownloadDir = t.TempDir()
	holder, up, getter := startNode(t, cs), startNode(t, cu), startNode(t, cd)
	hashNow(t, holder)
	// The ultrapeer dials the getter: that inbound connection makes the
	// getter reachable (a firewalled getter gets no answer from a
	// firewalled leaf).
	if _, err := up.Connect(ctxT(t), getter.Addr()); err != nil {
		t.Fatal(err)
	}
	await.Until(t, "the getter to be reachable", func() bool { return !getter.Firewall.Firewalled() })
	if _, err := holder.Connect(ctxT(t), up.Addr()); err != nil {
		t.Fatal(err)
	}
	await.Until(t, "the ultrapeer to be the leaf's push proxy", func() bool { return len(holder.ourPushProxies()) == 1 })
	awaitPeerTable(t, up, holder.ID())
	hit := searchOne(t, getter, "bilby proxy")
	if !hit.Push || !hit.TLS || len(hit.Proxies) != 1 || hit.Proxies[0] != up.Addr() {
		t.Fatalf("hit push=%v tls=%v proxies %v, want push, tls, proxy %s", hit.Push, hit.TLS, hit.Proxies, up.Addr())
	}
	before := getter.tls.accepted.Load()
	downloadHit(ctxT(t), t, getter, hit, content)
	if n := getter.tls.accepted.Load() - before; n < 1 {
		t.Errorf("the getter accepted no TLS connection: the callback was plain")
	}
}
