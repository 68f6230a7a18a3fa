package servent

import (
	"bufio"
	"context"
	"fmt"
	"gnutella/testnet/await"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"gnutella/protocol"
	"gnutella/servent/memnet"
	"gnutella/share"
	"gnutella/ultrapeer"
)

// The QRP memory-pinning attack (docs/protocol.md §4.4): a leaf sends a
// RESET for 2^21 slots and 254 of the 255 zlib PATCH messages of a real
// table's patch, and never the last. The table is 3 % full, so that the
// compressed patch (about 110 KB) comes close to the receiver's 128 KiB
// limit: the most one such leaf can make us hold.
var qrpAttack = sync.OnceValue(func() [][]byte {
	rng := rand.New(rand.NewPCG(21, 255))
	tb := ultrapeer.NewTable(21)
	for range tb.Size() * 3 / 100 {
		tb.Set(uint32(rng.IntN(tb.Size())))
	}
	whole, err := tb.Encode(nil, ultrapeer.EncodeOptions{Infinity: 2, Compression: ultrapeer.CompressAlways})
	if err != nil {
		panic(err)
	}
	var data []byte
	for _, m := range whole[1:] {
		data = append(data, m.(*protocol.RouteTablePatch).Data...)
	}
	msgs := []protocol.Payload{whole[0]}
	chunk := (len(data) + 254) / 255
	for i := range 254 {
		msgs = append(msgs, &protocol.RouteTablePatch{
			SeqNo: uint8(i + 1), SeqSize: 255, Compressor: protocol.QRPCompressorZlib, EntryBits: 4,
			Data: data[i*chunk : (i+1)*chunk],
		})
	}
	return descriptors(msgs)
})

// qrpJunkAttack is the attack as first measured: a RESET for 2^21 slots
// and 254 of 255 PATCH messages of 8000 random bytes said to be zlib, 2 MB
// in all, within the old limit of twice the uncompressed patch.
var qrpJunkAttack = sync.OnceValue(func() [][]byte {
	rng := rand.New(rand.NewPCG(8000, 254))
	msgs := []protocol.Payload{&protocol.RouteTableReset{TableLength: 1 << 21, Infinity: 2}}
	for i := range 254 {
		data := make([]byte, 8000)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		msgs = append(msgs, &protocol.RouteTablePatch{
			SeqNo: uint8(i + 1), SeqSize: 255, Compressor: protocol.QRPCompressorZlib, EntryBits: 4, Data: data,
		})
	}
	return descriptors(msgs)
})

// descriptors are route-table messages as they go on the wire, header and
// payload.
func descriptors(msgs []protocol.Payload) [][]byte {
	var out [][]byte
	for _, m := range msgs {
		p, err := m.AppendTo(nil)
		if err != nil {
			panic(err)
		}
		h := protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypeRouteTable, TTL: 1, Length: uint32(len(p))}
		out = append(out, append(h.AppendTo(nil), p...))
	}
	return out
}

// honestTable is a leaf's table with one file, as Library builds them.
func honestTable(name string) [][]byte {
	return descriptors(oneFileTable(name).Messages(qrpInfinity, qrpChunk))
}

func oneFileTable(name string) *ultrapeer.Table {
	tb := ultrapeer.NewTable(qrpBits)
	tb.AddName(share.Keywords(name))
	return tb
}

// honestTableBytes is what the ultrapeer holds of honestTable(name): its
// present slots, 2 bytes each, not the 8 KiB of a whole 2^16 table.
func honestTableBytes(t *testing.T, name string) int64 {
	tb := oneFileTable(name)
	tb.Compact()
	if n := tb.Bytes(); n != int64(2*tb.Count()) || n >= 1<<qrpBits/8 {
		t.Fatalf("the table of %q takes %d bytes for %d slots", name, n, tb.Count())
	}
	return tb.Bytes()
}

// qrpLeaf is a leaf over TCP sending the descriptors in msgs, then a ping
// (hops 0, TTL 1) that the servent answers only once it handled them all.
// It returns 0 when the pong came, or the code of the Bye the servent sent
// instead.
func qrpLeaf(t *testing.T, s *Servent, msgs [][]byte) (*rawPeer, protocol.ByeCode) {
	t.Helper()
	p := dialRaw(t, s)
	p.handshake(leafHeaders(protocol.NewGUID()))
	for _, m := range msgs {
		if _, err := p.w.Write(m); err != nil {
			return p, p.byeCode() // refused before the end: the servent closed
		}
	}
	ping := protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypePing, TTL: 1}
	if _, err := p.w.Write(ping.AppendTo(nil)); err != nil {
		return p, p.byeCode()
	}
	for {
		h, b, err := p.r.ReadRaw()
		if err != nil {
			t.Fatalf("neither pong nor Bye: %v", err)
		}
		switch {
		case h.Type == protocol.TypePong && h.ID == ping.ID:
			return p, 0
		case h.Type == protocol.TypeBye:
			bye, _ := protocol.DecodeBye(b)
			return p, bye.Code
		}
	}
}

// byeCode reads until the servent's Bye; 0 when the connection ends without
// one.
func (p *rawPeer) byeCode() protocol.ByeCode {
	for {
		h, b, err := p.r.ReadRaw()
		if err != nil {
			return 0
		}
		if h.Type == protocol.TypeBye {
			bye, _ := protocol.DecodeBye(b)
			return bye.Code
		}
	}
}

// awaitQuery reads what the servent sends p until the query id arrives.
func (p *rawPeer) awaitQuery(t *testing.T, id protocol.GUID) {
	t.Helper()
	for {
		h, _, err := p.r.ReadRaw()
		if err != nil {
			t.Fatalf("the query did not reach the honest leaf: %v", err)
		}
		if h.Type == protocol.TypeQuery && h.ID == id {
			return
		}
	}
}

// qrpAttackRun links an honest leaf, then n attacking leaves, to an
// ultrapeer whose QRP memory is limited to limit (0: the default), and
// checks that the memory held stays bounded, that attackers beyond the
// limit are refused with Bye 413, that the honest leaf still gets the
// queries its table matches, and that everything is freed when the leaves
// go. report, when set, is called while the attackers are linked.
func qrpAttackRun(t *testing.T, n int, limit int64, report func(s *Servent)) {
	b := newBed(t, func(c *Config) {
		c.QRPMemory = limit
		c.IdleTimeout = time.Hour // the attackers stay silent afterwards
		c.UltrapeerQRP = false    // only the leaves' tables are counted
		// every attacker dials from 127.0.0.1 at once: the admission caps
		// (admission_test.go) are not what this test is about
		c.MaxPending, c.MaxPendingPerAddr = 1024, 1024
	})
	s := b.s
	honest, code := qrpLeaf(t, s, honestTable("honest leaf song.ogg"))
	if code != 0 {
		t.Fatalf("the honest leaf got Bye %d", code)
	}
	honestBytes, limit := s.QRPMemory()
	if want := honestTableBytes(t, "honest leaf song.ogg"); honestBytes != want {
		t.Fatalf("the honest leaf's 2^%d table holds %d bytes, want %d", qrpBits, honestBytes, want)
	}
	var (
		wg                sync.WaitGroup
		mu                sync.Mutex
		accepted, refused int
		attackers         []*rawPeer
	)
	for range n {
		wg.Go(func() {
			p, code := qrpLeaf(t, s, qrpAttack())
			mu.Lock()
			defer mu.Unlock()
			switch code {
			case 0:
				accepted++
				attackers = append(attackers, p)
			case protocol.ByeInvalidQRPSequence:
				refused++
				p.conn.Close()
			default:
				t.Errorf("an attacker got Bye %d, want %d or nothing", code, protocol.ByeInvalidQRPSequence)
			}
		})
	}
	wg.Wait()
	inUse, _ := s.QRPMemory()
	perLeaf := (inUse - honestBytes) / int64(max(accepted, 1))
	t.Logf("%d attackers: %d held (%d KiB each), %d refused; QRP memory %d KiB of %d KiB",
		n, accepted, perLeaf>>10, refused, inUse>>10, limit>>10)
	if inUse > limit || inUse-honestBytes > int64(n)*256<<10 || perLeaf > 256<<10 {
		t.Errorf("QRP memory %d bytes for %d unfinished attackers (limit %d): over 256 KiB each or the limit", inUse, accepted, limit)
	}
	// each attacker held holds at most its compressed bytes (no table);
	// once they fill the limit, the others are refused
	if inUse-honestBytes > int64(accepted)*ultrapeer.DefaultMaxPatchBytes {
		t.Errorf("%d attackers held hold %d bytes, more than %d each", accepted, inUse-honestBytes, ultrapeer.DefaultMaxPatchBytes)
	}
	if full := int64(n)*(perLeaf+1) > limit-honestBytes; full && refused == 0 || !full && refused > 0 {
		t.Errorf("%d attackers refused with a limit of %d bytes and %d bytes per attacker", refused, limit, perLeaf)
	}
	if report != nil {
		report(s)
	}
	id := protocol.NewGUID()
	if got := b.p.OriginateQuery(id, protocol.NewQuery("honest song", 0), 2, []*Link{b.pLink}); got != 1 {
		t.Fatalf("query queued on %d links", got)
	}
	// dialRaw's deadline ran during the attack
	_ = honest.conn.SetDeadline(time.Now().Add(10 * time.Second))
	// on failure, say where the query stopped
	defer func() {
		if !t.Failed() {
			return
		}
		got := false
		for len(b.fromP) > 0 {
			if <-b.fromP == id {
				got = true
			}
		}
		ld, _ := s.QRPStats()
		t.Logf("the ultrapeer got the query: %v; leaf deliveries %d; %v; %d leaves", got, ld, s.Stats(), s.LinkCount(LinkLeaf))
	}()
	honest.awaitQuery(t, id)
	for _, p := range attackers {
		p.conn.Close()
	}
	await.Until(t, "only the honest leaf's table held", func() bool { u, _ := s.QRPMemory(); return u == honestBytes })
	honest.conn.Close()
	await.Until(t, "QRP memory back to 0", func() bool { u, _ := s.QRPMemory(); return u == 0 })
	s.qrp.mu.RLock()
	defer s.qrp.mu.RUnlock()
	if len(s.qrp.recv) != 0 || s.qrp.index.Len() != 0 {
		t.Errorf("after every leaf closed: %d receivers, %d leaves in the index", len(s.qrp.recv), s.qrp.index.Len())
	}
}

// Thirty attackers against a limit with room for twenty of them: each
// holds at most its compressed bytes (at most 128 KiB, no table), the rest
// are refused, the honest leaf's table still routes, and the memory comes
// back to 0.
func TestQRPUnfinishedUpdatesAreBounded(t *testing.T) {
	qrpAttackRun(t, 30, 1<<qrpBits/8+20*ultrapeer.DefaultMaxPatchBytes, nil)
}

// The measurement for 300 attackers (the default MaxLeaves) with the
// default QRP memory, with the process's resident memory (servent and
// attackers both) before, during and after, as it is and after GCs that
// give free memory back to the system:
// GNUTELLA_SOAK=1 go test -count=1 -run TestQRPAttackSoak -v ./servent/
func TestQRPAttackSoak(t *testing.T) {
	if os.Getenv("GNUTELLA_SOAK") == "" {
		t.Skip("set GNUTELLA_SOAK=1")
	}
	t.Logf("before: %s", memoryNow(t))
	qrpAttackRun(t, 300, 0, func(s *Servent) {
		t.Logf("300 attackers linked: %s", memoryNow(t))
	})
	t.Logf("after they closed: %s", memoryNow(t))

	// 300 more send 2 MB each: all are cut at 128 KiB with Bye 413
	b := newBed(t, func(c *Config) { c.UltrapeerQRP = false; c.MaxPending, c.MaxPendingPerAddr = 1024, 1024 })
	var wg sync.WaitGroup
	for range 300 {
		wg.Go(func() {
			p, code := qrpLeaf(t, b.s, qrpJunkAttack())
			p.conn.Close()
			if code != protocol.ByeInvalidQRPSequence {
				t.Errorf("an attacker sending 2 MB got Bye %d, want %d", code, protocol.ByeInvalidQRPSequence)
			}
		})
	}
	wg.Wait()
	await.Until(t, "QRP memory back to 0", func() bool { u, _ := b.s.QRPMemory(); return u == 0 })
	t.Logf("after 300 attackers sending 2 MB each were cut: %s", memoryNow(t))
}

// memoryNow is the resident memory as it is, then after two GCs (the
// second by debug.FreeOSMemory), with the live heap.
func memoryNow(t testing.TB) string {
	rss := vmRSS(t)
	runtime.GC()         // pooled buffers (sync.Pool) survive one GC...
	debug.FreeOSMemory() // ...not two
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return fmt.Sprintf("RSS %d KiB; after GCs: RSS %d KiB, heap in use %d KiB", rss, vmRSS(t), m.HeapInuse>>10)
}

// vmRSS reads the process's resident memory from /proc/self/status.
func vmRSS(t testing.TB) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// memLeaf is a leaf over the in-memory network: it sends msgs, then reads
// everything the servent sends without answering; it reports the Bye it
// got, or closes the channel when the connection ends without one.
func memLeaf(t *testing.T, mem *memnet.Network, ip string, s *Servent, msgs [][]byte) <-chan protocol.ByeCode {
	t.Helper()
	conn, err := mem.Host(netip.MustParseAddr(ip)).Dial(context.Background(), s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	req := protocol.HandshakeRequest{Version: "0.6"}
	for _, h := range leafHeaders(protocol.NewGUID()) {
		name, value, _ := strings.Cut(h, ":")
		req.Headers.Add(name, strings.TrimSpace(value))
	}
	write := func(b []byte) {
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	write(req.AppendTo(nil))
	br := bufio.NewReader(conn)
	if resp, err := protocol.ReadHandshakeResponse(br); err != nil || !resp.OK() {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	final := protocol.HandshakeResponse{Version: "0.6", Code: 200, Reason: "OK"}
	write(final.AppendTo(nil))
	for _, m := range msgs {
		write(m)
	}
	bye := make(chan protocol.ByeCode, 1)
	go readUntilBye(conn, br, bye)
	return bye
}

func readUntilBye(conn net.Conn, br *bufio.Reader, bye chan<- protocol.ByeCode) {
	defer conn.Close()
	r := protocol.NewReader(br, protocol.DefaultLimits())
	for {
		h, payload, err := r.ReadRaw()
		if err != nil {
			close(bye)
			return
		}
		if h.Type == protocol.TypeBye {
			b, _ := protocol.DecodeBye(payload)
			bye <- b.Code
			return
		}
	}
}

// An update left unfinished is abandoned after qrpUpdateTimeout: the leaf
// gets Bye 413 and what it held is freed, while a leaf whose table was
// complete stays linked. Minutes pass in virtual time (testing/synctest).
func TestUnfinishedQRPUpdateTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memnet.New()
		c := DefaultConfig()
		c.Transport = mem.Host(netip.MustParseAddr("127.1.0.1"))
		c.ListenAddr = "127.1.0.1:6346"
		c.WantLinks = 0
		c.AliveMaxMissed = 1000 // only the QRP limit may end the links
		c.IdleTimeout = time.Hour
		s, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		defer s.Stop()
		honestBye := memLeaf(t, mem, "127.1.9.1", s, honestTable("honest leaf song.ogg"))
		synctest.Wait()
		honestBytes, _ := s.QRPMemory()
		if want := honestTableBytes(t, "honest leaf song.ogg"); honestBytes != want {
			t.Fatalf("the honest leaf's table holds %d bytes, want %d", honestBytes, want)
		}
		start := time.Now()
		bye := memLeaf(t, mem, "127.1.9.2", s, qrpAttack())
		synctest.Wait()
		if inUse, _ := s.QRPMemory(); inUse <= honestBytes {
			t.Fatalf("the attacker's patch holds nothing (%d bytes in use)", inUse)
		}
		var code protocol.ByeCode
		ok := false
		select {
		case code, ok = <-bye:
		case <-time.After(2 * qrpUpdateTimeout):
			t.Fatalf("no Bye after %v of virtual time", 2*qrpUpdateTimeout)
		}
		took := time.Since(start)
		if !ok || code != protocol.ByeInvalidQRPSequence {
			t.Errorf("got Bye %v (ok %v), want %v", code, ok, protocol.ByeInvalidQRPSequence)
		}
		if took < qrpUpdateTimeout || took > qrpUpdateTimeout+2*connectTick {
			t.Errorf("cut after %v of virtual time, want %v", took, qrpUpdateTimeout)
		}
		synctest.Wait()
		if inUse, _ := s.QRPMemory(); inUse != honestBytes {
			t.Errorf("after the attacker's Bye: %d bytes in use, want the honest table's %d", inUse, honestBytes)
		}
		select {
		case code := <-honestBye:
			t.Errorf("the honest leaf got Bye %d", code)
		case <-time.After(10 * time.Minute):
		}
		if n := s.LinkCount(LinkLeaf); n != 1 {
			t.Errorf("%d leaves linked, want the honest one", n)
		}
	})
}

// The default QRP budget: 256 KiB for each ultrapeer link and each of the
// first 300 leaves, 16 KiB for each leaf above them, within an eighth of
// memory.
func TestDefaultQRPBudget(t *testing.T) {
	for _, c := range []struct {
		leaves, links int
		want          int64
	}{
		{300, 32, 332 << 18},              // 83 MiB, as before DefaultMaxLeaves
		{5000, 32, 332<<18 + 4700*16<<10}, // 156 MiB, not 1.3 GiB
		{10, 4, 14 << 18},                 // small
	} {
		cfg := testConfig()
		cfg.MaxLeaves, cfg.MaxLinks, cfg.QRPMemory = c.leaves, c.links, 0
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		want := c.want
		if m := memoryLimit() / leafMemoryShare; m > 0 {
			want = min(want, max(m, qrpMinMemory))
		}
		if _, limit := s.QRPMemory(); limit != want {
			t.Errorf("%d leaves, %d links: a QRP budget of %d bytes, want %d", c.leaves, c.links, limit, want)
		}
	}
}
