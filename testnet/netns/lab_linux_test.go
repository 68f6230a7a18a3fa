package netns

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// newLab builds a lab closed at the end of the test, or skips the test where this machine cannot build one.
func newLab(t *testing.T, name string, hosts []HostSpec) *Lab {
	t.Helper()
	lab, err := New(name, hosts)
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	return lab
}

// Bad arguments are errors of their own, reported before anything is made, on any machine.
func TestNewRejectsBadArguments(t *testing.T) {
	for _, c := range []struct {
		name  string
		hosts []HostSpec
	}{
		{"bad name", []HostSpec{{Name: "a"}}},
		{"", []HostSpec{{Name: "a"}}},
		{"nohosts", nil},
		{"twice", []HostSpec{{Name: "a"}, {Name: "a"}}},
		{"switch", []HostSpec{{Name: "sw"}}},
		{"slash", []HostSpec{{Name: "a/b"}}},
	} {
		lab, err := New(c.name, c.hosts)
		if err == nil || errors.Is(err, ErrUnavailable) || lab != nil {
			t.Errorf("New(%q, %v) = %v, %v; want an argument error", c.name, c.hosts, lab, err)
		}
	}
}

// Two hosts talk through the bridge with sockets made in their namespaces; Close deletes every namespace, and a
// second Close does nothing.
func TestLabHostsTalkAndCloseRemovesThem(t *testing.T) {
	lab := newLab(t, "talk", []HostSpec{{Name: "a"}, {Name: "b"}})
	a, b := lab.Host("a"), lab.Host("b")
	if a == nil || b == nil || lab.Host("c") != nil || a.Addr == b.Addr {
		t.Fatalf("hosts %+v", lab.Hosts)
	}
	if got := lab.Namespaces(); len(got) != 3 {
		t.Fatalf("namespaces %v, want the switch's and two hosts'", got)
	}
	ln, err := lab.Transport(b).Listen(netip.AddrPortFrom(b.Addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	c, err := lab.Transport(a).Dial(t.Context(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v", got, err)
	}
	if from := c.LocalAddr().String(); netip.MustParseAddrPort(from).Addr() != a.Addr {
		t.Errorf("a's socket has the address %s, want %s", from, a.Addr)
	}
	if _, err := lab.Transport(a).Dial(t.Context(), "localhost:1"); err == nil {
		t.Error("the transport dialled a host name")
	}

	ln.Close()
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	if left, err := lab.Remaining(); err != nil || len(left) != 0 {
		t.Errorf("after Close: namespaces %v left (%v)", left, err)
	}
	for _, ns := range lab.Namespaces() {
		if _, err := os.Stat("/run/netns/" + ns); !os.IsNotExist(err) {
			t.Errorf("%s: %v", ns, err)
		}
	}
	if err := lab.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// The lab's Delay option: netem on a host's interface delays what it sends, so a TCP connect to it takes at least
// that long. Skipped where the kernel has no netem.
func TestLabDelay(t *testing.T) {
	const delay = 40 * time.Millisecond
	lab := newLab(t, "delay", []HostSpec{{Name: "a"}, {Name: "slow", Delay: delay}})
	a, slow := lab.Host("a"), lab.Host("slow")
	ln, err := lab.Transport(slow).Listen(netip.AddrPortFrom(slow.Addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t0 := time.Now()
	c, err := lab.Transport(a).Dial(t.Context(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	c.Close()
	if took < delay {
		t.Errorf("a connect to the delayed host took %v, want at least %v", took, delay)
	}
}

// NewOn puts the hosts on the subnet given, and a Transport's UDP socket lives in its host's namespace: a
// datagram from one host reaches the other with the sender's lab address as its source.
func TestLabOnSubnetCarriesDatagrams(t *testing.T) {
	if _, err := NewOn("bad", netip.MustParsePrefix("100.64.0.0/16"), []HostSpec{{Name: "a"}}); err == nil || errors.Is(err, ErrUnavailable) {
		t.Errorf("NewOn with a /16: %v, want an argument error", err)
	}
	lab, err := NewOn("udp", netip.MustParsePrefix("100.64.0.0/24"), []HostSpec{{Name: "a"}, {Name: "b"}})
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	a, b := lab.Host("a"), lab.Host("b")
	if a.Addr != netip.MustParseAddr("100.64.0.1") || b.Addr != netip.MustParseAddr("100.64.0.2") {
		t.Fatalf("hosts at %v and %v, want 100.64.0.1 and 100.64.0.2", a.Addr, b.Addr)
	}
	if !strings.HasSuffix(a.Path, "/"+a.Netns()) {
		t.Errorf("namespace %q, file %q", a.Netns(), a.Path)
	}
	pb, err := lab.Transport(b).ListenPacket(netip.AddrPortFrom(b.Addr, 6346).String())
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	pa, err := lab.Transport(a).ListenPacket(netip.AddrPortFrom(a.Addr, 6346).String())
	if err != nil {
		t.Fatal(err)
	}
	defer pa.Close()
	if _, err := pa.WriteTo([]byte("hello"), pb.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, from, err := pb.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if got := from.String(); got != "100.64.0.1:6346" {
		t.Errorf("the datagram came from %s, want 100.64.0.1:6346", got)
	}
}
