package servent

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"gnutella/protocol"
	"gnutella/servent/memnet"
	"gnutella/testnet/await"
	"gnutella/transfer"
)

// dialFrom is dialRaw from a source address of our choice: the whole of
// 127/8 is local, so 127.0.0.N are as many peers as we like.
func dialFrom(t *testing.T, s *Servent, ip string) *rawPeer {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conn, err := d.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawPeer{t: t, conn: conn, br: bufio.NewReader(conn), w: conn}
}

// tryHandshake sends a 0.6 request from ip and returns the status code.
func tryHandshake(t *testing.T, s *Servent, ip string) int {
	t.Helper()
	p := dialFrom(t, s, ip)
	p.request("0.6", peerHeaders(protocol.NewGUID())...)
	resp := p.response()
	if resp.Code == 429 && resp.Reason != "Too Many Requests" {
		t.Errorf("429 with reason %q", resp.Reason)
	}
	p.conn.Close()
	return resp.Code
}

// A third Gnutella handshake within a minute from one address gets 429
// (loopback exemption off); a whitelisted address, another address, and
// loopback under the default config are not refused.
func TestHandshakeRate429(t *testing.T) {
	c := testConfig()
	c.RateLimitLoopback = true
	c.RateWhitelist = []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}
	s := startServent(t, c)
	for i, want := range []int{200, 200, 429, 429} {
		if got := tryHandshake(t, s, "127.0.0.2"); got != want {
			t.Errorf("127.0.0.2 handshake %d: got %d, want %d", i+1, got, want)
		}
	}
	for i := range 4 {
		if got := tryHandshake(t, s, "127.0.0.3"); got != 200 {
			t.Errorf("whitelisted handshake %d: got %d", i+1, got)
		}
	}
	if got := tryHandshake(t, s, "127.0.0.4"); got != 200 {
		t.Errorf("another address: got %d", got)
	}
	d := startServent(t, testConfig()) // loopback exempt by default
	for i := range 4 {
		if got := tryHandshake(t, d, "127.0.0.2"); got != 200 {
			t.Errorf("default config, loopback handshake %d: got %d", i+1, got)
		}
	}
}

// The window slides: once the first handshake is a minute old, one more
// is taken (virtual time, over the in-memory network).
func TestHandshakeRateWindowSlides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memnet.New()
		c := DefaultConfig()
		c.Transport = mem.Host(netip.MustParseAddr("127.1.0.1"))
		c.ListenAddr = "127.1.0.1:6346"
		c.WantLinks = 0
		c.RateLimitLoopback = true
		s, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		defer s.Stop()
		peer := mem.Host(netip.MustParseAddr("127.1.0.2"))
		try := func() int {
			conn, err := peer.Dial(context.Background(), s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			req := protocol.HandshakeRequest{Version: "0.6"}
			req.Headers.Add("GUID", protocol.NewGUID().String())
			req.Headers.Add("X-Ultrapeer", "True")
			if _, err := conn.Write(req.AppendTo(nil)); err != nil {
				t.Fatal(err)
			}
			resp, err := protocol.ReadHandshakeResponse(bufio.NewReader(conn))
			if err != nil {
				t.Fatal(err)
			}
			return resp.Code
		}
		for i, want := range []int{200, 200, 429} {
			if got := try(); got != want {
				t.Fatalf("handshake %d: got %d, want %d", i+1, got, want)
			}
			time.Sleep(10 * time.Second)
		}
		time.Sleep(31 * time.Second) // the first is now 61 s old
		if got := try(); got != 200 {
			t.Errorf("after the window: got %d, want 200", got)
		}
		if got := try(); got != 429 {
			t.Errorf("right after: got %d, want 429", got)
		}
	})
}

// admissionBed is a servent that signals each connection it admits (the
// Firewall seam hears it once the connection is past the caps) and holds
// idle ones for a minute, longer than a test peer waits.
func admissionBed(t *testing.T, mutate func(c *Config)) (*Servent, inboundSignal) {
	t.Helper()
	sig := make(inboundSignal, 64)
	c := testConfig()
	c.HandshakeTimeout = time.Minute
	c.Firewall = sig
	mutate(&c)
	return startServent(t, c), sig
}

// closedUnread checks that the servent closed p at once without a word:
// an end of stream (or a reset) well before an admitted idle connection
// would be cut.
func closedUnread(t *testing.T, p *rawPeer) {
	t.Helper()
	got, err := io.ReadAll(p.br)
	if err != nil && !isReset(err) {
		t.Fatalf("connection over the cap not closed: %v", err)
	}
	if len(got) > 0 {
		t.Errorf("servent sent %q", got)
	}
}

func isReset(err error) bool { return strings.Contains(err.Error(), "connection reset") }

// legitPeer handshakes from ip and gets a Pong.
func legitPeer(t *testing.T, s *Servent, ip string) {
	t.Helper()
	p := dialFrom(t, s, ip)
	p.handshake(peerHeaders(protocol.NewGUID()))
	p.sync()
}

// Idle connections beyond MaxPendingPerAddr are closed at accept; a peer
// from another address still completes a handshake and gets a Pong.
func TestPendingCapPerAddress(t *testing.T) {
	s, sig := admissionBed(t, func(c *Config) { c.MaxPendingPerAddr = 3 })
	for range 3 {
		dialFrom(t, s, "127.0.0.2")
		<-sig
	}
	closedUnread(t, dialFrom(t, s, "127.0.0.2"))
	if st := s.Admission(); st.Refused != 1 || st.Pending != 3 {
		t.Errorf("admission %+v, want 1 refused and 3 pending", st)
	}
	legitPeer(t, s, "127.0.0.9")
}

// When MaxPending connections from as many addresses are pending, a
// newcomer is closed at accept: no address holds more than it would.
func TestPendingCapTotal(t *testing.T) {
	s, sig := admissionBed(t, func(c *Config) { c.MaxPending = 4 })
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		dialFrom(t, s, ip)
		<-sig
	}
	closedUnread(t, dialFrom(t, s, "127.0.0.6"))
	if st := s.Admission(); st.Refused != 1 || st.Evicted != 0 || st.Pending != 4 {
		t.Errorf("admission %+v, want 1 refused, none evicted, 4 pending", st)
	}
}

// When the pending table is full of one address's idle connections, its
// oldest is closed for a peer from another address, which completes its
// handshake and gets a Pong.
func TestPendingFullEvictsTheAddressHoldingMost(t *testing.T) {
	s, sig := admissionBed(t, func(c *Config) { c.MaxPending = 4 })
	var idle []*rawPeer
	for range 4 {
		idle = append(idle, dialFrom(t, s, "127.0.0.2"))
		<-sig
	}
	legitPeer(t, s, "127.0.0.9")
	closedUnread(t, idle[0])
	if st := s.Admission(); st.Evicted != 1 || st.Pending != 3 {
		t.Errorf("admission %+v, want 1 evicted and 3 pending", st)
	}
}

// A first line over 1,024 bytes that starts like HTTP gets an HTTP status
// line, not a Gnutella one.
func TestLongHTTPRequestLineGets414(t *testing.T) {
	s := startServent(t, testConfig())
	p := dialRaw(t, s)
	line := "GET /" + strings.Repeat("a", 1025-len("GET / HTTP/1.1")) + " HTTP/1.1"
	if len(line) != 1025 {
		t.Fatalf("line of %d bytes", len(line))
	}
	p.write([]byte(line + "\r\nHost: x\r\n\r\n"))
	if got := p.rawBytes(); !strings.HasPrefix(got, "HTTP/1.1 414 ") {
		t.Errorf("got %q, want an HTTP 414", got)
	}
}

// uploadsOnly is the Transfers of a servent that serves HTTP with a
// transfer.Server and nothing else.
type uploadsOnly struct{ srv *transfer.Server }

func (u uploadsOnly) ServeHTTPConn(conn net.Conn, br *bufio.Reader, line string) {
	u.srv.ServeConn(conn, br, line)
}
func (uploadsOnly) ServeGIV(conn net.Conn, _ *bufio.Reader, _ protocol.GIV) { conn.Close() }
func (uploadsOnly) Busy() bool                                              { return false }

// One deadline bounds the first line and the whole handshake or request
// head on the shared port: a peer dripping a piece every 10 s is cut
// HandshakeTimeout after it connected, not after a timeout per line or
// one restarted after the request line (virtual time, in-memory network).
func TestHeadDeadlineOnTheSharedPortIsAbsolute(t *testing.T) {
	const drip = 10 * time.Second
	for _, tc := range []struct {
		name   string
		pieces []string
	}{
		{"gnutella", []string{"GNUTELLA ", "CONNECT/0.6\r\n", "User-Agent: drip\r\n"}},
		{"http", []string{"GET ", "/get/1/", "x HTTP/1.1\r\n", "Host: x\r\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mem := memnet.New()
				c := DefaultConfig()
				c.Transport = mem.Host(netip.MustParseAddr("127.1.0.1"))
				c.ListenAddr = "127.1.0.1:6346"
				c.WantLinks = 0
				up := &transfer.Server{}
				c.Transfers = uploadsOnly{up}
				s, err := New(c)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Start(); err != nil {
					t.Fatal(err)
				}
				defer s.Stop()
				defer up.Close()
				conn, err := mem.Host(netip.MustParseAddr("127.1.0.2")).Dial(context.Background(), s.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				start := time.Now()
				closed := make(chan struct{})
				go func() {
					_, _ = io.Copy(io.Discard, conn)
					close(closed)
				}()
			drip:
				for i := 0; ; i++ {
					piece := "X-Drip: 1\r\n"
					if i < len(tc.pieces) {
						piece = tc.pieces[i]
					}
					if _, err := conn.Write([]byte(piece)); err != nil {
						break
					}
					select {
					case <-closed:
						break drip
					case <-time.After(drip):
					}
				}
				<-closed
				if took := time.Since(start); took < c.HandshakeTimeout || took > c.HandshakeTimeout+drip {
					t.Errorf("dripping peer cut after %v of virtual time, want %v", took, c.HandshakeTimeout)
				}
			})
		})
	}
}

// IPv4 addresses count one by one, IPv6 ones by /64, IPv4-mapped IPv6 as
// IPv4: 429 and the pending caps cannot be dodged by cycling through one
// host's IPv6 addresses.
func TestAddressesCountPerIPv4AndPerIPv6Slash64(t *testing.T) {
	var a admissions
	c := DefaultConfig()
	a.init(&c)
	now := time.Now()
	for i, tc := range []struct {
		ip   string
		want bool
	}{
		{"2001:db8:1:2::1", true},
		{"2001:db8:1:2::ffff", true},
		{"2001:db8:1:2:aaaa::7", false}, // the same /64: third in the window
		{"2001:db8:1:3::1", true},       // the next /64
		{"192.0.2.1", true},
		{"::ffff:192.0.2.1", true},
		{"192.0.2.1", false},
		{"192.0.2.2", true},
	} {
		if got := a.allowHandshake(netip.MustParseAddr(tc.ip), now); got != tc.want {
			t.Errorf("%d: %s allowed %v, want %v", i, tc.ip, got, tc.want)
		}
	}
}

// The rate table stays bounded however many addresses pass through it:
// full of addresses still within their window, it refuses new ones (so
// that a flood from many addresses cannot reset the count of the one being
// limited), and takes them again once the window has passed.
func TestHandshakeRateTableIsBounded(t *testing.T) {
	var a admissions
	c := DefaultConfig()
	c.RateLimitLoopback = true
	a.init(&c)
	now := time.Now()
	allowed := 0
	for i := range 2 * maxRateEntries {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if a.allowHandshake(ip, now) {
			allowed++
		}
	}
	if allowed != maxRateEntries {
		t.Errorf("%d addresses allowed at once, want the table's %d", allowed, maxRateEntries)
	}
	later := now.Add(c.HandshakeRateWindow + time.Second)
	if !a.allowHandshake(netip.MustParseAddr("10.200.0.1"), later) {
		t.Error("a new address refused once the window had passed")
	}
}

// A connect-and-close flood from one address is closed at accept beyond
// AcceptRate per AcceptRateWindow; other addresses are still accepted.
func TestAcceptRateClosesAFlood(t *testing.T) {
	c := testConfig()
	c.RateLimitLoopback = true
	c.AcceptRate = 5
	c.AcceptRateWindow = time.Hour
	s := startServent(t, c)
	for range 20 {
		conn := dialFrom(t, s, "127.0.0.21").conn
		conn.Close()
	}
	await.Until(t, "15 connections closed at accept", func() bool { return s.Admission().Flooded == 15 })
	if got := handshakeAnswer(t, dialFrom(t, s, "127.0.0.22").conn); got != "GNUTELLA/0.6" {
		t.Errorf("another address was answered %q, want a handshake", got)
	}
	if got := handshakeAnswer(t, dialFrom(t, s, "127.0.0.21").conn); got != "" {
		t.Errorf("the flooding address was answered %q, want nothing", got)
	}
}

// A request line followed by nothing is an HTTP connection still pending:
// it counts against MaxPendingPerAddr like an idle one.
func TestPendingCapCountsHTTPConnections(t *testing.T) {
	served := make(chan struct{}, 3)
	s, sig := admissionBed(t, func(c *Config) {
		c.MaxPendingPerAddr = 3
		c.Transfers = servedSignal{uploadsOnly{&transfer.Server{}}, served}
	})
	for range 3 {
		dialFrom(t, s, "127.0.0.2").write([]byte("GET /get/1/x HTTP/1.1\r\n"))
		<-sig
		<-served // handed to the upload server, reading the headers
	}
	closedUnread(t, dialFrom(t, s, "127.0.0.2"))
	if st := s.Admission(); st.Refused != 1 || st.Pending != 3 {
		t.Errorf("admission %+v, want 1 refused and 3 pending", st)
	}
	legitPeer(t, s, "127.0.0.9")
}

// servedSignal signals each HTTP connection handed to its Transfers.
type servedSignal struct {
	uploadsOnly
	served chan struct{}
}

func (s servedSignal) ServeHTTPConn(conn net.Conn, br *bufio.Reader, line string) {
	s.served <- struct{}{}
	s.uploadsOnly.ServeHTTPConn(conn, br, line)
}

// The default leaf limit follows whichever of descriptors and memory is
// scarcer, within its floor and ceiling.
func TestLeafCapacity(t *testing.T) {
	const gib = 1 << 30
	for _, c := range []struct {
		fds, mem int64
		want     int
	}{
		{0, 0, 300},                // nothing known
		{1024, 0, 1024 - 64 - 128}, // descriptors alone
		{1024, 16 * gib, 1024 - 64 - 128},
		{1 << 20, 16 * gib, 5000},                        // plenty of both: the ceiling
		{1 << 20, 256 << 20, 256 << 20 / 8 / (16 << 10)}, // a small cgroup: 2,048
		{0, 64 << 20, 512},                               // memory alone
		{200, 16 * gib, 32},                              // almost no descriptors: the floor
	} {
		if got := leafCapacity(c.fds, c.mem, 64); got != c.want {
			t.Errorf("leafCapacity(%d fds, %d bytes) = %d, want %d", c.fds, c.mem, got, c.want)
		}
	}
	if n := DefaultMaxLeaves(); n < minDefaultLeaves || n > maxDefaultLeaves {
		t.Errorf("DefaultMaxLeaves() = %d", n)
	}
	if m := memoryLimit(); runtime.GOOS == "linux" && m <= 0 {
		t.Errorf("memoryLimit() = %d on Linux", m)
	}
}
