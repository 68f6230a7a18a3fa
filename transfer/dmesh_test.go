package transfer

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"gnutella/firewall"
	"gnutella/protocol"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

var meshSHA1 = protocol.SHA1{1, 2, 3}

// newTestMesh returns a mesh on a clock the test moves.
func newTestMesh(cfg MeshConfig) (*Mesh, *time.Time) {
	m := NewMesh(cfg)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	return m, &now
}

func headers(kv ...string) *protocol.Headers {
	var h protocol.Headers
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return &h
}

func addrsOf(srcs []Source) []string {
	var out []string
	for _, s := range srcs {
		out = append(out, s.String())
	}
	slices.Sort(out)
	return out
}

func TestParseAlt(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{"127.0.0.1:6347, 127.0.0.2", []string{"127.0.0.1:6347", "127.0.0.2:6346"}, false},
		{"tls=8,127.0.0.1:1;127.0.0.3:3", []string{"127.0.0.1:1", "127.0.0.3:3"}, false},
		{" [::1]:7 ,, ", []string{"[::1]:7"}, false},
		{"::ffff:127.0.0.1", []string{"127.0.0.1:6346"}, false},
		{"host.example:6346, 127.0.0.1:2", []string{"127.0.0.1:2"}, true},
		{"127.0.0.1:99999", nil, true},
		{"127.0.0.1:0", nil, true},
		{"0.0.0.0:6346", nil, true},
		{"", nil, false},
	} {
		got, err := ParseAlt(c.in)
		var gs []string
		for _, a := range got {
			gs = append(gs, a.String())
		}
		if !slices.Equal(gs, c.want) || (err != nil) != c.bad {
			t.Errorf("ParseAlt(%q) = %v, %v; want %v, bad %v", c.in, gs, err, c.want, c.bad)
		}
	}
	many := strings.Repeat("127.0.0.1:1,", 10*maxAltItems)
	if got, _ := ParseAlt(many); len(got) != maxAltItems {
		t.Errorf("ParseAlt of %d items gave %d, want the first %d", 10*maxAltItems, len(got), maxAltItems)
	}
}

func TestParseFalt(t *testing.T) {
	// The form gtk-gnutella documents in dmesh.c, on loopback addresses.
	v := "9DBC52EEEBCA2C8A79036D626B959900;fwt/1;26252:127.0.0.5;pptls=E;127.0.0.6:1085;127.0.0.7:804;127.0.0.8:343;127.0.0.9:1;127.0.0.10:2"
	got, err := ParseFalt(v + ", nonsense;127.0.0.1:1, " + protocol.GUID{1}.Base32() + ";127.0.0.1:5")
	if err != ErrBadAlt {
		t.Errorf("err = %v, want ErrBadAlt for the item without a GUID", err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d locations, want 2: %+v", len(got), got)
	}
	l := got[0]
	if l.GUID.String() != "9dbc52eeebca2c8a79036d626b959900" || l.Addr != ap("127.0.0.5:26252") {
		t.Errorf("GUID %s addr %s", l.GUID, l.Addr)
	}
	want := []netip.AddrPort{ap("127.0.0.6:1085"), ap("127.0.0.7:804"), ap("127.0.0.8:343"), ap("127.0.0.9:1")}
	if !slices.Equal(l.Proxies, want) {
		t.Errorf("proxies %v, want the first %d: %v", l.Proxies, maxFaltProxies, want)
	}
	if got[1].GUID.IsZero() || len(got[1].Proxies) != 1 {
		t.Errorf("base32 GUID item: %+v", got[1])
	}
	if _, err := ParseFalt("00000000000000000000000000000000;127.0.0.1:1"); err != ErrBadAlt {
		t.Errorf("zero GUID accepted")
	}
}

func TestFormatRoundTrip(t *testing.T) {
	addrs := []netip.AddrPort{ap("127.0.0.1:1"), ap("[::1]:6346")}
	got, err := ParseAlt(FormatAlt(addrs))
	if err != nil || !slices.Equal(got, addrs) {
		t.Errorf("X-Alt round trip: %v %v", got, err)
	}
	locs := []AltLoc{{GUID: protocol.GUID{1, 2}, Proxies: []netip.AddrPort{ap("127.0.0.1:5")}}, {GUID: protocol.GUID{3}}}
	back, err := ParseFalt(FormatFalt(locs))
	if err != nil || len(back) != 2 || back[0].GUID != locs[0].GUID || !slices.Equal(back[0].Proxies, locs[0].Proxies) ||
		back[1].GUID != locs[1].GUID || len(back[1].Proxies) != 0 {
		t.Errorf("X-Falt round trip: %+v %v", back, err)
	}
}

func TestWantsFalt(t *testing.T) {
	if !WantsFalt(headers("X-Features", "tls/1.0, FWALT/0.1, browse/1.0")) {
		t.Error("fwalt not seen")
	}
	if WantsFalt(headers("X-Features", "fwaltx/1, browse/1.0")) || WantsFalt(headers()) || WantsFalt(nil) {
		t.Error("fwalt seen where there is none")
	}
}

func TestNilMesh(t *testing.T) {
	var m *Mesh
	m.Learn(meshSHA1, headers("X-Alt", "127.0.0.1:1"), ap("127.0.0.2:1"))
	m.Add(meshSHA1, Source{Addr: ap("127.0.0.1:1")})
	m.Good(meshSHA1, Source{Addr: ap("127.0.0.1:1")})
	m.Bad(meshSHA1, Source{Addr: ap("127.0.0.1:1")})
	if m.Sources(meshSHA1) != nil || len(m.AppendHeaders(nil, meshSHA1, netip.AddrPort{}, true)) != 0 ||
		len(m.AppendRequestHeaders([]byte("x"), meshSHA1, netip.AddrPort{}, true)) != 1 {
		t.Error("nil mesh did something")
	}
}

func TestMeshLearnAndSources(t *testing.T) {
	m, _ := newTestMesh(MeshConfig{})
	m.Learn(meshSHA1, headers(
		"X-Alt", "127.0.0.1:6001, 0.0.0.0:1, 224.0.0.1:5, 127.0.0.2:0, 240.0.0.1:5, 255.255.255.255:5",
		"X-Alt", "tls=C0,127.0.0.3:6003",
		"X-Falt", "0102000000000000000000000000000a;127.0.0.1:7;0.0.0.0:8;224.0.0.1:9",
	), ap("127.0.0.9:40000"))
	got := m.Sources(meshSHA1)
	if s := addrsOf(got); !slices.Equal(s, []string{"127.0.0.1:6001", "127.0.0.3:6003", "push:0102000000000000000000000000000a"}) {
		t.Fatalf("sources %v", s)
	}
	for _, s := range got {
		if s.Push && !slices.Equal(s.PushProxies, []netip.AddrPort{ap("127.0.0.1:7")}) {
			t.Errorf("proxies %v: the hostile ones must be dropped", s.PushProxies)
		}
	}
	m.Add(meshSHA1, Source{Addr: ap("127.0.0.1:6001"), Index: 4, Name: "a.bin"})
	for _, s := range m.Sources(meshSHA1) {
		if s.Addr == ap("127.0.0.1:6001") && (s.Index != 4 || s.Name != "a.bin") {
			t.Errorf("source %+v: the hit's index and name are lost", s)
		}
	}
	if m.Sources(protocol.SHA1{9}) != nil {
		t.Error("sources of an unknown file")
	}
	m.Learn(protocol.SHA1{}, headers("X-Alt", "127.0.0.1:1"), netip.AddrPort{})
	if m.Sources(protocol.SHA1{}) != nil {
		t.Error("a zero SHA-1 was taken")
	}
}

func TestMeshPolicyAndSelf(t *testing.T) {
	m, _ := newTestMesh(MeshConfig{
		AddrPolicy: &firewall.AddrPolicy{},
		IsSelf:     func(a netip.AddrPort) bool { return a == ap("10.0.0.1:1") },
	})
	m.Learn(meshSHA1, headers("X-Alt", "127.0.0.1:1"), netip.AddrPort{})
	if len(m.Sources(meshSHA1)) != 0 {
		t.Error("loopback taken under the Internet's policy")
	}
	m, _ = newTestMesh(MeshConfig{IsSelf: func(a netip.AddrPort) bool { return a == ap("127.0.0.1:1") }})
	m.Learn(meshSHA1, headers("X-Alt", "127.0.0.1:1, 127.0.0.1:2"), netip.AddrPort{})
	if s := addrsOf(m.Sources(meshSHA1)); !slices.Equal(s, []string{"127.0.0.1:2"}) {
		t.Errorf("sources %v: our own address must not be one", s)
	}
	// A push source whose address the policy refuses is kept as firewalled.
	m, _ = newTestMesh(MeshConfig{AddrPolicy: &firewall.AddrPolicy{}})
	m.Add(meshSHA1, Source{Addr: ap("127.0.0.1:1"), ServentID: protocol.GUID{7}})
	if got := m.Sources(meshSHA1); len(got) != 1 || !got[0].Push || got[0].Addr.IsValid() {
		t.Errorf("sources %+v", got)
	}
}

func TestMeshBounds(t *testing.T) {
	m, now := newTestMesh(MeshConfig{MaxPerFile: 5, MaxFiles: 3})
	m.Good(meshSHA1, Source{Addr: ap("127.0.1.1:1")})
	for i := range 20 {
		*now = now.Add(time.Second)
		m.Learn(meshSHA1, headers("X-Alt", fmt.Sprintf("127.0.0.%d:1", i+1)), netip.AddrPort{})
	}
	got := addrsOf(m.Sources(meshSHA1))
	want := []string{"127.0.0.17:1", "127.0.0.18:1", "127.0.0.19:1", "127.0.0.20:1", "127.0.1.1:1"}
	if !slices.Equal(got, want) {
		t.Errorf("sources %v, want the good one and the 4 freshest %v", got, want)
	}
	for i := range 4 {
		m.Add(protocol.SHA1{byte(10 + i)}, Source{Addr: ap("127.0.0.1:1")})
	}
	if m.Sources(meshSHA1) != nil {
		t.Error("the least recently used file was not forgotten")
	}
	if len(m.Sources(protocol.SHA1{13})) != 1 {
		t.Error("the newest file was forgotten")
	}
}

func TestMeshExpiry(t *testing.T) {
	m, now := newTestMesh(MeshConfig{Expiry: time.Minute})
	m.Add(meshSHA1, Source{Addr: ap("127.0.0.1:1")})
	*now = now.Add(30 * time.Second)
	m.Add(meshSHA1, Source{Addr: ap("127.0.0.2:1")})
	*now = now.Add(45 * time.Second)
	if s := addrsOf(m.Sources(meshSHA1)); !slices.Equal(s, []string{"127.0.0.2:1"}) {
		t.Errorf("sources %v after 75 s: the first is expired", s)
	}
	m.Learn(meshSHA1, headers("X-Alt", "127.0.0.2:1"), netip.AddrPort{})
	*now = now.Add(45 * time.Second)
	if len(m.Sources(meshSHA1)) != 1 {
		t.Error("a location named again was not refreshed")
	}
}

func TestMeshBad(t *testing.T) {
	m, now := newTestMesh(MeshConfig{Expiry: 2 * meshBadLifetime})
	bad := Source{Addr: ap("127.0.0.1:1")}
	m.Add(meshSHA1, bad)
	m.Add(meshSHA1, Source{Addr: ap("127.0.0.2:1")})
	m.Bad(meshSHA1, bad)
	m.Learn(meshSHA1, headers("X-Alt", "127.0.0.1:1"), ap("127.0.0.3:5"))
	m.Add(meshSHA1, bad)
	m.Good(meshSHA1, bad)
	if s := addrsOf(m.Sources(meshSHA1)); !slices.Equal(s, []string{"127.0.0.2:1"}) {
		t.Fatalf("sources %v: a bad one came back", s)
	}
	h := string(m.AppendHeaders(nil, meshSHA1, ap("127.0.0.7:5"), false))
	if h != "X-Alt: 127.0.0.2:1\r\nX-Nalt: 127.0.0.1:1\r\n" {
		t.Errorf("headers %q", h)
	}
	*now = now.Add(meshBadLifetime)
	m.Add(meshSHA1, bad)
	if len(m.Sources(meshSHA1)) != 2 {
		t.Error("a bad mark never ends")
	}
}

func TestMeshNAlt(t *testing.T) {
	m, now := newTestMesh(MeshConfig{})
	good := Source{Addr: ap("127.0.0.1:1")}
	m.Good(meshSHA1, good)
	m.Learn(meshSHA1, headers("X-Alt", "127.0.0.2:1, 127.0.0.3:1"), ap("127.0.0.9:1"))
	// A peer cannot talk us out of a good source, but drops the others.
	m.Learn(meshSHA1, headers("X-Nalt", "127.0.0.1:1, 127.0.0.2:1"), ap("127.0.0.9:1"))
	if s := addrsOf(m.Sources(meshSHA1)); !slices.Equal(s, []string{"127.0.0.1:1", "127.0.0.3:1"}) {
		t.Fatalf("sources %v", s)
	}
	// A peer's X-NAlt is not passed on: we do not know it to be bad.
	if h := string(m.AppendHeaders(nil, meshSHA1, netip.AddrPort{}, false)); strings.Contains(h, "Nalt") {
		t.Errorf("headers %q pass on a peer's X-NAlt", h)
	}
	// Another peer's X-Alt does not bring it back during the veto...
	m.Learn(meshSHA1, headers("X-Alt", "127.0.0.2:1"), ap("127.0.0.8:1"))
	if len(m.Sources(meshSHA1)) != 2 {
		t.Error("X-Alt overrode a fresh X-NAlt")
	}
	// ...the source's own hit does.
	m.Add(meshSHA1, Source{Addr: ap("127.0.0.2:1")})
	if len(m.Sources(meshSHA1)) != 3 {
		t.Error("a hit did not lift the X-NAlt")
	}
	// The good source saying itself it has it no more is believed.
	m.Learn(meshSHA1, headers("X-NAlt", "127.0.0.1:1"), ap("127.0.0.1:40000"))
	if s := addrsOf(m.Sources(meshSHA1)); slices.Contains(s, "127.0.0.1:1") {
		t.Errorf("sources %v: a source's own X-NAlt ignored", s)
	}
	*now = now.Add(meshNAltVeto)
	m.Learn(meshSHA1, headers("X-Alt", "127.0.0.1:1"), ap("127.0.0.8:1"))
	if s := addrsOf(m.Sources(meshSHA1)); !slices.Contains(s, "127.0.0.1:1") {
		t.Errorf("sources %v: the X-NAlt veto never ends", s)
	}
}

func TestMeshAppendHeaders(t *testing.T) {
	m, now := newTestMesh(MeshConfig{})
	for i := range 30 {
		*now = now.Add(time.Second)
		m.Add(meshSHA1, Source{Addr: ap(fmt.Sprintf("127.0.0.%d:1", i+1))})
	}
	m.Add(meshSHA1, Source{Addr: ap("127.0.0.30:9")})
	m.Add(meshSHA1, Source{Push: true, ServentID: protocol.GUID{0xab}, PushProxies: []netip.AddrPort{ap("127.0.0.1:2")}})
	// On loopback only the exact address and port is the peer itself.
	to := ap("127.0.0.30:1")
	b := m.AppendHeaders([]byte("HTTP/1.1 200 OK\r\n"), meshSHA1, to, true)
	br := bufio.NewReader(strings.NewReader(string(b) + "\r\n"))
	br.ReadString('\n')
	h, err := protocol.ReadHeaders(br, 0)
	if err != nil {
		t.Fatal(err)
	}
	alts, err := ParseAlt(h.Get("X-Alt"))
	if err != nil || len(alts) != maxSendAlt {
		t.Fatalf("X-Alt %q: %d items, want %d", h.Get("X-Alt"), len(alts), maxSendAlt)
	}
	for i, a := range alts {
		// Freshest first: 127.0.0.30:9, then 127.0.0.29 down to 127.0.0.21.
		want := fmt.Sprintf("127.0.0.%d:1", 30-i)
		if i == 0 {
			want = "127.0.0.30:9"
		}
		if a.String() != want {
			t.Errorf("X-Alt item %d = %v, want %s", i, a, want)
		}
	}
	if h.Get("X-Falt") != "AB000000000000000000000000000000;127.0.0.1:2" {
		t.Errorf("X-Falt %q", h.Get("X-Falt"))
	}
	if h.Has("X-Nalt") {
		t.Error("X-Nalt without a bad location")
	}
	if r := string(m.AppendRequestHeaders(nil, meshSHA1, to, false)); strings.Contains(r, "X-Falt") || !strings.Contains(r, "X-Alt: ") ||
		!strings.HasPrefix(r, "X-Features: fwalt/0.1\r\n") {
		t.Errorf("request headers to a source that did not name fwalt: %q", r)
	}
	if r := string(m.AppendRequestHeaders(nil, meshSHA1, to, true)); !strings.Contains(r, "X-Falt: AB000000000000000000000000000000;127.0.0.1:2\r\n") {
		t.Errorf("request headers to a source that named fwalt: %q", r)
	}
	// What one mesh sends, another learns.
	other, _ := newTestMesh(MeshConfig{})
	other.Learn(meshSHA1, &h, to)
	if n := len(other.Sources(meshSHA1)); n != maxSendAlt+1 {
		t.Errorf("the other mesh learnt %d locations, want %d", n, maxSendAlt+1)
	}
}

func TestMeshValueBounded(t *testing.T) {
	var items []string
	for range 50 {
		items = append(items, strings.Repeat("x", 100))
	}
	line := "X-Falt: " + meshValue(len("X-Falt: "), items)
	if len(line) > meshLineMax || len(line) < meshLineMax-110 {
		t.Errorf("line of %d bytes, want at most %d and as many items as fit", len(line), meshLineMax)
	}
}

// Over TCP: an upload answer (200/206, 416, 503) carries X-Alt of the other
// sources we know, X-Falt only for a client that named fwalt, and our
// X-Features; the X-Alt of the request is learnt.
func TestUploadAnswersCarryTheMesh(t *testing.T) {
	mesh := NewMesh(MeshConfig{})
	srv := &Server{Mesh: mesh}
	fx := newUploadFixture(t, srv)
	urn := fx.a.SHA1
	mesh.Add(urn, Source{Addr: ap("127.0.0.5:6346")})
	mesh.Add(urn, Source{Push: true, ServentID: protocol.GUID{0xcd}, PushProxies: []netip.AddrPort{ap("127.0.0.8:9")}})
	mesh.Bad(urn, Source{Addr: ap("127.0.0.4:1")})

	c, err := net.Dial("tcp", fx.ts.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nRange: bytes=0-99\r\nX-Alt: 127.0.0.6:7000, 0.0.0.0:1\r\nX-Features: fwalt/0.1\r\n\r\n", n2r(urn))
	r := readResponse(t, br, false)
	if r.code != 206 {
		t.Fatalf("status %q", r.status)
	}
	alts, _ := ParseAlt(r.h.Get("X-Alt"))
	if !slices.Contains(alts, ap("127.0.0.5:6346")) || slices.Contains(alts, ap("127.0.0.6:7000")) {
		t.Errorf("X-Alt %q: want the other source, not the client's own X-Alt echoed", r.h.Get("X-Alt"))
	}
	if r.h.Get("X-Nalt") != "127.0.0.4:1" || r.h.Get("X-Falt") != "CD000000000000000000000000000000;127.0.0.8:9" ||
		!strings.Contains(r.h.Get("X-Features"), FaltFeature) {
		t.Errorf("X-Nalt %q, X-Falt %q, X-Features %q", r.h.Get("X-Nalt"), r.h.Get("X-Falt"), r.h.Get("X-Features"))
	}
	if s := addrsOf(mesh.Sources(urn)); !slices.Contains(s, "127.0.0.6:7000") || slices.Contains(s, "0.0.0.0:1") {
		t.Errorf("mesh sources %v: the request's X-Alt was not learnt as it should", s)
	}

	// No fwalt, no X-Falt; an unsatisfiable range is answered with the
	// mesh too.
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nRange: bytes=999999-\r\n\r\n", n2r(urn))
	r = readResponse(t, br, false)
	if r.code != 416 || !strings.Contains(r.h.Get("X-Alt"), "127.0.0.5:6346") || r.h.Has("X-Falt") {
		t.Errorf("416 answer %q: X-Alt %q, X-Falt %q", r.status, r.h.Get("X-Alt"), r.h.Get("X-Falt"))
	}

	// A busy server's 503 tells where else to get the file.
	busy := &Server{Mesh: mesh, Slots: -1, QueueSize: -1}
	bfx := newUploadFixture(t, busy) // the same files, so the same URN
	raw := roundTrip(t, bfx.ts.addr, "GET "+n2r(urn)+" HTTP/1.1\r\n\r\n")
	if !strings.HasPrefix(string(raw), "HTTP/1.1 503") || !strings.Contains(string(raw), "127.0.0.5:6346") {
		t.Errorf("503 answer without the mesh: %q", raw)
	}
}

func TestMeshAddAlt(t *testing.T) {
	m, _ := newTestMesh(MeshConfig{})
	m.Bad(meshSHA1, Source{Addr: ap("127.0.0.3:1")})
	m.AddAlt(meshSHA1, []netip.AddrPort{ap("127.0.0.1:1"), ap("0.0.0.0:1"), ap("127.0.0.2:0"), ap("127.0.0.3:1")})
	if s := addrsOf(m.Sources(meshSHA1)); !slices.Equal(s, []string{"127.0.0.1:1"}) {
		t.Errorf("sources %v", s)
	}
	var many []netip.AddrPort
	for i := range 3 * maxAltItems {
		many = append(many, netip.AddrPortFrom(netip.MustParseAddr("127.0.1.1"), uint16(i+1)))
	}
	m2, _ := newTestMesh(MeshConfig{MaxPerFile: 1000})
	m2.AddAlt(meshSHA1, many)
	if n := len(m2.Sources(meshSHA1)); n != maxAltItems {
		t.Errorf("%d locations taken from one list, want %d", n, maxAltItems)
	}
}

func TestSameHost(t *testing.T) {
	for _, c := range []struct {
		loc, to string
		same    bool
	}{
		{"10.0.0.1:6346", "10.0.0.1:51000", true}, // a peer's connection comes from another port
		{"10.0.0.1:6346", "10.0.0.2:6346", false},
		{"127.0.0.1:6346", "127.0.0.1:51000", false}, // loopback: one address, many servents
		{"127.0.0.1:6346", "127.0.0.1:6346", true},
		{"[::ffff:10.0.0.1]:1", "10.0.0.1:2", true},
	} {
		if got := sameHost(ap(c.loc), ap(c.to)); got != c.same {
			t.Errorf("sameHost(%s, %s) = %v", c.loc, c.to, got)
		}
	}
}

func TestMeshAdvertise(t *testing.T) {
	self := ap("127.0.0.9:6346")
	m, _ := newTestMesh(MeshConfig{Advertise: func(h protocol.SHA1) (AltLoc, bool) { return AltLoc{Addr: self}, h == meshSHA1 }})
	m.Add(meshSHA1, Source{Addr: ap("127.0.0.1:1")})
	m.Add(protocol.SHA1{7}, Source{Addr: ap("127.0.0.1:1")})
	const feat = "X-Features: fwalt/0.1\r\n"
	if r := string(m.AppendRequestHeaders(nil, meshSHA1, ap("127.0.0.1:1"), true)); r != feat+"X-Alt: 127.0.0.9:6346\r\n" {
		t.Errorf("request headers %q: want ourselves only (the source is not told about itself)", r)
	}
	if r := string(m.AppendRequestHeaders(nil, protocol.SHA1{7}, ap("127.0.0.2:1"), true)); r != feat+"X-Alt: 127.0.0.1:1\r\n" {
		t.Errorf("request headers %q: we do not share that file", r)
	}
	if r := string(m.AppendHeaders(nil, meshSHA1, ap("127.0.0.2:1"), false)); strings.Contains(r, "127.0.0.9") {
		t.Errorf("upload answer %q names ourselves", r)
	}
	if r := string(m.AppendRequestHeaders(nil, protocol.SHA1{8}, ap("127.0.0.2:1"), true)); r != feat {
		t.Errorf("request headers %q for an unknown file we do not share", r)
	}
}

// A firewalled node names itself in X-Falt, by servent ID and push
// proxies, and only to a source that takes X-Falt.
func TestMeshAdvertiseFirewalled(t *testing.T) {
	self := AltLoc{GUID: protocol.GUID{0xcd}, Proxies: []netip.AddrPort{ap("127.0.0.7:6346")}}
	m, _ := newTestMesh(MeshConfig{Advertise: func(protocol.SHA1) (AltLoc, bool) { return self, true }})
	const want = "X-Features: fwalt/0.1\r\nX-Falt: CD000000000000000000000000000000;127.0.0.7:6346\r\n"
	if r := string(m.AppendRequestHeaders(nil, meshSHA1, ap("127.0.0.2:1"), true)); r != want {
		t.Errorf("request headers %q, want %q", r, want)
	}
	if r := string(m.AppendRequestHeaders(nil, meshSHA1, ap("127.0.0.2:1"), false)); strings.Contains(r, "X-Falt") || strings.Contains(r, "X-Alt") {
		t.Errorf("request headers %q to a source that did not name fwalt", r)
	}
	// What it sends, another mesh learns as a firewalled source.
	other, _ := newTestMesh(MeshConfig{})
	other.Learn(meshSHA1, headers("X-Falt", "CD000000000000000000000000000000;127.0.0.7:6346"), ap("127.0.0.2:1"))
	srcs := other.Sources(meshSHA1)
	if len(srcs) != 1 || srcs[0].ServentID != self.GUID || len(srcs[0].PushProxies) != 1 || srcs[0].PushProxies[0] != self.Proxies[0] {
		t.Errorf("learnt %+v", srcs)
	}
}

// One head adds at most maxLearnNew new locations, but refreshes every
// known one it names.
func TestMeshLearnNewBounded(t *testing.T) {
	m, now := newTestMesh(MeshConfig{MaxPerFile: 1000, Expiry: time.Minute})
	m.Add(meshSHA1, Source{Addr: ap("127.0.2.1:1")})
	*now = now.Add(50 * time.Second)
	var items []string
	for i := range 3 * maxLearnNew {
		items = append(items, fmt.Sprintf("127.0.1.%d:1", i+1))
	}
	items = append(items, "127.0.2.1:1") // known: refreshed although past the bound
	m.Learn(meshSHA1, headers("X-Alt", strings.Join(items, ",")), netip.AddrPort{})
	if n := len(m.Sources(meshSHA1)); n != maxLearnNew+1 {
		t.Errorf("%d locations after one head, want %d new and the known one", n, maxLearnNew)
	}
	*now = now.Add(30 * time.Second)
	if s := addrsOf(m.Sources(meshSHA1)); !slices.Contains(s, "127.0.2.1:1") {
		t.Error("the known location named again was not refreshed")
	}
}
