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
	// UploadSlots is the number of uploads at once.
	UploadSlots int
	// UploadRate caps the bytes per second of all uploads together (0:
	// unlimited).
	UploadRate int64
	// UploadsPerIP and QueuePerIP bound the upload slots and the PARQ
	// queue places one client address may hold (0: transfer's defaults;
	// negative: no limit). A testnet, where every servent is 127.0.0.1,
	// lifts them.
	UploadsPerIP, QueuePerIP int
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
	return NodeConfig{Config: DefaultConfig(), UploadSlots: 4,
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
	// Mesh is the download mesh (dmesh.go): the alternate locations learnt
	// from our searches' hits and from transfers, by URN.
	Mesh *transfer.Mesh
	// Partials is what we share of the files we are downloading (pfsp.go):
	// such a file is answered in QueryHits and its URN is in our QRP table
	// while Partials has it. nil: nothing partial is shared.
	Partials transfer.Partials

	guard         *firewall.PushGuard
	pushCallbacks chan struct{} // one per Push callback in flight (push.go)
	callbacks     transfer.Callbacks

	mu            sync.Mutex
	table         *ultrapeer.Table // our library's QRP table
	tableOf       uint64           // the library version it was built from
	tablePartials []protocol.SHA1  // and the partial files' URNs, sorted

	speed uploadSpeed // how fast our uploads go, for our hits (transfers.go)
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
	n.Uploads = &transfer.Server{Library: n.library(), Partials: n, Slots: cfg.UploadSlots, Bandwidth: cfg.UploadRate,
		PerIP: cfg.UploadsPerIP, QueuePerIP: cfg.QueuePerIP, UserAgent: userAgent(), Logger: cfg.Logger}
	c := cfg.Config
	if c.HitSpeed == nil {
		c.HitSpeed = n.hitSpeed // transfers.go
	}
	// Node is every seam of the servent; the configured Library and Pushes
	// (a testnet's) are used through it (library.go, push.go).
	c.Library, c.Transfers, c.Firewall, c.Pushes = n, n, n, n
	s, err := New(c)
	if err != nil {
		return nil, err
	}
	n.Servent = s
	// The push guard and the downloader refuse the servent's hostiles
	// (hostiles.go); a Hostiles set in PushPolicy is replaced by it.
	pp := cfg.PushPolicy
	pp.Hostiles = s.Hostiles()
	n.guard = firewall.NewPushGuard(pp)
	n.pushCallbacks = make(chan struct{}, maxPushCallbacks)
	n.Uploads.PushProxy = s.servePushProxy // pushproxy.go
	n.Uploads.Browse = n.browseHits        // browse.go
	addrPolicy := firewall.AddrPolicy{AllowLoopback: cfg.AllowLoopback, AllowPrivate: cfg.AllowPrivate, Hostiles: s.Hostiles()}
	n.Mesh = transfer.NewMesh(transfer.MeshConfig{AddrPolicy: &addrPolicy, Logger: cfg.Logger,
		IsSelf: func(a netip.AddrPort) bool { return a == s.Addr() }, Advertise: n.advertise})
	s.searches.tap = n.meshHit // dmesh.go
	n.Uploads.Mesh = n.Mesh
	if cfg.DownloadDir != "" {
		stateFile := ""
		if cfg.DataDir != "" {
			stateFile = filepath.Join(cfg.DataDir, "downloads.json")
		}
		n.Downloads = &transfer.Downloader{
			Dir: cfg.DownloadDir, StateFile: stateFile, UserAgent: userAgent(), Logger: cfg.Logger,
			AddrPolicy: addrPolicy,
			Dial:       tlsDialer{s}, // tls.go: TLS to sources known to speak it
			Mesh:       n.Mesh, SharePartials: true,
			Push: func(ctx context.Context, src transfer.Source) (net.Conn, *bufio.Reader, error) {
				return n.callbacks.Push(ctx, src, n.sendPush)
			},
		}
		// What we have of the files we download is shared (pfsp.go).
		n.Partials = n.Downloads
	}
	return n, nil
}

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
			req.Sources = append(req.Sources, n.sourceOf(h))
		}
	}
	if len(req.Sources) == 0 {
		req.Sources = append(req.Sources, n.sourceOf(pick))
	}
	return n.Downloads.Add(req)
}

// sourceOf is SourceOf, noting that a reachable responder whose hit said
// TLS takes TLS on its port: the download dials it over TLS (tls.go). A
// firewalled one calls us back: over TLS when our Push asks (push.go).
func (n *Node) sourceOf(h routing.Hit) transfer.Source {
	if h.TLS && !h.Push {
		n.tls.speaksTLS(h.Host)
	}
	return SourceOf(h)
}

// SourceOf turns a search hit into a download source.
func SourceOf(h routing.Hit) transfer.Source {
	return transfer.Source{Addr: h.Host, Index: h.Index, Name: h.Name, ServentID: h.ServentID, Push: h.Push, PushProxies: h.Proxies}
}
