package transfer

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
)

// The whole firewalled path: the downloader asks a push proxy over HTTP,
// the proxy tells the firewalled servent, which connects back with a GIV
// that Callbacks hands to the waiting download.
func TestDownloadThroughPushProxyAndCallbacks(t *testing.T) {
	fw := &Server{PerIP: -1}
	fx := newUploadFixture(t, fw) // the firewalled servent's files
	fwID := protocol.GUID{0xfa, 0x11}

	// Our servent's port: GIV lines go to Callbacks.
	var cb Callbacks
	ours, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ourAddr := addrPortOf(ours.Addr())
	var wg sync.WaitGroup
	defer func() { ours.Close(); fw.Close(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ours.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			giv, err := protocol.ReadGIV(br)
			_ = c.SetReadDeadline(time.Time{})
			if err != nil || !cb.Deliver(c, br, giv) {
				c.Close()
			}
		}
	}()

	// The push proxy: knows fwID only; "sends the Push" by making the
	// firewalled servent call X-Node back.
	proxy := &Server{PushProxy: func(id protocol.GUID, xnode netip.AddrPort, _ bool) int {
		if id != fwID {
			return 410
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", xnode.String())
			if err != nil {
				return
			}
			fw.ServeCallback(c, protocol.GIV{Index: 0, ServentID: id, Name: "file"})
		}()
		return 202
	}}
	pts := startServer(t, proxy, nil)

	if err := RequestPushProxy(context.Background(), nil, pts.addr, protocol.GUID{9}, ourAddr, false, "gnutella/test"); !errors.Is(err, ErrProxyGone) {
		t.Fatalf("unknown servent: %v", err)
	}
	if err := RequestPushProxy(context.Background(), nil, fx.ts.addr, fwID, ourAddr, false, "gnutella/test"); err == nil {
		t.Fatal("a server without push-proxy support accepted")
	}

	push := func(ctx context.Context, src Source) (net.Conn, *bufio.Reader, error) {
		return cb.Push(ctx, src, func(s Source) error {
			var errs []error
			for _, p := range s.PushProxies {
				err := RequestPushProxy(ctx, nil, p, s.ServentID, ourAddr, false, "gnutella/test")
				if err == nil {
					return nil
				}
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		})
	}
	d := newDownloader(t, &Downloader{Push: push})
	x, err := d.Add(reqOf(fx.a, Source{Addr: netip.MustParseAddrPort("10.1.2.3:6346"), Index: 1, ServentID: fwID, Push: true,
		PushProxies: []netip.AddrPort{pts.addr}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	checkFile(t, x.Status().Path, fx.aData)
}

func TestCallbacks(t *testing.T) {
	var cb Callbacks
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if cb.Deliver(a, bufio.NewReader(a), protocol.GIV{ServentID: protocol.GUID{1}}) {
		t.Fatal("delivered with nobody waiting")
	}
	// No GIV in time.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := cb.Push(ctx, Source{ServentID: protocol.GUID{1}}, func(Source) error { return nil })
	if !errors.Is(err, ErrNoCallback) {
		t.Fatalf("err %v", err)
	}
	// A send error is returned as is.
	boom := errors.New("no route")
	if _, _, err := cb.Push(context.Background(), Source{ServentID: protocol.GUID{1}}, func(Source) error { return boom }); err != boom {
		t.Fatalf("err %v", err)
	}
	// Two waiters for one servent: the GIV's index picks one, else the oldest.
	id := protocol.GUID{2}
	got := make(chan uint32, 2)
	var wg sync.WaitGroup
	ready := make(chan struct{}, 2)
	for _, idx := range []uint32{5, 6} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := cb.Push(context.Background(), Source{ServentID: id, Index: idx}, func(Source) error {
				ready <- struct{}{}
				return nil
			})
			if err == nil {
				got <- idx
				c.Close()
			}
		}()
		<-ready
	}
	c1, c2 := net.Pipe()
	if !cb.Deliver(c1, nil, protocol.GIV{ServentID: id, Index: 6}) {
		t.Fatal("not delivered")
	}
	if idx := <-got; idx != 6 {
		t.Fatalf("index 6 went to %d", idx)
	}
	c3, c4 := net.Pipe()
	if !cb.Deliver(c3, nil, protocol.GIV{ServentID: id, Index: 0}) {
		t.Fatal("not delivered")
	}
	if idx := <-got; idx != 5 {
		t.Fatalf("index 0 went to %d", idx)
	}
	wg.Wait()
	c2.Close()
	c4.Close()
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if len(cb.waiters) != 0 {
		t.Fatalf("waiters left: %v", cb.waiters)
	}
}
