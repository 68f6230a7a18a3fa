package servent

import (
	"bufio"
	"context"
	"encoding/json"
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
// downloads, firewall detection with Push and GIV, push proxies, and the
// control API. The CLI and the testnet run Nodes.

// NodeConfig configures a Node.
type NodeConfig struct {
	Config
	// ShareDirs are shared (recursively); none means we share nothing.
	ShareDirs []string
	// DownloadDir receives downloads; "" means no downloads.
	DownloadDir string
	// UploadSlots is the number of uploads at once.
	UploadSlots int
	// ControlAddr is where the control API listens ("" = none).
	ControlAddr string
	// AcceptLocalProof lets connections from loopback and private addresses
	// prove we are reachable, and PushPolicy lets us call back to such
	// addresses: both are for a local testnet, off on the internet.
	AcceptLocalProof bool
	PushPolicy       firewall.PushPolicy
	// AssumeFirewalledAfter: with no proof of reachability for this long we
	// assume we are firewalled (gtk-gnutella's watchdog).
	AssumeFirewalledAfter time.Duration
	// Rescan is the library's periodic rescan.
	Rescan time.Duration
	// AssumeReachable skips firewall detection: we are never firewalled (a
	// testnet's open hosts). Firewalled hosts of a testnet leave it false.
	AssumeReachable bool
}

// DefaultNodeConfig returns the defaults: the one place they live for a
// Node (those of its Config are DefaultConfig's).
func DefaultNodeConfig() NodeConfig {
	return NodeConfig{Config: DefaultConfig(), UploadSlots: 4, ControlAddr: "127.0.0.1:0",
		AssumeFirewalledAfter: firewall.DefaultAssumeFirewalledAfter, Rescan: time.Minute}
}

// Node is a running servent with its library, transfers and firewall logic.
type Node struct {
	*Servent
	cfg       NodeConfig
	Library   *share.Library       // nil when nothing is shared
	Uploads   *transfer.Server     // always there: answers 404 with an empty library
	Downloads *transfer.Downloader // nil without a download folder
	Firewall  *firewall.Detector
	Control   *Control

	guard     *firewall.PushGuard
	callbacks transfer.Callbacks

	mu      sync.Mutex
	table   *ultrapeer.Table // our library's QRP table
	tableOf uint64           // the library version it was built from
}

// NewNode builds a node; nothing runs until Start.
func NewNode(cfg NodeConfig) (*Node, error) {
	n := &Node{cfg: cfg}
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
		Logger: cfg.Logger}
	c := cfg.Config
	// Node is every seam of the servent; the configured Library and Pushes
	// (a testnet's) are used through it (library.go, push.go).
	c.Library, c.Transfers, c.Firewall, c.Pushes = n, n, n, n
	s, err := New(c)
	if err != nil {
		return nil, err
	}
	n.Servent = s
	n.Uploads.PushProxy = s.servePushProxy // pushproxy.go
	if cfg.DownloadDir != "" {
		stateFile := ""
		if cfg.DataDir != "" {
			stateFile = filepath.Join(cfg.DataDir, "downloads.json")
		}
		n.Downloads = &transfer.Downloader{
			Dir: cfg.DownloadDir, StateFile: stateFile, UserAgent: userAgent(), Logger: cfg.Logger,
			AllowPrivate: cfg.AllowPrivate || cfg.AllowLoopback,
			Dial: func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
				return s.transport.Dial(ctx, a.String())
			},
			Push: func(ctx context.Context, src transfer.Source) (net.Conn, *bufio.Reader, error) {
				return n.callbacks.Push(ctx, src, n.sendPush)
			},
		}
	}
	return n, nil
}

// Start starts the library, the servent, downloads, the control API and
// the firewall clock.
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
	if n.cfg.ControlAddr != "" {
		c, err := n.StartControl(n.cfg.ControlAddr, ControlExtras{
			Shares: n.sharesJSON, Downloads: n.downloadsJSON, StartDownload: n.startDownloadJSON,
			Library: n.libraryJSON,
		})
		if err != nil {
			_ = n.Stop()
			return err
		}
		n.Control = c
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

// firewallLoop is the node's firewall clock: it ticks the detector and,
// while we believe we are firewalled, asks peers to connect back
// (connectback.go) and our ultrapeers to be our push proxies (pushproxy.go).
func (n *Node) firewallLoop() {
	defer n.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
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
		n.askConnectBack(now) // connectback.go
		n.askPushProxies()    // pushproxy.go
	}
}

// ShareJSON is one entry of GET /api/v1/shares.
type ShareJSON struct {
	Index uint32 `json:"index"`
	Name  string `json:"name"`
	Size  int64  `json:"size"`
	URN   string `json:"urn,omitempty"`
}

func (n *Node) sharesJSON() any {
	out := []ShareJSON{}
	if n.Library == nil {
		return out
	}
	for _, f := range n.Library.Files() {
		j := ShareJSON{Index: f.Index, Name: f.Name, Size: f.Size}
		if !f.SHA1.IsZero() {
			j.URN = f.SHA1.String()
		}
		out = append(out, j)
	}
	return out
}

// LibraryJSON is the library part of GET /api/v1/status.
type LibraryJSON struct {
	Files       int    `json:"files"`
	HashedFiles int    `json:"hashed_files"`
	Bytes       int64  `json:"bytes"`
	HashedBytes int64  `json:"hashed_bytes"`
	Hashing     string `json:"hashing,omitempty"` // the file being hashed now
}

func (n *Node) libraryJSON() any {
	if n.Library == nil {
		return nil
	}
	p := n.Library.Progress()
	return LibraryJSON{Files: p.Files, HashedFiles: p.HashedFiles, Bytes: p.Bytes, HashedBytes: p.HashedBytes, Hashing: p.Current}
}

func (n *Node) downloadsJSON() any {
	if n.Downloads == nil {
		return []transfer.Status{}
	}
	return n.Downloads.List()
}

// DownloadRequest is the body of POST /api/v1/downloads: either a search
// result (search_id and the hit's position), or a URN with the sources of a
// search's hits for it.
type DownloadRequest struct {
	SearchID string `json:"search_id,omitempty"`
	Hit      int    `json:"hit"`
	URN      string `json:"urn,omitempty"`
}

func (n *Node) startDownloadJSON(body []byte) (any, error) {
	if n.Downloads == nil {
		return nil, errors.New("this servent has no download folder: restart it with --downloads DIR")
	}
	var req DownloadRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("bad JSON: %v", err)
	}
	if n.Control == nil {
		return nil, errors.New("no control API")
	}
	cs := n.Control.lookup(req.SearchID)
	if cs == nil {
		return nil, errors.New("no such search: search first, then download one of its hits")
	}
	hits := cs.search.Hits()
	var pick routing.Hit
	switch {
	case req.URN != "":
		h, err := protocol.ParseURN(req.URN)
		if err != nil {
			return nil, err
		}
		found := false
		for _, x := range hits {
			if x.URN == h {
				pick, found = x, true
				break
			}
		}
		if !found {
			return nil, errors.New("that search has no hit with this URN")
		}
	case req.Hit >= 0 && req.Hit < len(hits):
		pick = hits[req.Hit]
	default:
		return nil, fmt.Errorf("hit %d out of range: the search has %d hits", req.Hit, len(hits))
	}
	d, err := n.Download(pick, hits)
	if err != nil {
		return nil, err
	}
	return d.Status(), nil
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
