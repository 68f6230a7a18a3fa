package servent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"path/filepath"
	"sync"
	"time"

	"gnutella/firewall"
	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/share"
	"gnutella/transfer"
	"gnutella/ultrapeer"
)

// A Node is a whole servent: the Gnutella core plus what a user shares and
// downloads, firewall detection with Push and GIV, and push proxies. The CLI
// and the testnet run Nodes (and package control serves a Node's API).

// NodeConfig configures a Node.
type NodeConfig struct {
	Config
	// ShareDirs are shared (recursively); none means we share nothing.
	ShareDirs []string
	// DownloadDir receives downloads; "" means no downloads.
	DownloadDir string
	// UploadSlots is the number of uploads at once (4 as gtk-gnutella).
	UploadSlots int
	// AcceptLocalProof lets connections from loopback and private addresses
	// prove we are reachable, and PushPolicy lets us call back to such
	// addresses: both are for a local testnet, off on the internet.
	AcceptLocalProof bool
	PushPolicy       firewall.PushPolicy
	// AssumeFirewalledAfter: with no proof of reachability for this long we
	// assume we are firewalled (30 min as gtk-gnutella).
	AssumeFirewalledAfter time.Duration
	// Rescan is the library's periodic rescan (60 s by default).
	Rescan time.Duration
	// AssumeReachable skips firewall detection: we are never firewalled (a
	// testnet's open hosts). Firewalled hosts of a testnet leave it false.
	AssumeReachable bool
}

// DefaultNodeConfig returns the documented defaults.
func DefaultNodeConfig() NodeConfig {
	return NodeConfig{Config: DefaultConfig(), UploadSlots: 4,
		AssumeFirewalledAfter: 30 * time.Minute, Rescan: time.Minute}
}

// Node is a running servent with its library, transfers and firewall logic.
type Node struct {
	*Servent
	cfg       NodeConfig
	Library   *share.Library       // nil when nothing is shared
	Uploads   *transfer.Server     // always there: answers 404 with an empty library
	Downloads *transfer.Downloader // nil without a download folder
	Firewall  *firewall.Detector

	guard     *firewall.PushGuard
	callbacks transfer.Callbacks
	proxies   firewall.ProxyTable // the leaves we are push proxy for (ultrapeer side)

	mu          sync.Mutex
	ourProxies  map[netip.AddrPort]routing.LinkID // our push proxies (leaf side)
	connectBack time.Time                         // last BEAR/7 we sent
	table       *ultrapeer.Table                  // our library's QRP table
	tableOf     uint64                            // the library version it was built from
}

// qrpTable is Hooks.QRPTable: the library's table, rebuilt when the
// library changed (names split as the library splits them, every prefix of
// 3 bytes or more, and the URNs).
func (n *Node) qrpTable() *ultrapeer.Table {
	if n.Library == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	v := n.Library.Version()
	if n.table != nil && n.tableOf == v {
		return n.table
	}
	files := n.Library.Files()
	names := make([][]string, len(files))
	var urns []protocol.SHA1
	for i, f := range files {
		names[i] = share.Keywords(f.Name)
		if !f.SHA1.IsZero() {
			urns = append(urns, f.SHA1)
		}
	}
	n.table, n.tableOf = ultrapeer.BuildTable(qrpBits, names, urns), v
	return n.table
}

// NewNode builds a node; nothing runs until Start.
func NewNode(cfg NodeConfig) (*Node, error) {
	n := &Node{cfg: cfg, ourProxies: map[netip.AddrPort]routing.LinkID{}}
	if len(cfg.ShareDirs) > 0 {
		libDir := ""
		if cfg.DataDir != "" {
			libDir = filepath.Join(cfg.DataDir, "library")
		}
		lib, err := share.Open(share.Config{Dirs: cfg.ShareDirs, DataDir: libDir, RescanInterval: cfg.Rescan, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("cannot share: %w", err)
		}
		n.Library = lib
	}
	n.Firewall = firewall.NewDetector(firewall.DetectorConfig{
		AssumeFirewalledAfter: cfg.AssumeFirewalledAfter, AcceptLocalProof: cfg.AcceptLocalProof, Logger: cfg.Logger,
	}, time.Now())
	n.guard = firewall.NewPushGuard(cfg.PushPolicy)
	n.Uploads = &transfer.Server{Library: n.library(), Slots: cfg.UploadSlots, UserAgent: userAgent(),
		Logger: cfg.Logger, PushProxy: n.servePushProxy}
	c := cfg.Config
	h := &c.Hooks
	if n.Library != nil || h.Answer == nil {
		h.Answer = n.answer
	}
	h.ShareStats = n.shareStats
	h.HTTP = n.Uploads.ServeConn
	h.Busy = n.Uploads.Busy
	h.Firewalled = n.Firewall.Firewalled
	if cfg.AssumeReachable {
		h.Firewalled = func() bool { return false }
	}
	h.Inbound = func(remote netip.AddrPort) { n.Firewall.Inbound(remote, n.linkedTo(remote.Addr()), time.Now()) }
	h.ConnectBack = func(remote netip.AddrPort) { n.Firewall.ConnectBack(remote, time.Now()) }
	if user := h.Push; user != nil {
		h.Push = func(p *protocol.Push, hd protocol.Header) { user(p, hd); n.push(p, hd) }
	} else {
		h.Push = n.push
	}
	h.GIV = func(conn net.Conn, br *bufio.Reader, giv protocol.GIV) {
		if !n.callbacks.Deliver(conn, br, giv) {
			conn.Close() // a GIV for a download we never asked for
		}
	}
	h.Vendor = n.vendor
	h.HitTrailer = n.hitTrailer
	if n.Library != nil || h.QRPTable == nil {
		h.QRPTable = n.qrpTable // a testnet answering from memory (Hooks.Answer) brings its own table
	}
	s, err := New(c)
	if err != nil {
		return nil, err
	}
	n.Servent = s
	if cfg.DownloadDir != "" {
		stateFile := ""
		if cfg.DataDir != "" {
			stateFile = filepath.Join(cfg.DataDir, "downloads.json")
		}
		n.Downloads = &transfer.Downloader{
			Dir: cfg.DownloadDir, StateFile: stateFile, UserAgent: userAgent(), Logger: cfg.Logger,
			AddrPolicy: firewall.AddrPolicy{AllowLoopback: cfg.AllowLoopback, AllowPrivate: cfg.AllowPrivate},
			Dial:       s.transport,
			Push: func(ctx context.Context, src transfer.Source) (net.Conn, *bufio.Reader, error) {
				return n.callbacks.Push(ctx, src, n.sendPush)
			},
		}
	}
	return n, nil
}

// library is the Library as the upload server sees it (an empty one when
// we share nothing).
func (n *Node) library() transfer.Library {
	if n.Library == nil {
		return emptyLibrary{}
	}
	return n.Library
}

type emptyLibrary struct{}

func (emptyLibrary) ByIndex(uint32) (share.File, bool)       { return share.File{}, false }
func (emptyLibrary) BySHA1(protocol.SHA1) (share.File, bool) { return share.File{}, false }

// Start starts the library, the servent, downloads and the firewall clock.
func (n *Node) Start() error {
	if n.Library != nil {
		n.Library.Start()
	}
	if err := n.Servent.Start(); err != nil {
		n.closeLibrary()
		return err
	}
	if n.Downloads != nil {
		if err := n.Downloads.Start(n.ctx); err != nil {
			_ = n.Servent.Stop()
			n.closeLibrary()
			return fmt.Errorf("downloads: %w", err)
		}
	}
	n.wg.Add(1)
	go n.firewallLoop()
	return nil
}

// Stop stops everything and waits for it.
func (n *Node) Stop() error {
	var errs []error
	if n.Downloads != nil {
		errs = append(errs, n.Downloads.Close())
	}
	errs = append(errs, n.Uploads.Close())
	errs = append(errs, n.Servent.Stop())
	n.closeLibrary()
	return errors.Join(errs...)
}

func (n *Node) closeLibrary() {
	if n.Library != nil {
		_ = n.Library.Close()
	}
}

// answer is Hooks.Answer: the library's matches as QueryHit records, with
// the URN in the form the query asked for.
func (n *Node) answer(q *protocol.Query, h protocol.Header) []protocol.Result {
	if n.Library == nil {
		return nil
	}
	files := n.Library.Match(q)
	if len(files) == 0 {
		return nil
	}
	ggepH := q.Flags.Has(protocol.QueryFlagMark) && q.Flags.Has(protocol.QueryFlagGGEPH)
	out := make([]protocol.Result, 0, len(files))
	for _, f := range files {
		r := protocol.Result{Index: f.Index, Name: []byte(f.Name)}
		var extra protocol.GGEP
		if f.Size >= protocol.LargeFileSize {
			r.Size = protocol.LargeFileSize
			extra = protocol.GGEP{{ID: "LF", Data: protocol.AppendVarint(nil, uint64(f.Size))}}
		} else {
			r.Size = uint32(f.Size)
		}
		if !f.SHA1.IsZero() {
			r.Extensions = protocol.ResultExtensions(f.SHA1, ggepH, extra)
		} else if extra != nil {
			r.Extensions = protocol.ExtensionArea{protocol.GGEPItem(extra)}
		}
		out = append(out, r)
	}
	return out
}

func (n *Node) shareStats() (uint32, uint32) {
	if n.Library == nil {
		return 0, 0
	}
	return n.Library.Stats()
}

func (n *Node) linkedTo(a netip.Addr) bool {
	for _, l := range n.Links() {
		if l.Remote.Addr() == a || l.Listen.Addr() == a {
			return true
		}
	}
	return false
}

// push answers a Push addressed to us (Hooks.Push): gtk-gnutella's limits,
// then a connect-back with GIV and the upload on that socket.
func (n *Node) push(p *protocol.Push, h protocol.Header) {
	addr := p.AddrPort()
	now := time.Now()
	if !n.linkedTo(addr.Addr()) {
		if err := n.guard.Allow(addr, now); err != nil {
			n.log.Debug().Stringer("addr", addr).Err(err).Msg("push refused")
			return
		}
	}
	name := "file"
	if n.Library != nil {
		if f, ok := n.Library.ByIndex(p.Index); ok {
			name = f.Name
		}
	}
	giv := protocol.GIV{Index: p.Index, ServentID: n.id, Name: name}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(n.ctx, 20*time.Second)
		conn, err := n.transport.Dial(ctx, addr.String())
		cancel()
		if err != nil {
			n.guard.Failed(addr, time.Now())
			n.log.Debug().Stringer("addr", addr).Err(err).Msg("push callback failed")
			return
		}
		n.Uploads.ServeCallback(conn, giv)
	}()
}

// sendPush routes a Push toward a firewalled source: through its push
// proxies when it has any, else through the network by servent ID.
func (n *Node) sendPush(src transfer.Source) error {
	self := n.Addr()
	if !self.Addr().Unmap().Is4() {
		return errors.New("no IPv4 address to be called back on")
	}
	for _, proxy := range src.PushProxies {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		err := transfer.RequestPushProxy(ctx, n.transport, proxy, src.ServentID, self, userAgent())
		cancel()
		if err == nil {
			return nil
		}
	}
	p := &protocol.Push{ServentID: src.ServentID, Index: src.Index, IP: self.Addr().Unmap().As4(), Port: self.Port()}
	if n.SendPush(p, n.cfg.MaxTTL) == 0 {
		return errors.New("no route to the servent: no link carried a hit from it")
	}
	return nil
}

// servePushProxy is the ultrapeer side of GET /gnutella/push-proxy: send a
// Push to the leaf with that servent ID, if it is ours.
func (n *Node) servePushProxy(servent protocol.GUID, xnode netip.AddrPort) int {
	lid, ok := n.proxies.Lookup(servent)
	if !ok {
		return 410
	}
	l := n.linkByID(routing.LinkID(lid))
	if l == nil || !xnode.Addr().Unmap().Is4() {
		return 410
	}
	p := &protocol.Push{ServentID: servent, IP: xnode.Addr().Unmap().As4(), Port: xnode.Port()}
	if err := l.sendMessage(protocol.Header{ID: protocol.NewGUID(), TTL: max(n.cfg.MaxTTL-1, 1), Hops: 1}, p); err != nil {
		return 410
	}
	return 202
}

// vendor handles the vendor messages the core leaves to us.
func (n *Node) vendor(l *Link, h protocol.Header, v *protocol.Vendor) {
	switch {
	case v.Is(protocol.TCPConnectBackID):
		port, err := v.TCPConnectBack()
		if err != nil {
			return
		}
		addr := netip.AddrPortFrom(l.Remote.Addr(), port)
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
			defer cancel()
			_ = firewall.ConnectBack(ctx, n.transport, addr, firewall.ConnectBackLimeWire)
		}()
	case v.Is(protocol.PushProxyRequestID):
		// A leaf asks us to be its push proxy; the message GUID is its servent ID.
		if l.Kind != LinkLeaf || v.PushProxyRequest() != nil {
			return
		}
		self := n.Addr()
		if !self.Addr().Unmap().Is4() {
			return
		}
		n.proxies.Add(h.ID, uint32(l.ID))
		_ = l.sendMessage(protocol.Header{ID: h.ID, TTL: 1}, protocol.NewPushProxyAck(self.Addr().Unmap().As4(), self.Port()))
	case v.Is(protocol.PushProxyAckID):
		if ap, err := v.PushProxyAck(); err == nil && h.ID == n.id {
			n.mu.Lock()
			n.ourProxies[ap] = l.ID
			n.mu.Unlock()
		}
	}
}

// hitTrailer is the GGEP of our QueryHit trailers: our push proxies (up to
// 8, as gtk-gnutella) when we are firewalled.
func (n *Node) hitTrailer() protocol.GGEP {
	if !n.firewalled() {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var data []byte
	count := 0
	for ap, lid := range n.ourProxies {
		if n.linkByID(lid) == nil {
			delete(n.ourProxies, ap)
			continue
		}
		if count < 8 {
			data = protocol.AppendPushProxy(data, ap)
			count++
		}
	}
	if len(data) == 0 {
		return nil
	}
	return protocol.GGEP{{ID: "PUSH", Data: data}}
}

// firewallLoop ticks the detector, asks peers to connect back while we
// believe we are firewalled, and (as a leaf) asks our ultrapeers to be our
// push proxies.
func (n *Node) firewallLoop() {
	defer n.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	asked := map[routing.LinkID]bool{}
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		n.Firewall.Tick(now)
		if !n.firewalled() {
			continue
		}
		if now.Sub(n.connectBack) > time.Minute {
			sent := 0
			for _, l := range n.Links() {
				if sent < 3 && l.Supports(protocol.TCPConnectBackID) {
					_ = l.sendMessage(protocol.Header{ID: protocol.NewGUID(), TTL: 1}, protocol.NewTCPConnectBack(n.Addr().Port()))
					sent++
				}
			}
			if sent > 0 {
				n.connectBack = now
			}
		}
		for _, l := range n.Links() {
			if l.Kind == LinkUltrapeer && !asked[l.ID] && l.Supports(protocol.PushProxyRequestID) {
				asked[l.ID] = true
				_ = l.sendMessage(protocol.Header{ID: n.id, TTL: 1}, protocol.NewPushProxyRequest())
			}
		}
	}
}

// Download starts downloading a hit, using as extra sources every other
// hit with the same URN.
func (n *Node) Download(pick routing.Hit, all []routing.Hit) (*transfer.Download, error) {
	if n.Downloads == nil {
		return nil, errors.New("no download folder")
	}
	req := transfer.Request{Name: pick.Name, Size: int64(pick.Size), SHA1: pick.URN}
	same := func(h routing.Hit) bool {
		if pick.URN.IsZero() {
			return h.ServentID == pick.ServentID && h.Index == pick.Index && h.Name == pick.Name
		}
		return h.URN == pick.URN
	}
	for _, h := range all {
		if same(h) {
			req.Sources = append(req.Sources, SourceOf(h))
		}
	}
	if len(req.Sources) == 0 {
		req.Sources = append(req.Sources, SourceOf(pick))
	}
	return n.Downloads.Add(req)
}

// SourceOf turns a search hit into a download source.
func SourceOf(h routing.Hit) transfer.Source {
	return transfer.Source{Addr: h.Host, Index: h.Index, Name: h.Name, ServentID: h.ServentID, Push: h.Push, PushProxies: h.Proxies}
}
