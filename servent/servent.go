package servent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"gnutella/firewall"
	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent/hostcache"
	"gnutella/ultrapeer"
)

// Servent is one Gnutella node.
type Servent struct {
	cfg Config
	log zerolog.Logger
	id  protocol.GUID // our servent ID, persisted in DataDir

	transport Transport // cfg.Transport behind the hostile gate (hostiles.go)
	hostiles  *firewall.Hostiles
	listener  net.Listener
	self      atomic.Pointer[netip.AddrPort] // advertised address

	mu       sync.Mutex // guards links and the fields below
	links    map[routing.LinkID]*Link
	snapshot atomic.Pointer[[]*Link] // copy-on-write view of links for fan-out
	nextID   routing.LinkID
	dialing  map[netip.AddrPort]bool
	changed  chan struct{} // closed and replaced whenever the link set changes

	router *router
	pongs  *pongCache
	hosts  *hostcache.Cache
	tls    tlsState // tls.go

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	state   atomic.Int32 // 0 new, 1 running, 2 stopped
	now     func() time.Time
	started time.Time

	searches searchTable
	adm      admissions // inbound connections before they are links (admission.go)
	poller   poller     // parked idle links (park.go)
	// inflating counts compressed links whose inflater holds its reader
	// and window, about 73 KiB each (inflate.go)
	inflating atomic.Int64

	// Message balance across the network: queued for a link (net of
	// messages dropped from a queue) and fully handled after reading.
	sentMsgs, handledMsgs atomic.Int64

	walkChecks atomic.Int64 // checks our walkers' holders made of their originators

	mode         atomic.Int32 // the role played now (ModeLeaf or ModeUltrapeer)
	role         roleState    // role switches (connector and dial goroutines)
	qrp          qrpState
	proxies      pushProxies
	connectBacks connectBacks
	leafFlow     leafHopsFlow                 // connector goroutine
	dq           ultrapeer.LeafQueries[*Link] // our leaves' dynamic queries (dq.go)

	udp   *udpSide         // nil without UDP (udp.go); set in Start
	guess guessState       // GUESS (guess.go)
	uhcs  []netip.AddrPort // Config.UHCs, resolved at Start
}

// WalkChecks is how many walker checks this servent made (each one a
// request to a walker's originator and its answer).
func (s *Servent) WalkChecks() int64 { return s.walkChecks.Load() }

// MessageBalance returns how many messages this servent queued to links
// (less those dropped from queues) and how many it has finished handling.
// Summed over a closed network, the two are equal exactly when nothing is
// in flight: testnets wait on that instead of sleeping.
func (s *Servent) MessageBalance() (sent, handled int64) {
	return s.sentMsgs.Load(), s.handledMsgs.Load()
}

// New makes a servent from cfg. Nothing listens or dials until Start.
func New(cfg Config) (*Servent, error) {
	if cfg.Transport == nil {
		cfg.Transport = &TCPTransport{}
	}
	if cfg.MaxLinks <= 0 || cfg.WantLinks < 0 || cfg.SendQueueBytes < 4096 {
		return nil, fmt.Errorf("servent: bad config: MaxLinks %d, WantLinks %d, SendQueueBytes %d",
			cfg.MaxLinks, cfg.WantLinks, cfg.SendQueueBytes)
	}
	if cfg.MaxPending <= 0 || cfg.MaxPendingPerAddr <= 0 || cfg.HandshakeRate > 0 && cfg.HandshakeRateWindow <= 0 {
		return nil, fmt.Errorf("servent: bad config: MaxPending %d, MaxPendingPerAddr %d, HandshakeRate %d per %v",
			cfg.MaxPending, cfg.MaxPendingPerAddr, cfg.HandshakeRate, cfg.HandshakeRateWindow)
	}
	if cfg.MaxTTL == 0 || cfg.MaxTTL > cfg.HardTTL {
		return nil, fmt.Errorf("servent: MaxTTL %d must be between 1 and HardTTL %d", cfg.MaxTTL, cfg.HardTTL)
	}
	s := &Servent{
		cfg:       cfg,
		log:       cfg.Logger,
		transport: cfg.Transport,
		links:     make(map[routing.LinkID]*Link),
		dialing:   make(map[netip.AddrPort]bool),
		changed:   make(chan struct{}),
		now:       time.Now,
	}
	s.snapshot.Store(&[]*Link{})
	switch cfg.Mode {
	case ModeLeaf, ModeAuto: // auto starts as a leaf until it is eligible
		s.mode.Store(int32(ModeLeaf))
	default:
		s.mode.Store(int32(ModeUltrapeer))
	}
	s.qrp.init(&cfg)
	s.connectBacks.init()
	s.adm.init(&cfg)
	s.proxies.relays = firewall.NewRelayGuard()
	s.router = newRouter(s)
	s.pongs = newPongCache(s)
	s.initHostiles()
	s.transport = hostileGate{cfg.Transport, s.hostiles}
	s.hosts = hostcache.New(cfg.HostCacheSize)
	s.hosts.AllowLoopback = cfg.AllowLoopback
	s.hosts.AllowPrivate = cfg.AllowPrivate
	s.hosts.Hostiles = s.hostiles
	id, err := loadServentID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s.id = id
	return s, nil
}

// ID is our servent ID.
func (s *Servent) ID() protocol.GUID { return s.id }

// Firewalled says whether we believe we are firewalled (Config.Firewall).
func (s *Servent) Firewalled() bool { return s.firewalled() }

// Uptime is how long the servent has been running.
func (s *Servent) Uptime() time.Duration { return s.now().Sub(s.started) }

// Config returns the configuration the servent runs with.
func (s *Servent) Config() Config { return s.cfg }

// Addr is the address we advertise (listen address, or what peers saw).
func (s *Servent) Addr() netip.AddrPort {
	if p := s.self.Load(); p != nil {
		return *p
	}
	return netip.AddrPort{}
}

// Hosts is the servent's host cache.
func (s *Servent) Hosts() *hostcache.Cache { return s.hosts }

// Start listens, loads the host cache and starts the connector.
func (s *Servent) Start() error {
	if !s.state.CompareAndSwap(0, 1) {
		return errors.New("servent: already started")
	}
	ln, err := s.transport.Listen(s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("%w on %s: %w", ErrListen, s.cfg.ListenAddr, err)
	}
	s.listener = ln
	s.adm.start()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.started = s.now()
	self := s.cfg.AdvertiseAddr
	if !self.IsValid() {
		if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil {
			self = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	s.self.Store(&self)
	if s.cfg.DataDir != "" {
		if n, err := s.hosts.Load(s.hostsPath(), s.now()); err != nil {
			s.log.Warn().Err(err).Msg("host cache not loaded")
		} else if n > 0 {
			s.log.Info().Int("hosts", n).Msg("host cache loaded")
		}
	}
	for _, p := range s.cfg.Peers {
		ap, err := resolvePeer(p)
		if err == nil {
			err = s.hosts.AddPeer(ap, true, s.now())
		}
		if err != nil {
			s.log.Warn().Str("peer", p).Err(err).Msg("ignoring --peer")
		}
	}
	for _, h := range s.cfg.UHCs {
		if ap, err := resolvePeer(h); err != nil {
			s.log.Warn().Str("uhc", h).Err(err).Msg("ignoring --uhc")
		} else {
			s.uhcs = append(s.uhcs, hostcache.Canon(ap))
		}
	}
	s.startUDP(ln.Addr())
	s.log.Info().Str("listen", ln.Addr().String()).Str("servent_id", s.id.String()).Msg("servent started")
	s.wg.Add(2)
	go s.acceptLoop()
	go s.connectLoop()
	return nil
}

// Stop sends Bye 200 to every link, waits (at most ByeGrace) for them to
// end, saves the host cache and returns once every goroutine has finished.
func (s *Servent) Stop() error {
	if !s.state.CompareAndSwap(1, 2) {
		s.state.Store(2)
		return nil
	}
	s.cancel()
	_ = s.listener.Close()
	if s.udp != nil {
		s.udp.close()
	}
	links := s.Links()
	for _, l := range links {
		l.Bye(protocol.ByeShutdown, "Servent shutdown")
	}
	deadline := time.NewTimer(s.cfg.ByeGrace)
wait:
	for _, l := range links {
		select {
		case <-l.Done():
		case <-deadline.C:
			break wait // the grace is over for every link at once
		}
	}
	deadline.Stop()
	for _, l := range s.Links() {
		l.close(nil)
	}
	s.poller.stop()
	s.wg.Wait()
	var err error
	if s.cfg.DataDir != "" {
		err = s.hosts.Save(s.hostsPath())
	}
	s.log.Info().Msg("servent stopped")
	return err
}

func (s *Servent) hostsPath() string { return filepath.Join(s.cfg.DataDir, "hosts") }

// Links returns the current links.
func (s *Servent) Links() []*Link { return *s.snapshot.Load() }

// LinkCount counts links of the given kinds (all kinds when none given).
func (s *Servent) LinkCount(kinds ...LinkKind) int {
	n := 0
	for _, l := range s.Links() {
		if len(kinds) == 0 {
			n++
			continue
		}
		for _, k := range kinds {
			if l.Kind == k {
				n++
				break
			}
		}
	}
	return n
}

// WaitLinks blocks until the servent has at least n links or ctx ends.
func (s *Servent) WaitLinks(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		have, ch := len(s.links), s.changed
		s.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("have %d links, want %d: %w", have, n, ctx.Err())
		}
	}
}

// addLink registers a link after a successful handshake. It refuses a
// second link to the same servent (409).
func (s *Servent) addLink(l *Link) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Load() != 1 {
		return errStopping
	}
	for _, o := range s.links {
		if !l.PeerID.IsZero() && o.PeerID == l.PeerID {
			return errAlreadyConnected
		}
		if l.Listen.IsValid() && o.Listen == l.Listen {
			return errAlreadyConnected
		}
	}
	s.nextID++
	l.ID = s.nextID
	s.links[l.ID] = l
	s.publishLocked()
	return nil
}

func (s *Servent) removeLink(l *Link) {
	s.mu.Lock()
	if s.links[l.ID] == l {
		delete(s.links, l.ID)
		s.publishLocked()
	}
	s.mu.Unlock()
	s.qrp.forgetLink(l)
	s.forgetPushProxyLink(l)
	s.router.forgetLink(l.ID)
}

func (s *Servent) publishLocked() {
	snap := make([]*Link, 0, len(s.links))
	for _, l := range s.links {
		snap = append(snap, l)
	}
	s.snapshot.Store(&snap)
	close(s.changed)
	s.changed = make(chan struct{})
}

var (
	errAlreadyConnected = errors.New("already connected to this servent")
	errStopping         = errors.New("servent is stopping")
)

// ErrListen and ErrDataDir are wrapped by the errors of New and Start that
// come from the listening address and the data folder, so that a caller can
// say which setting to change.
var (
	ErrListen  = errors.New("cannot listen")
	ErrDataDir = errors.New("cannot create data folder")
)

// loadServentID reads the persisted servent ID, or makes and saves one.
func loadServentID(dir string) (protocol.GUID, error) {
	if dir == "" {
		return protocol.NewGUID(), nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return protocol.GUID{}, fmt.Errorf("%w %s: %w", ErrDataDir, dir, err)
	}
	path := filepath.Join(dir, "servent_id")
	if b, err := os.ReadFile(path); err == nil {
		if id, err := protocol.ParseGUID(string(trimSpace(b))); err == nil {
			return id, nil
		}
	}
	id := protocol.NewGUID()
	if err := os.WriteFile(path, []byte(id.String()+"\n"), 0o644); err != nil {
		return id, fmt.Errorf("cannot save servent ID in %s: %w", dir, err)
	}
	return id, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// CheckPeer resolves a --peer value (see Config.Peers) and returns its
// address, and nil or why the host cache's address policy refuses it (a
// *firewall.AddrError, matching firewall.ErrAddrRefused: loopback or
// private without AllowLoopback or AllowPrivate, or hostile). Start dials
// a --peer refused only for being loopback or private all the same
// (hostcache.Waivable), but does not pass it on to other servents.
func (s *Servent) CheckPeer(p string) (netip.AddrPort, error) {
	ap, err := resolvePeer(p)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if err := s.hosts.Refusal(ap); err != nil {
		return ap, err
	}
	return ap, nil
}

// resolvePeer turns a --peer value into an address: "host:port", or a bare
// host with the default port (protocol.DefaultPort).
func resolvePeer(p string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(p); err == nil {
		return ap, nil
	}
	if a, err := netip.ParseAddr(p); err == nil {
		return netip.AddrPortFrom(a, protocol.DefaultPort), nil
	}
	host, port, err := net.SplitHostPort(p)
	if err != nil {
		host, port = p, strconv.Itoa(protocol.DefaultPort)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
	if err != nil || len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("cannot resolve %q: %v", host, err)
	}
	pn, err := net.LookupPort("tcp", port)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(addrs[0].Unmap(), uint16(pn)), nil
}

// Mode is the role the servent plays now: ModeLeaf or ModeUltrapeer (a
// servent in ModeAuto plays one of the two).
func (s *Servent) Mode() Mode { return Mode(s.mode.Load()) }

func (s *Servent) isLeaf() bool { return s.Mode() == ModeLeaf }
