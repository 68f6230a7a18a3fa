// Package memnet is an in-memory network for tests and experiments: hosts with
// 127.x.y.z addresses, listeners and TCP-like connections, thousands of them in
// one process, like hashicorp/memberlist's MockNetwork. Any package may use
// it; it imports nothing of this module. A *Host has the method set of
// servent.Transport (Listen and Dial), so a servent runs on it unchanged.
package memnet

import (
	"context"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// This file is the in-memory network: hosts with 127.x.y.z addresses, listeners, and connections made of two
// buffered byte pipes. It starts no goroutine of its own: blocked calls wait on a sync.Cond and deadlines are
// time.AfterFunc timers, so that a testing/synctest bubble's virtual clock drives them.

// Defaults of the Network knobs.
const (
	DefaultWindow         = 64 << 10         // bytes buffered per direction, like a socket buffer
	DefaultBacklog        = 4096             // connections a listener holds before Accept (somaxconn)
	DefaultConnectTimeout = 75 * time.Second // a dial into a firewall gives up after this at the latest
)

// Ephemeral ports, as in Linux's ip_local_port_range: dials take their local port from here, and so do listeners
// on port 0.
const (
	ephemeralLow  = 32768
	ephemeralHigh = 60999
)

// Network is an in-memory network of hosts, each known by its IP address (use 127.x.y.z addresses, which never
// leave the process, for instance from NextIP). Host gives a host, which a servent uses as its Transport. Connections are full-duplex byte
// streams with the net.Conn semantics of a TCP socket: each direction buffers up to Window bytes without a reader,
// and an idle connection holds no buffer at all.
//
// Set the exported fields before the network is used; after that they must not change.
//
// With testing/synctest, make the network and use it inside one bubble: blocked calls wait on a sync.Cond and
// deadlines run on time.AfterFunc, so the bubble's virtual clock drives them and a goroutine blocked in Read,
// Write, Accept or a dial into a firewall is durably blocked; but the runtime forbids waking a bubbled goroutine
// from outside its bubble.
type Network struct {
	// Window is how many bytes each direction of a connection buffers before Write blocks. Zero means
	// DefaultWindow.
	Window int
	// Backlog is how many dialled connections a listener holds that Accept has not taken yet; a dial beyond that is
	// refused. Zero means DefaultBacklog.
	Backlog int
	// ConnectTimeout bounds a dial into a firewall (SetBlockInbound, Partition) like the kernel's connect timeout:
	// the dial fails with its context's error if that ends first, else with ETIMEDOUT after ConnectTimeout. Zero
	// means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// RefuseBlocked makes a firewall answer with a reset: dials into it fail at once with ECONNREFUSED instead of
	// waiting for their context (or ConnectTimeout) as when packets are dropped.
	RefuseBlocked bool

	mu     sync.Mutex
	hosts  map[netip.Addr]*Host
	cuts   map[[2]netip.Addr]struct{} // partitioned pairs, smaller address first
	nextIP uint32                     // offset from 127.1.0.0 of the last address NextIP gave
}

// New returns an empty network with the default settings.
func New() *Network {
	return &Network{
		hosts: make(map[netip.Addr]*Host),
		cuts:  make(map[[2]netip.Addr]struct{}),
	}
}

// Host returns the host with address ip, creating it on first use. A host is a servent.Transport: its dials show ip as
// their LocalAddr (with an ephemeral port), and its listeners listen on ip. An IPv4-mapped IPv6 address is the same
// host as its IPv4 address.
func (n *Network) Host(ip netip.Addr) *Host {
	ip = ip.Unmap()
	if !ip.IsValid() {
		panic("memnet: Network.Host of an invalid address")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hostLocked(ip)
}

func (n *Network) hostLocked(ip netip.Addr) *Host {
	h := n.hosts[ip]
	if h == nil {
		h = &Host{
			net:      n,
			ip:       ip,
			netIP:    net.IP(ip.AsSlice()),
			nextPort: ephemeralLow,
		}
		n.hosts[ip] = h
	}
	return h
}

// NextIP returns a fresh address for a test host: 127.1.0.1, 127.1.0.2, and so on, skipping addresses ending in
// .0 and .255. It does not create the host (Host does).
func (n *Network) NextIP() netip.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	for {
		n.nextIP++
		v := 127<<24 | 1<<16 + n.nextIP
		if v>>24 != 127 {
			panic("memnet: Network.NextIP ran out of 127.0.0.0/8")
		}
		if last := v & 0xff; last == 0 || last == 255 {
			continue
		}
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
}

// SetBlockInbound firewalls the host ip: dials to it from other hosts fail, by timing out with their context (or
// after ConnectTimeout), or at once with ECONNREFUSED when RefuseBlocked is set. Its own dials, its connections already
// established and its dials to itself keep working. block false lifts the firewall.
func (n *Network) SetBlockInbound(ip netip.Addr, block bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hostLocked(ip.Unmap()).blockInbound = block
}

// Partition cuts (cut true) or heals (cut false) the network between hosts a and b, both ways. While cut, dials
// between them fail as into a firewall (see SetBlockInbound), and their established connections stall: writes
// are buffered up to the window and then block, reads see neither data nor EOF, as when packets are lost. Deadlines
// and local Close work as usual. Healing delivers what was buffered, including an EOF.
func (n *Network) Partition(a, b netip.Addr, cut bool) {
	a, b = a.Unmap(), b.Unmap()
	if a == b {
		return
	}
	key := pairKey(a, b)
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, was := n.cuts[key]; was == cut {
		return
	}
	if cut {
		n.cuts[key] = struct{}{}
	} else {
		delete(n.cuts, key)
	}
	ha, hb := n.hosts[a], n.hosts[b]
	if ha == nil || hb == nil {
		return
	}
	// Both lists: a connection one of whose ends is already closed is on one list only.
	for _, h := range [2]*Host{ha, hb} {
		for c := h.conns; c != nil; c = c.next {
			if other := c.peer.host; other != h && (other == ha || other == hb) {
				c.rx.setStalled(cut)
				c.tx.setStalled(cut)
			}
		}
	}
}

func pairKey(a, b netip.Addr) [2]netip.Addr {
	if b.Less(a) {
		a, b = b, a
	}
	return [2]netip.Addr{a, b}
}

// Stats is a snapshot of a Network, for tests and experiments.
type Stats struct {
	Hosts     int // hosts ever named
	Listeners int // open listeners
	Conns     int // open connection ends (a connection between two open ends counts twice)
	Buffered  int // bytes written and not yet read, over all connections
	BufferCap int // bytes of buffer memory the connections hold (grown on demand, released when drained)
}

// Stats counts the network's hosts, listeners, open connection ends and buffered bytes.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := Stats{Hosts: len(n.hosts)}
	for _, h := range n.hosts {
		for _, l := range h.ports {
			if l != nil {
				s.Listeners++
			}
		}
		s.Conns += h.nconns
		for c := h.conns; c != nil; c = c.next {
			// Every pipe is the rx of exactly one end; the rx of a closed end holds no buffer.
			c.rx.mu.Lock()
			s.Buffered += c.rx.n
			s.BufferCap += len(c.rx.buf)
			c.rx.mu.Unlock()
		}
	}
	return s
}

// Host is one host of a Network, and the servent.Transport of the servent that runs on it.
type Host struct {
	net   *Network
	ip    netip.Addr
	netIP net.IP // ip as a net.IP, shared by every *net.TCPAddr of this host

	// Guarded by net.mu.
	blockInbound bool
	ports        map[uint16]*Listener // ports in use: a listener, or nil for a dial's local port
	nextPort     uint16               // where the search for a free ephemeral port starts
	conns        *Conn                // open connection ends whose local side is this host (a list)
	nconns       int
}

// IP returns the host's address.
func (h *Host) IP() netip.Addr { return h.ip }

// allocPortLocked takes a free ephemeral port; false if there is none. Caller holds net.mu.
func (h *Host) allocPortLocked() (uint16, bool) {
	if h.ports == nil {
		h.ports = make(map[uint16]*Listener)
	}
	for range ephemeralHigh - ephemeralLow + 1 {
		p := h.nextPort
		h.nextPort++
		if h.nextPort > ephemeralHigh {
			h.nextPort = ephemeralLow
		}
		if _, used := h.ports[p]; !used {
			return p, true
		}
	}
	return 0, false
}

// Listen listens on addr, which is "ip:port" with the host's own address, or an unspecified or empty ip (":6346",
// "0.0.0.0:0"), which also means the host's address. Port 0 picks a free ephemeral port.
func (h *Host) Listen(addr string) (net.Listener, error) {
	hostPart, portPart, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Err: err}
	}
	port, err := strconv.ParseUint(portPart, 10, 16)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Err: &net.AddrError{Err: "invalid port", Addr: addr}}
	}
	if hostPart != "" {
		ip, err := netip.ParseAddr(hostPart)
		if err != nil {
			return nil, &net.OpError{Op: "listen", Net: "tcp", Err: &net.AddrError{Err: "not an IP address", Addr: addr}}
		}
		if ip = ip.Unmap(); !ip.IsUnspecified() && ip != h.ip {
			return nil, &net.OpError{Op: "listen", Net: "tcp",
				Addr: &net.TCPAddr{IP: net.IP(ip.AsSlice()), Port: int(port)},
				Err:  os.NewSyscallError("bind", syscall.EADDRNOTAVAIL)}
		}
	}
	n := h.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if h.ports == nil {
		h.ports = make(map[uint16]*Listener)
	}
	p := uint16(port)
	if p == 0 {
		var ok bool
		if p, ok = h.allocPortLocked(); !ok {
			return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: &net.TCPAddr{IP: h.netIP},
				Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
		}
	} else if _, used := h.ports[p]; used {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: &net.TCPAddr{IP: h.netIP, Port: int(p)},
			Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	}
	l := &Listener{host: h, port: p, addr: &net.TCPAddr{IP: h.netIP, Port: int(p)}}
	l.cond.L = &l.mu
	h.ports[p] = l
	return l, nil
}

// Dial connects to addr ("ip:port"). Like TCP on loopback, it fails at once with ECONNREFUSED when nothing
// listens there (or the listener's backlog is full). A dial into a firewall (SetBlockInbound, Partition) waits for
// ctx to end or ConnectTimeout, whichever is first, unless RefuseBlocked. The connection is established when Dial returns, before the
// listener's Accept takes it, as with TCP.
func (h *Host) Dial(ctx context.Context, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: "not an ip:port address", Addr: addr}}
	}
	ip := ap.Addr().Unmap()
	raddr := &net.TCPAddr{IP: net.IP(ip.AsSlice()), Port: int(ap.Port())}
	if err := ctx.Err(); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: raddr, Err: err}
	}
	n := h.net
	n.mu.Lock()
	dst := n.hosts[ip]
	if dst != h && dst != nil {
		_, cut := n.cuts[pairKey(h.ip, ip)]
		if cut || dst.blockInbound {
			refuse, wait := n.RefuseBlocked, n.ConnectTimeout
			n.mu.Unlock()
			if refuse {
				return nil, refused(raddr)
			}
			if wait <= 0 {
				wait = DefaultConnectTimeout
			}
			return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: raddr, Err: dropped(ctx, wait)}
		}
	}
	var l *Listener
	if dst != nil {
		l = dst.ports[ap.Port()]
	}
	if l == nil {
		n.mu.Unlock()
		return nil, refused(raddr)
	}
	backlog := n.Backlog
	if backlog <= 0 {
		backlog = DefaultBacklog
	}
	l.mu.Lock()
	if l.closed || len(l.queue) >= backlog {
		l.mu.Unlock()
		n.mu.Unlock()
		return nil, refused(raddr)
	}
	port, ok := h.allocPortLocked()
	if !ok {
		l.mu.Unlock()
		n.mu.Unlock()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: raddr, Err: os.NewSyscallError("connect", syscall.EADDRNOTAVAIL)}
	}
	h.ports[port] = nil
	window := n.Window
	if window <= 0 {
		window = DefaultWindow
	}
	client, server := newConnPair(h, dst, &net.TCPAddr{IP: h.netIP, Port: int(port)}, l.addr, window)
	client.localPort = port
	h.linkLocked(client)
	dst.linkLocked(server)
	l.queue = append(l.queue, server)
	l.cond.Signal()
	l.mu.Unlock()
	n.mu.Unlock()
	return client, nil
}

// dropped waits as a dial whose SYNs are dropped would: until ctx ends or wait has passed.
func dropped(ctx context.Context, wait time.Duration) error {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	if ctx.Done() == nil {
		<-timer.C
		return os.NewSyscallError("connect", syscall.ETIMEDOUT)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return os.NewSyscallError("connect", syscall.ETIMEDOUT)
	}
}

func refused(raddr *net.TCPAddr) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: raddr, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

// linkLocked adds c to the host's list of open ends. Caller holds net.mu.
func (h *Host) linkLocked(c *Conn) {
	c.next = h.conns
	if h.conns != nil {
		h.conns.prev = c
	}
	h.conns = c
	h.nconns++
}

// unlink removes a closed end from its host's list and frees its local port.
func (h *Host) unlink(c *Conn) {
	n := h.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.prev != nil {
		c.prev.next = c.next
	} else if h.conns == c {
		h.conns = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	}
	c.prev, c.next = nil, nil
	h.nconns--
	if c.localPort != 0 {
		delete(h.ports, c.localPort)
	}
}

// Listener is a listener on a Host. Accept blocks until a dial arrives or the listener is closed.
type Listener struct {
	host *Host
	port uint16
	addr *net.TCPAddr // shared as LocalAddr by every accepted connection

	mu     sync.Mutex
	cond   sync.Cond
	queue  []*Conn // established, not yet accepted
	closed bool
}

var _ net.Listener = (*Listener)(nil)

// Accept waits for and returns the next connection. After Close it returns an error wrapping net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.queue) == 0 && !l.closed {
		l.cond.Wait()
	}
	if l.closed {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: net.ErrClosed}
	}
	c := l.queue[0]
	l.queue[0] = nil
	l.queue = l.queue[1:]
	if len(l.queue) == 0 {
		l.queue = nil // let the backing array go
	}
	return c, nil
}

// Close stops listening and frees the port. Blocked Accepts return; connections dialled and not yet accepted are
// closed, so their dialers read io.EOF. A second Close returns an error wrapping net.ErrClosed.
func (l *Listener) Close() error {
	n := l.host.net
	n.mu.Lock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		n.mu.Unlock()
		return &net.OpError{Op: "close", Net: "tcp", Addr: l.addr, Err: net.ErrClosed}
	}
	l.closed = true
	delete(l.host.ports, l.port)
	pending := l.queue
	l.queue = nil
	l.cond.Broadcast()
	l.mu.Unlock()
	n.mu.Unlock()
	for _, c := range pending {
		c.Close()
	}
	return nil
}

// Addr returns the listener's address, a *net.TCPAddr.
func (l *Listener) Addr() net.Addr { return l.addr }

// Conn is one end of a connection on a Network. It implements net.Conn, plus CloseWrite like *net.TCPConn.
type Conn struct {
	rx, tx       *pipe // rx carries the peer's bytes to us, tx ours to the peer
	host         *Host
	peer         *Conn
	laddr, raddr *net.TCPAddr
	localPort    uint16 // the ephemeral port to free on Close; 0 for an accepted end
	closed       atomic.Bool

	prev, next *Conn // the host's list of open ends, guarded by host.net.mu
}

var _ net.Conn = (*Conn)(nil)

// connPair is one connection: both ends and both directions in a single allocation.
type connPair struct {
	a, b   Conn
	ab, ba pipe
}

func newConnPair(ha, hb *Host, aaddr, baddr *net.TCPAddr, window int) (a, b *Conn) {
	p := new(connPair)
	p.ab.init(window)
	p.ba.init(window)
	p.a = Conn{rx: &p.ba, tx: &p.ab, host: ha, peer: &p.b, laddr: aaddr, raddr: baddr}
	p.b = Conn{rx: &p.ab, tx: &p.ba, host: hb, peer: &p.a, laddr: baddr, raddr: aaddr}
	return &p.a, &p.b
}

// LocalAddr returns the local address, a *net.TCPAddr.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns the peer's address, a *net.TCPAddr.
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: err}
}

// Read reads what the peer wrote, waiting for at least one byte. It returns io.EOF once the peer has closed or
// half-closed and everything it sent has been read.
func (c *Conn) Read(b []byte) (int, error) {
	p := c.rx
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.readerClosed {
			return 0, c.opError("read", net.ErrClosed)
		}
		if len(b) == 0 {
			return 0, nil
		}
		if p.rdl.expired {
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
		if !p.stalled {
			if p.n > 0 {
				k := p.pop(b)
				if p.wwait > 0 {
					p.cond.Broadcast()
				}
				return k, nil
			}
			if p.eof {
				return 0, io.EOF
			}
		}
		p.rwait++
		p.cond.Wait()
		p.rwait--
	}
}

// Write writes all of b, blocking while the window is full. On an error it returns how much was written: a
// timeout, an error wrapping net.ErrClosed after a local Close, or EPIPE ("broken pipe") once the peer has closed
// or this end has called CloseWrite.
func (c *Conn) Write(b []byte) (int, error) {
	p := c.tx
	p.mu.Lock()
	defer p.mu.Unlock()
	written := 0
	for {
		switch {
		case p.writerClosed:
			return written, c.opError("write", net.ErrClosed)
		case p.eof:
			return written, c.opError("write", os.NewSyscallError("write", syscall.EPIPE))
		case p.wdl.expired:
			return written, c.opError("write", os.ErrDeadlineExceeded)
		case p.readerClosed && !p.stalled:
			return written, c.opError("write", os.NewSyscallError("write", syscall.EPIPE))
		case written == len(b):
			return written, nil
		}
		if space := p.window - p.n; space > 0 {
			k := min(space, len(b)-written)
			p.push(b[written : written+k])
			written += k
			if p.rwait > 0 {
				p.cond.Broadcast()
			}
			continue
		}
		p.wwait++
		p.cond.Wait()
		p.wwait--
	}
}

// Close closes this end: blocked and later Reads and Writes on it fail with an error wrapping net.ErrClosed; the
// peer reads what was sent, then io.EOF, and its Writes fail with EPIPE. What the peer sent and we did not read is
// dropped. A second Close returns an error wrapping net.ErrClosed.
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opError("close", net.ErrClosed)
	}
	rx := c.rx
	rx.mu.Lock()
	rx.readerClosed = true
	rx.release()
	rx.rdl.clear()
	rx.cond.Broadcast()
	rx.mu.Unlock()

	tx := c.tx
	tx.mu.Lock()
	tx.writerClosed = true
	tx.eof = true
	tx.wdl.clear()
	if tx.readerClosed && !tx.stalled {
		tx.release()
	}
	tx.cond.Broadcast()
	tx.mu.Unlock()

	c.host.unlink(c)
	return nil
}

// CloseWrite shuts down the sending side: the peer reads what was sent, then io.EOF; our Writes fail with EPIPE;
// our Reads work as before.
func (c *Conn) CloseWrite() error {
	if c.closed.Load() {
		return c.opError("close", net.ErrClosed)
	}
	tx := c.tx
	tx.mu.Lock()
	tx.eof = true
	tx.cond.Broadcast()
	tx.mu.Unlock()
	return nil
}

// SetDeadline sets both the read and the write deadline, as net.Conn.SetDeadline.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline makes blocked and future Reads fail with an error wrapping os.ErrDeadlineExceeded once t has
// passed; a zero t clears it. It may be moved while a Read is blocked.
func (c *Conn) SetReadDeadline(t time.Time) error {
	p := c.rx
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readerClosed {
		return &net.OpError{Op: "set", Net: "tcp", Addr: c.laddr, Err: net.ErrClosed}
	}
	p.setDeadline(&p.rdl, t, true)
	return nil
}

// SetWriteDeadline makes blocked and future Writes fail with an error wrapping os.ErrDeadlineExceeded once t has
// passed; a zero t clears it. It may be moved while a Write is blocked.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	p := c.tx
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.writerClosed {
		return &net.OpError{Op: "set", Net: "tcp", Addr: c.laddr, Err: net.ErrClosed}
	}
	p.setDeadline(&p.wdl, t, false)
	return nil
}

// pipe is one direction of a connection: a ring buffer that grows on demand up to the window and is released as
// soon as it is drained, so an idle connection holds no buffer memory.
type pipe struct {
	mu   sync.Mutex
	cond sync.Cond // L is &mu; broadcast when data, space, a deadline or a close changes

	buf    []byte  // ring; len is a power of two, or nil when empty
	bufp   *[]byte // what buf came from, for its pool
	r      int     // index of the first unread byte
	n      int     // unread bytes
	window int

	rwait, wwait int // goroutines waiting in Read, in Write

	eof          bool // the writer will send no more (Close or CloseWrite)
	writerClosed bool // the writing end was closed: its Writes fail with ErrClosed
	readerClosed bool // the reading end was closed: its Reads fail with ErrClosed, Writes to it with EPIPE
	stalled      bool // partitioned: nothing gets through until healed

	rdl deadline // the reading end's read deadline
	wdl deadline // the writing end's write deadline
}

func (p *pipe) init(window int) {
	p.cond.L = &p.mu
	p.window = window
}

// push appends b to the ring. Caller holds mu and guarantees p.n+len(b) <= window.
func (p *pipe) push(b []byte) {
	if need := p.n + len(b); need > len(p.buf) {
		p.grow(need)
	}
	w := (p.r + p.n) & (len(p.buf) - 1)
	k := copy(p.buf[w:], b)
	copy(p.buf, b[k:])
	p.n += len(b)
}

// grow moves the unread bytes into a ring of at least need bytes.
func (p *pipe) grow(need int) {
	nbp := getBuf(need)
	nb := *nbp
	if p.n > 0 {
		end := min(p.r+p.n, len(p.buf))
		k := copy(nb, p.buf[p.r:end])
		copy(nb[k:p.n], p.buf)
	}
	putBuf(p.bufp)
	p.buf, p.bufp, p.r = nb, nbp, 0
}

// pop moves up to len(b) unread bytes into b and releases the ring once drained.
func (p *pipe) pop(b []byte) int {
	m := min(len(b), p.n)
	end := p.r + m
	if end <= len(p.buf) {
		copy(b, p.buf[p.r:end])
	} else {
		k := copy(b, p.buf[p.r:])
		copy(b[k:m], p.buf)
	}
	p.r = end & (len(p.buf) - 1)
	p.n -= m
	if p.n == 0 {
		p.release()
	}
	return m
}

// release drops the ring and whatever it holds.
func (p *pipe) release() {
	putBuf(p.bufp)
	p.buf, p.bufp, p.r, p.n = nil, nil, 0, 0
}

func (p *pipe) setStalled(stalled bool) {
	p.mu.Lock()
	p.stalled = stalled
	if !stalled && p.readerClosed {
		p.release() // what was sent into the partition reaches a closed reader: dropped
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

// deadline is one direction's deadline. expired is what Read and Write check; the timer sets it.
type deadline struct {
	when    time.Time
	timer   *time.Timer
	expired bool
}

// setDeadline moves d, which is p.rdl (read true) or p.wdl, to t. Caller holds p.mu.
func (p *pipe) setDeadline(d *deadline, t time.Time, read bool) {
	d.when = t
	if t.IsZero() {
		d.expired = false
		if d.timer != nil {
			d.timer.Stop()
		}
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		d.expired = true
		if d.timer != nil {
			d.timer.Stop()
		}
		p.cond.Broadcast()
		return
	}
	d.expired = false
	switch {
	case d.timer == nil && read:
		d.timer = time.AfterFunc(wait, p.fireRead)
	case d.timer == nil:
		d.timer = time.AfterFunc(wait, p.fireWrite)
	default:
		d.timer.Reset(wait)
	}
}

// clear stops d's timer for good (the end was closed).
func (d *deadline) clear() {
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.when, d.expired = time.Time{}, false
}

func (p *pipe) fireRead()  { p.fire(&p.rdl) }
func (p *pipe) fireWrite() { p.fire(&p.wdl) }

// fire runs on d's timer. The timer may have been moved or stopped meanwhile: it only expires d if d's time has
// really come.
func (p *pipe) fire(d *deadline) {
	p.mu.Lock()
	if !d.when.IsZero() && !time.Now().Before(d.when) {
		d.expired = true
		p.cond.Broadcast()
	}
	p.mu.Unlock()
}

// Ring buffers come from per-size pools, powers of two from 512 bytes to 64 KiB, so that connections that are
// busy for a moment borrow memory and idle ones hold none. Larger windows allocate beyond that without pooling.
const (
	minBufShift    = 9
	maxPooledShift = 16
)

var bufPools [maxPooledShift - minBufShift + 1]sync.Pool

// getBuf returns a buffer of the power of two at least n (and at least 512) bytes long.
func getBuf(n int) *[]byte {
	shift := max(minBufShift, bits.Len(uint(n-1)))
	if shift <= maxPooledShift {
		if v := bufPools[shift-minBufShift].Get(); v != nil {
			return v.(*[]byte)
		}
	}
	b := make([]byte, 1<<shift)
	return &b
}

// putBuf gives a buffer from getBuf back to its pool.
func putBuf(bp *[]byte) {
	if bp == nil {
		return
	}
	if shift := bits.TrailingZeros(uint(len(*bp))); shift <= maxPooledShift {
		bufPools[shift-minBufShift].Put(bp)
	}
}

// String describes the connection as "mem local->remote" (handy in logs and test failures).
func (c *Conn) String() string {
	return fmt.Sprintf("mem %v->%v", c.laddr, c.raddr)
}
