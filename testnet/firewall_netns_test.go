//go:build linux

package testnet

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent"
	"gnutella/testnet/await"
	"gnutella/testnet/netns"
)

// Behind a real firewall: three hosts in network namespaces joined by a bridge (see netns.Lab), an open host, an
// ultrapeer, and a firewalled host whose kernel drops inbound TCP connection attempts. The open host finds the
// firewalled host's file and downloads it by Push; a direct connect to the firewalled host fails; the firewalled
// host decides on its own that it is firewalled. The namespaces are removed afterwards, even on failure.
//
// Roles: the ultrapeer is in ModeUltrapeer, the two others are leaves. A firewalled host must not be an
// ultrapeer (docs/protocol.md §6.6), and as a leaf it asks its ultrapeer to be its push proxy (LIME/21), which is the
// ordinary way a firewalled servent is reached today. The open host is a leaf too: a plain downloader. Both dial
// the ultrapeer, which is the only link either has, so every query, hit and Push passes through it.
func TestFirewalledHostBehindRealFirewall(t *testing.T) {
	// (d) Registered first, so it runs last: after the nodes have stopped and the lab has been closed. Nothing of
	// the test may be left: no namespace, no goroutine, no socket and no namespace file descriptor.
	var lab *netns.Lab
	ignore := goleak.IgnoreCurrent()
	fdsBefore := socketFDs(t)
	t.Cleanup(func() {
		goleak.VerifyNone(t, ignore)
		if fds := socketFDs(t); len(fds) > len(fdsBefore) {
			t.Errorf("socket or namespace descriptors left open: %d before the test, now %v", len(fdsBefore), fds)
		}
		if lab == nil {
			return // New failed, and deleted what it had made
		}
		left, err := lab.Remaining()
		if err != nil {
			t.Error(err)
		}
		for _, ns := range left {
			t.Errorf("namespace %s is left behind after the test", ns)
		}
	})

	lab = newLab(t, "fw", []netns.HostSpec{{Name: "open"}, {Name: "up"}, {Name: "fw", Firewalled: true}})
	defer closeLab(t, lab)
	openH, upH, fwH := lab.Host("open"), lab.Host("up"), lab.Host("fw")
	t.Logf("lab: open %s, ultrapeer %s, firewalled %s", openH.Addr, upH.Addr, fwH.Addr)

	shareDir, dlDir := t.TempDir(), t.TempDir()
	content := make([]byte, 300_000)
	for i := range content {
		content[i] = byte(i*7 + i/251)
	}
	const fileName = "zebra quokka netns.bin"
	if err := os.WriteFile(filepath.Join(shareDir, fileName), content, 0o644); err != nil {
		t.Fatal(err)
	}

	var nodes []*servent.Node
	stopAll := func() {
		for _, n := range nodes {
			_ = n.Stop() // Stop may be called again; the later calls return at once
		}
	}
	t.Cleanup(stopAll)
	defer stopAll() // before the deferred lab.Close
	start := func(h *netns.Host, mode servent.Mode, share, download bool) (*servent.Node, *dialLog) {
		t.Helper()
		dl := &dialLog{Transport: lab.Transport(h)}
		c := BaseNodeConfig()
		c.Transport = dl
		c.ListenAddr = netip.AddrPortFrom(h.Addr, 6346).String()
		c.Mode = mode
		c.DataDir = t.TempDir()
		// Nobody is assumed reachable: each host must find out by itself.
		c.AssumeReachable = false
		// 10.77/16 is private: inside the lab, a connection from a private address must count as proof, and
		// Push callbacks to private addresses must be allowed.
		c.AcceptLocalProof = true
		c.PushPolicy.AllowPrivate = true
		if share {
			c.ShareDirs = []string{shareDir}
		}
		if download {
			c.DownloadDir = dlDir
		}
		n, err := servent.NewNode(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		return n, dl
	}
	up, upDials := start(upH, servent.ModeUltrapeer, false, false)
	open, openDials := start(openH, servent.ModeLeaf, false, true)
	fw, fwDials := start(fwH, servent.ModeLeaf, true, false)

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := fw.Library.Rescan(); err != nil {
		t.Fatal(err)
	}
	if err := fw.Library.HashAll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*servent.Node{open, fw} {
		if _, err := n.Connect(ctx, up.Addr()); err != nil {
			t.Fatalf("%s dials the ultrapeer: %v", n.Addr(), err)
		}
	}
	if err := up.WaitLinks(ctx, 2); err != nil {
		t.Fatal(err)
	}
	fwAddr := netip.AddrPortFrom(fwH.Addr, 6346).String()
	openAddr := netip.AddrPortFrom(openH.Addr, 6346).String()

	// (b) Each leaf asks the ultrapeer for a TCP connect-back (BEAR/7) soon after its first link. The one to the
	// open host arrives and proves it reachable; the one to the firewalled host is dropped by its kernel.
	await.Until(t, "the connect-backs: the open host reachable, the firewalled host's dropped",
		func() bool {
			dropped, err := lab.DroppedSYNs(fwH)
			if err != nil {
				t.Fatal(err)
			}
			return !open.Firewall.Firewalled() && upDials.succeeded(openAddr) && upDials.tried(fwAddr) && dropped > 0
		})
	if upDials.succeeded(fwAddr) {
		t.Fatal("the ultrapeer's connect-back reached the firewalled host")
	}
	if upDials.pending(fwAddr) {
		// The connect-back is still in SYN-SENT in the ultrapeer's namespace: its SYNs go unanswered.
		out, err := lab.Exec(upH, "ss", "-tnH", "state", "syn-sent", "dst", fwH.Addr.String())
		if err != nil {
			t.Fatalf("ss: %v: %s", err, out)
		}
		if !strings.Contains(out, fwAddr) {
			t.Errorf("no SYN-SENT socket toward %s in the ultrapeer's namespace:\n%s", fwAddr, out)
		}
	}
	if fw.Firewall.Firewalled() != true {
		t.Fatal("the firewalled host believes it is reachable")
	}
	if _, _, proof := fw.Firewall.State(); !proof.IsZero() {
		t.Fatalf("the firewalled host recorded a reachability proof at %v", proof)
	}

	// (a) A direct TCP connect from the open host's namespace to the firewalled host's port times out (the
	// kernel drops the SYN: no refusal comes back), while one from the firewalled host to the open host works.
	// The port is listening: it is the firewall that stops the connection.
	if out, err := lab.Exec(fwH, "ss", "-tlnH", "sport", "= :6346"); err != nil || !strings.Contains(out, fwAddr) {
		t.Fatalf("the firewalled host does not listen on %s (%v):\n%s", fwAddr, err, out)
	}
	before, err := lab.DroppedSYNs(fwH)
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	t0 := time.Now()
	c, err := lab.Transport(openH).Dial(dctx, fwAddr)
	took := time.Since(t0)
	dcancel()
	if err == nil {
		c.Close()
		t.Fatalf("a direct connect to the firewalled host %s went through", fwAddr)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("direct connect to the firewalled host: %v, want a time-out", err)
	}
	if took < 1400*time.Millisecond {
		t.Errorf("the dial into the firewall gave up after %v; its context allowed 1.5 s", took)
	}
	if after, err := lab.DroppedSYNs(fwH); err != nil || after <= before {
		t.Errorf("the firewall's drop counter went from %d to %d (%v)", before, after, err)
	}
	t.Logf("direct connect to the firewalled host: %v after %v", err, took.Round(time.Millisecond))
	for _, from := range []*netns.Host{fwH, upH} {
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := lab.Transport(from).Dial(dctx, openAddr)
		dcancel()
		if err != nil {
			t.Fatalf("a connect from %s to the open host %s: %v", from.Name, openAddr, err)
		}
		if got := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); got != from.Addr {
			t.Errorf("a socket made in %s's namespace has the address %v", from.Name, got)
		}
		c.Close()
	}

	// (c) The open host searches, gets a hit with the push flag from the firewalled host, and downloads it: by
	// a Push through the ultrapeer, and the firewalled host's GIV callback to the open host.
	s := open.Search(ctx, protocol.NewQuery("zebra quokka", protocol.QueryFlagMark|protocol.QueryFlagGGEPH),
		routing.Flood{TTL: 3}, 1, 10*time.Second)
	hits := s.Hits()
	if len(hits) == 0 {
		t.Fatal("no hit for \"zebra quokka\"")
	}
	hit := hits[0]
	want := sha1.Sum(content)
	if hit.URN != protocol.SHA1(want) || !hit.Push || hit.Host.Addr() != fwH.Addr || hit.Name != fileName {
		t.Fatalf("hit %+v: want %q from %v with urn %x and the push flag", hit, fileName, fwH.Addr, want)
	}
	t.Logf("hit: %q from %v, push %v, push proxies %v", hit.Name, hit.Host, hit.Push, hit.Proxies)
	d, err := open.Download(hit, hits)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(ctx); err != nil {
		t.Fatalf("download: %v (%+v)", err, d.Status())
	}
	got, err := os.ReadFile(d.Status().Path)
	if err != nil {
		t.Fatal(err)
	}
	if sha1.Sum(got) != want || !bytes.Equal(got, content) {
		t.Fatalf("the downloaded file's SHA-1 is %x, want %x", sha1.Sum(got), want)
	}
	if !fwDials.succeeded(openAddr) {
		t.Error("the firewalled host never called the open host back (GIV)")
	}
	if openDials.tried(fwAddr) {
		t.Error("the open host's servent dialled the firewalled host directly")
	}
	// Still firewalled after all that: only outbound connections, and a connect-back that never came.
	if !fw.Firewall.Firewalled() {
		t.Error("the firewalled host ended up believing it is reachable")
	}
	t.Logf("ultrapeer dials: %v", upDials)
}

// newLab builds a netns lab that is closed when the test ends, or skips the test, saying why, where this machine
// cannot build one (not root, no ip, nft or iptables, no netem...).
func newLab(t *testing.T, name string, hosts []netns.HostSpec) *netns.Lab {
	t.Helper()
	lab, err := netns.New(name, hosts)
	if errors.Is(err, netns.ErrUnavailable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range lab.RemovedStale {
		t.Logf("deleted the stale namespace %s of a run that is gone", ns)
	}
	t.Cleanup(func() { closeLab(t, lab) })
	return lab
}

// closeLab closes the lab, failing the test if a namespace could not be deleted.
func closeLab(t *testing.T, lab *netns.Lab) {
	t.Helper()
	if err := lab.Close(); err != nil {
		t.Error(err)
	}
}

// socketFDs lists this process's open sockets and namespace files (as "fd -> socket:[inode]").
func socketFDs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && (strings.HasPrefix(target, "socket:") || strings.HasPrefix(target, "net:")) {
			out = append(out, e.Name()+" -> "+target)
		}
	}
	return out
}

// dialLog is a Transport that records its dials and how they ended.
type dialLog struct {
	servent.Transport
	mu    sync.Mutex
	dials []*dialRecord
}

type dialRecord struct {
	addr string
	done bool
	err  error
}

func (d *dialLog) Dial(ctx context.Context, addr string) (net.Conn, error) {
	r := &dialRecord{addr: addr}
	d.mu.Lock()
	d.dials = append(d.dials, r)
	d.mu.Unlock()
	c, err := d.Transport.Dial(ctx, addr)
	d.mu.Lock()
	r.done, r.err = true, err
	d.mu.Unlock()
	return c, err
}

func (d *dialLog) find(addr string, match func(*dialRecord) bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.dials {
		if r.addr == addr && match(r) {
			return true
		}
	}
	return false
}

func (d *dialLog) tried(addr string) bool {
	return d.find(addr, func(*dialRecord) bool { return true })
}

func (d *dialLog) succeeded(addr string) bool {
	return d.find(addr, func(r *dialRecord) bool { return r.done && r.err == nil })
}

func (d *dialLog) pending(addr string) bool {
	return d.find(addr, func(r *dialRecord) bool { return !r.done })
}

func (d *dialLog) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	for i, r := range d.dials {
		if i > 0 {
			b.WriteString(", ")
		}
		switch {
		case !r.done:
			fmt.Fprintf(&b, "%s (pending)", r.addr)
		case r.err != nil:
			fmt.Fprintf(&b, "%s (%v)", r.addr, r.err)
		default:
			fmt.Fprintf(&b, "%s (ok)", r.addr)
		}
	}
	return b.String()
}
