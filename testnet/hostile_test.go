package testnet

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
)

// Hostile peers for the soak test (soak_test.go): each attack is one small
// function that makes one bounded attempt against a servent's port and
// returns what the servent did. They speak only to 127.0.0.x addresses: the
// targets are a loopback testnet's servents, and every callback address a
// Push names is a 127.0.0.x one.

// attackResult is what one attempt saw.
type attackResult struct {
	closed bool          // the servent closed (or reset) the connection
	held   time.Duration // how long the servent kept it open
	note   string        // e.g. the status line it answered
}

// attack is one attempt against addr; it returns when done, when the
// servent closes, or when ctx ends.
type attack func(ctx context.Context, addr netip.AddrPort, rng *rand.Rand) (attackResult, error)

// attackStats counts the attempts of one attack.
type attackStats struct {
	name        string
	tries, errs atomic.Int64
	closed      atomic.Int64 // the servent closed the connection
	heldNanos   atomic.Int64 // total time held open
	mu          sync.Mutex
	notes       map[string]int
	inFlight    atomic.Int64
}

func (s *attackStats) record(r attackResult, err error) {
	s.tries.Add(1)
	if err != nil {
		s.errs.Add(1)
	}
	if r.closed {
		s.closed.Add(1)
	}
	s.heldNanos.Add(int64(r.held))
	if r.note != "" {
		s.mu.Lock()
		if s.notes == nil {
			s.notes = map[string]int{}
		}
		if len(s.notes) < 20 {
			s.notes[r.note]++
		} else if _, ok := s.notes[r.note]; ok {
			s.notes[r.note]++
		}
		s.mu.Unlock()
	}
}

func (s *attackStats) String() string {
	tries := s.tries.Load()
	held := time.Duration(0)
	if tries > 0 {
		held = time.Duration(s.heldNanos.Load() / tries).Round(time.Millisecond)
	}
	s.mu.Lock()
	var notes []string
	for k, v := range s.notes {
		notes = append(notes, fmt.Sprintf("%q×%d", k, v))
	}
	s.mu.Unlock()
	return fmt.Sprintf("%-18s tries=%-6d errs=%-5d closed-by-servent=%-6d mean-held=%-8v %s",
		s.name, tries, s.errs.Load(), s.closed.Load(), held, strings.Join(notes, " "))
}

const dialTimeout = 3 * time.Second

func dialLoopback(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	if !addr.Addr().Is4() || !addr.Addr().IsLoopback() {
		return nil, fmt.Errorf("hostile: refusing non-loopback target %s", addr)
	}
	d := net.Dialer{Timeout: dialTimeout}
	return d.DialContext(ctx, "tcp", addr.String())
}

// closeOnDone closes conn when ctx ends; call the result to stop watching.
func closeOnDone(ctx context.Context, conn net.Conn) func() bool {
	return context.AfterFunc(ctx, func() { _ = conn.Close() })
}

// waitClosed reads (and discards) until the servent closes the connection
// or max passes; it returns whether the servent closed it and the first
// line it sent.
func waitClosed(conn net.Conn, max time.Duration) (closed bool, first string) {
	_ = conn.SetReadDeadline(time.Now().Add(max))
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	first = strings.TrimSpace(line)
	if len(first) > 40 {
		first = first[:40]
	}
	if err == nil {
		_, err = io.Copy(io.Discard, br)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, first
	}
	return true, first
}

// --- before any handshake -------------------------------------------------

// garbageHandshake sends one of several malformed first blocks.
func garbageHandshake(ctx context.Context, addr netip.AddrPort, rng *rand.Rand) (attackResult, error) {
	conn, err := dialLoopback(ctx, addr)
	if err != nil {
		return attackResult{}, err
	}
	defer conn.Close()
	defer closeOnDone(ctx, conn)()
	var b []byte
	switch rng.IntN(5) {
	case 0: // binary noise
		b = make([]byte, 64+rng.IntN(512))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
	case 1: // a request with far too many headers
		b = []byte("GNUTELLA CONNECT/0.6\r\n")
		for i := 0; i < 500; i++ {
			b = append(b, fmt.Sprintf("X-Junk-%d: %s\r\n", i, strings.Repeat("j", 40))...)
		}
		b = append(b, "\r\n"...)
	case 2: // a header line far too long
		b = []byte("GNUTELLA CONNECT/0.6\r\nUser-Agent: " + strings.Repeat("A", 16<<10) + "\r\n\r\n")
	case 3: // a bad version and broken header lines
		b = []byte("GNUTELLA CONNECT/9x.y\r\n: no name\r\nno colon\r\n\r\n")
	default: // a 0.6 request that answers our 200 with garbage
		req := protocol.HandshakeRequest{Version: "0.6"}
		req.Headers.Add("X-Ultrapeer", "True")
		b = append(req.AppendTo(nil), "GNUTELLA/0.6 2xx Whatever\r\n\x00\x01\x02\r\n\r\n"...)
	}
	start := time.Now()
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = conn.Write(b)
	closed, first := waitClosed(conn, 15*time.Second)
	return attackResult{closed: closed, held: time.Since(start), note: statusOf(first)}, nil
}

func statusOf(line string) string {
	f := strings.Fields(line)
	if len(f) >= 2 && (strings.HasPrefix(f[0], "GNUTELLA/") || strings.HasPrefix(f[0], "HTTP/")) {
		return f[1]
	}
	if line == "" {
		return ""
	}
	return "other"
}

// idleConnection connects and sends nothing for up to hold.
func idleConnection(hold time.Duration) attack {
	return func(ctx context.Context, addr netip.AddrPort, _ *rand.Rand) (attackResult, error) {
		conn, err := dialLoopback(ctx, addr)
		if err != nil {
			return attackResult{}, err
		}
		defer conn.Close()
		defer closeOnDone(ctx, conn)()
		start := time.Now()
		closed, _ := waitClosed(conn, hold)
		return attackResult{closed: closed, held: time.Since(start)}, nil
	}
}

// dribble writes msg one byte every gap until the servent closes, the
// message ends or max passes; then it waits for the servent's answer.
func dribble(ctx context.Context, addr netip.AddrPort, msg string, gap, max time.Duration) (attackResult, error) {
	conn, err := dialLoopback(ctx, addr)
	if err != nil {
		return attackResult{}, err
	}
	defer conn.Close()
	defer closeOnDone(ctx, conn)()
	start := time.Now()
	closedc := make(chan string, 1)
	go func() {
		// the reader learns first when the servent gives up
		c, first := waitClosed(conn, max+5*time.Second)
		if !c {
			first = "\x00timeout"
		}
		closedc <- first
	}()
	tick := time.NewTicker(gap)
	defer tick.Stop()
	for i := 0; i < len(msg) && time.Since(start) < max; i++ {
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte{msg[i]}); err != nil {
			break
		}
		select {
		case first := <-closedc:
			return attackResult{closed: true, held: time.Since(start), note: statusOf(first)}, nil
		case <-ctx.Done():
			_ = conn.Close()
			<-closedc
			return attackResult{held: time.Since(start)}, ctx.Err()
		case <-tick.C:
		}
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	first := <-closedc
	if first == "\x00timeout" {
		return attackResult{held: time.Since(start)}, nil
	}
	return attackResult{closed: true, held: time.Since(start), note: statusOf(first)}, nil
}

// slowHandshake dribbles a valid 0.6 request.
func slowHandshake(gap, max time.Duration) attack {
	req := protocol.HandshakeRequest{Version: "0.6"}
	req.Headers.Add("User-Agent", "hostile/slow")
	req.Headers.Add("X-Ultrapeer", "True")
	msg := string(req.AppendTo(nil))
	return func(ctx context.Context, addr netip.AddrPort, _ *rand.Rand) (attackResult, error) {
		return dribble(ctx, addr, msg, gap, max)
	}
}

// slowHTTP dribbles an HTTP GET.
func slowHTTP(gap, max time.Duration) attack {
	msg := "GET /uri-res/N2R?urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: hostile/drip\r\n\r\n"
	return func(ctx context.Context, addr netip.AddrPort, _ *rand.Rand) (attackResult, error) {
		return dribble(ctx, addr, msg, gap, max)
	}
}

// connectClose opens and at once closes burst connections.
func connectClose(burst int) attack {
	return func(ctx context.Context, addr netip.AddrPort, _ *rand.Rand) (attackResult, error) {
		var firstErr error
		for i := 0; i < burst && ctx.Err() == nil; i++ {
			conn, err := dialLoopback(ctx, addr)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			if tc, ok := conn.(*net.TCPConn); ok && i%2 == 1 {
				_ = tc.SetLinger(0) // a reset instead of a FIN, half the time
			}
			_ = conn.Close()
		}
		return attackResult{}, firstErr
	}
}

// longHTTPLine sends a GET whose request line is far too long.
func longHTTPLine(ctx context.Context, addr netip.AddrPort, rng *rand.Rand) (attackResult, error) {
	conn, err := dialLoopback(ctx, addr)
	if err != nil {
		return attackResult{}, err
	}
	defer conn.Close()
	defer closeOnDone(ctx, conn)()
	start := time.Now()
	n := 4<<10 + rng.IntN(60<<10)
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = conn.Write([]byte("GET /" + strings.Repeat("a", n) + " HTTP/1.1\r\nHost: x\r\n\r\n"))
	closed, first := waitClosed(conn, 15*time.Second)
	return attackResult{closed: closed, held: time.Since(start), note: statusOf(first)}, nil
}

// --- after a valid handshake ------------------------------------------------

// hostileLink is a Gnutella link a hostile peer has handshaken; what the
// servent sends on it is read and discarded (so that its send queue never
// fills) until Close.
type hostileLink struct {
	conn     net.Conn
	drained  chan struct{}
	start    time.Time
	closedBy atomic.Bool // the servent ended the stream
}

// handshake runs the client side of a 0.6 handshake as an ultrapeer (up) or
// a leaf, without deflate.
func handshake(ctx context.Context, addr netip.AddrPort, up bool) (*hostileLink, error) {
	conn, err := dialLoopback(ctx, addr)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := protocol.HandshakeRequest{Version: "0.6"}
	req.Headers.Add("User-Agent", "hostile/0.1")
	req.Headers.Add("GUID", protocol.NewGUID().String())
	if up {
		req.Headers.Add("X-Ultrapeer", "True")
	} else {
		req.Headers.Add("X-Ultrapeer", "False")
	}
	req.Headers.Add("X-Query-Routing", "0.2")
	req.Headers.Add("GGEP", "0.5")
	req.Headers.Add("Vendor-Message", "0.2")
	req.Headers.Add("Pong-Caching", "0.1")
	if _, err := conn.Write(req.AppendTo(nil)); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := protocol.ReadHandshakeResponse(br)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if !resp.OK() {
		conn.Close()
		return nil, fmt.Errorf("refused: %d %s", resp.Code, resp.Reason)
	}
	final := protocol.HandshakeResponse{Version: "0.6", Code: 200, Reason: "OK"}
	if _, err := conn.Write(final.AppendTo(nil)); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	l := &hostileLink{conn: conn, drained: make(chan struct{}), start: time.Now()}
	go func() {
		defer close(l.drained)
		_, err := io.Copy(io.Discard, br)
		if err == nil || !errors.Is(err, net.ErrClosed) {
			l.closedBy.Store(true)
		}
	}()
	return l, nil
}

// send writes descriptors; an error means the servent has gone.
func (l *hostileLink) send(b []byte) error {
	_ = l.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := l.conn.Write(b)
	return err
}

// waitClosed waits up to max for the servent to end the stream.
func (l *hostileLink) waitClosed(ctx context.Context, max time.Duration) bool {
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-l.drained:
	case <-t.C:
	case <-ctx.Done():
	}
	return l.closedBy.Load()
}

func (l *hostileLink) Close() attackResult {
	_ = l.conn.Close()
	<-l.drained
	return attackResult{closed: l.closedBy.Load(), held: time.Since(l.start)}
}

func descriptor(h protocol.Header, p protocol.Payload) []byte {
	b, err := (&protocol.Message{Header: h, Payload: p}).AppendTo(nil)
	if err != nil {
		panic(err)
	}
	return b
}

func rawDescriptor(id protocol.GUID, t protocol.Type, ttl uint8, payload []byte) []byte {
	h := protocol.Header{ID: id, Type: t, TTL: ttl, Length: uint32(len(payload))}
	return append(h.AppendTo(nil), payload...)
}

// badDescriptors handshakes as an ultrapeer and sends malformed
// descriptors, ending with one whose length is past every limit; the
// servent should drop the link.
func badDescriptors(ctx context.Context, addr netip.AddrPort, rng *rand.Rand) (attackResult, error) {
	l, err := handshake(ctx, addr, true)
	if err != nil {
		return attackResult{}, err
	}
	var b []byte
	for i := 0; i < 20; i++ {
		switch rng.IntN(4) {
		case 0: // truncated query
			b = append(b, rawDescriptor(protocol.NewGUID(), protocol.TypeQuery, 3, []byte{0})...)
		case 1: // query without NUL
			b = append(b, rawDescriptor(protocol.NewGUID(), protocol.TypeQuery, 3, []byte("\x00\x00no nul here"))...)
		case 2: // unknown type
			b = append(b, rawDescriptor(protocol.NewGUID(), 0x55, 7, bytes.Repeat([]byte{0xAA}, 200))...)
		default: // push too short, absurd TTL
			b = append(b, rawDescriptor(protocol.NewGUID(), protocol.TypePush, 255, []byte{1, 2, 3})...)
		}
	}
	// a query of 1 MiB announced: over the 1 KiB limit, the link must go
	h := protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypeQuery, TTL: 3, Length: 1 << 20}
	b = append(b, h.AppendTo(nil)...)
	b = append(b, make([]byte, 4096)...)
	_ = l.send(b)
	l.waitClosed(ctx, 10*time.Second)
	r := l.Close()
	return r, nil
}

// dupQueryFlood sends the same query (one GUID) n times, then n distinct
// queries with TTL 7, on one ultrapeer link.
func dupQueryFlood(n int) attack {
	return func(ctx context.Context, addr netip.AddrPort, rng *rand.Rand) (attackResult, error) {
		l, err := handshake(ctx, addr, true)
		if err != nil {
			return attackResult{}, err
		}
		q := protocol.NewQuery(fmt.Sprintf("hostile flood %d", rng.IntN(1000)), protocol.QueryFlagMark|protocol.QueryFlagGGEPH)
		id := protocol.NewGUID()
		var b []byte
		for i := 0; i < n; i++ {
			b = append(b, descriptor(protocol.Header{ID: id, TTL: 7}, q)...)
		}
		for i := 0; i < n; i++ {
			b = append(b, descriptor(protocol.Header{ID: protocol.NewGUID(), TTL: 7}, q)...)
		}
		err = l.send(b)
		l.waitClosed(ctx, 2*time.Second)
		r := l.Close()
		return r, err
	}
}

// ggepBomb returns a GGEP block of one deflated extension that inflates to
// size zero bytes.
func ggepBomb(id string, size int) protocol.GGEP {
	return protocol.GGEP{{ID: id, Data: make([]byte, size), Deflate: true}}
}

// bombQuery is a Query whose extension area holds as many GGEP blocks as
// fit in the 256 bytes a servent routes (a larger query is dropped unread),
// each with one deflated extension inflating to just under 64 KiB: two of
// them, as in the attack that cost 68 times a plain query before the
// per-message inflate budget.
func bombQuery(search string) []byte {
	q := protocol.NewQuery(search, protocol.QueryFlagMark|protocol.QueryFlagGGEPH)
	for _, id := range []string{"Z1", "Z2", "Z3", "Z4", "Z5", "Z6", "Z7", "Z8", "Z9", "ZA", "ZB", "ZC"} {
		q.Extensions = append(q.Extensions, protocol.GGEPItem(ggepBomb(id, protocol.MaxGGEPInflated-64)))
		b, err := q.AppendTo(nil)
		if err != nil || len(b) > 256 {
			q.Extensions = q.Extensions[:len(q.Extensions)-1]
			break
		}
	}
	b, err := q.AppendTo(nil)
	if err != nil {
		panic(err)
	}
	return b
}

// ggepBombs sends n queries carrying deflate bombs on an ultrapeer link.
func ggepBombs(n int) attack {
	return func(ctx context.Context, addr netip.AddrPort, rng *rand.Rand) (attackResult, error) {
		l, err := handshake(ctx, addr, true)
		if err != nil {
			return attackResult{}, err
		}
		payload := bombQuery(fmt.Sprintf("bomb %d", rng.IntN(1000)))
		var b []byte
		for i := 0; i < n; i++ {
			b = append(b, rawDescriptor(protocol.NewGUID(), protocol.TypeQuery, 4, payload)...)
		}
		err = l.send(b)
		l.waitClosed(ctx, 2*time.Second)
		r := l.Close()
		return r, err
	}
}

// qrpPin connects as a leaf, sends a RESET for a 2^21-slot table and the
// first patches of a sequence it never finishes, then keeps the link alive
// with pings for hold.
func qrpPin(hold time.Duration) attack {
	// a 2^21-entry 4-bit table is 1 MiB of nibbles; its zlib stream is
	// tiny, so send it raw (compressor none) in chunks to make the servent
	// hold the partial table
	return func(ctx context.Context, addr netip.AddrPort, rng *rand.Rand) (attackResult, error) {
		l, err := handshake(ctx, addr, false)
		if err != nil {
			return attackResult{}, err
		}
		const length = 1 << 21
		msgs := [][]byte{descriptor(protocol.Header{ID: protocol.NewGUID(), TTL: 1}, &protocol.RouteTableReset{TableLength: length, Infinity: 7})}
		// zlib sequence: 255 patches announced, 3 sent
		var zb bytes.Buffer
		zw := zlib.NewWriter(&zb)
		chunk := make([]byte, 64<<10)
		for i := range chunk {
			chunk[i] = byte(rng.UintN(256)) // incompressible: the servent must buffer it
		}
		_, _ = zw.Write(chunk)
		_ = zw.Flush()
		data := zb.Bytes()
		for seq := 1; seq <= 3; seq++ {
			part := data[(seq-1)*len(data)/3 : seq*len(data)/3]
			if len(part) > 30000 {
				part = part[:30000]
			}
			msgs = append(msgs, descriptor(protocol.Header{ID: protocol.NewGUID(), TTL: 1},
				&protocol.RouteTablePatch{SeqNo: uint8(seq), SeqSize: 255, Compressor: protocol.QRPCompressorZlib, EntryBits: 4, Data: part}))
		}
		for _, m := range msgs {
			if err := l.send(m); err != nil {
				return l.Close(), err
			}
		}
		// keep it alive: a ping every few seconds until hold passes
		tick := time.NewTicker(3 * time.Second)
		defer tick.Stop()
		deadline := time.NewTimer(hold)
		defer deadline.Stop()
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-deadline.C:
				break loop
			case <-l.drained:
				break loop
			case <-tick.C:
				if l.send(descriptor(protocol.Header{ID: protocol.NewGUID(), TTL: 1}, &protocol.Ping{})) != nil {
					break loop
				}
			}
		}
		return l.Close(), nil
	}
}

// pushFlood sends n Pushes on an ultrapeer link naming target (a servent
// ID on the network) with callback addresses that are not ours: the sink
// (a 127.0.0.x listener of the test) or a closed 127.0.0.x port.
func pushFlood(n int, targets func(*rand.Rand) protocol.GUID, callbacks func(*rand.Rand) netip.AddrPort) attack {
	return func(ctx context.Context, addr netip.AddrPort, rng *rand.Rand) (attackResult, error) {
		l, err := handshake(ctx, addr, true)
		if err != nil {
			return attackResult{}, err
		}
		var b []byte
		for i := 0; i < n; i++ {
			cb := callbacks(rng)
			if !cb.Addr().Is4() || cb.Addr().As4()[0] != 127 {
				panic("push callback outside 127.0.0.0/8: " + cb.String())
			}
			p := &protocol.Push{ServentID: targets(rng), Index: uint32(1 + rng.IntN(3)), IP: cb.Addr().As4(), Port: cb.Port()}
			b = append(b, descriptor(protocol.Header{ID: protocol.NewGUID(), TTL: 3}, p)...)
		}
		err = l.send(b)
		l.waitClosed(ctx, 2*time.Second)
		return l.Close(), err
	}
}

// sink is a 127.0.0.x listener that counts the connections made to it (the
// callbacks hostile Pushes provoke) and closes them.
type sink struct {
	ln    net.Listener
	conns atomic.Int64
	givs  atomic.Int64
	wg    sync.WaitGroup
}

func newSink(ip string) (*sink, error) {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return nil, err
	}
	s := &sink{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				if strings.HasPrefix(line, "GIV ") {
					s.givs.Add(1)
				}
			}()
		}
	}()
	return s, nil
}

func (s *sink) addr() netip.AddrPort { return s.ln.Addr().(*net.TCPAddr).AddrPort() }

func (s *sink) Close() {
	_ = s.ln.Close()
	s.wg.Wait()
}

// longWalker sends, on an ultrapeer link, one random-walk query (GGEP
// GNUT.RW) that claims left steps still to go and no checking: every
// ultrapeer passes it on, one hop at a time, until the budget runs out — one
// message in, up to left messages across the network.
func longWalker(left uint16) attack {
	return func(ctx context.Context, addr netip.AddrPort, rng *rand.Rand) (attackResult, error) {
		l, err := handshake(ctx, addr, true)
		if err != nil {
			return attackResult{}, err
		}
		q := protocol.NewQuery(fmt.Sprintf("hostile walker %d", rng.IntN(1000)), protocol.QueryFlagMark|protocol.QueryFlagGGEPH)
		w := routing.Walker{Num: 0, Left: left, Steps: 1}
		err = l.send(descriptor(protocol.Header{ID: protocol.NewGUID(), TTL: 1}, routing.WithWalker(q, w)))
		l.waitClosed(ctx, 2*time.Second)
		return l.Close(), err
	}
}
