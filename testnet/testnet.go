// Package testnet runs many servents on one machine: in one process over
// loopback TCP or over the in-memory network, in a chosen topology, to show
// search, routing and transfers working and to measure them. It sits at the
// top beside main: it drives servent.Nodes (and the in-memory network of
// servent/memnet) and is driven by the `gnutella testnet` commands. Its
// sub-packages that main does not link are await (waiting in tests), netns
// (network-namespace labs) and plot (experiment plots).
package testnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"gnutella/servent"
	"gnutella/servent/memnet"
)

// TransportKind selects how the servents talk.
type TransportKind string

const (
	// TCP runs every servent on its own 127.0.0.1 port.
	TCP TransportKind = "tcp"
	// Memory runs them over the in-memory network (no sockets).
	Memory TransportKind = "mem"
)

// Options describe a network to start.
type Options struct {
	N         int
	Transport TransportKind
	Topology  Topology
	Seed      uint64
	// Configure adjusts node i's config before it starts (hooks, mode,
	// shared folders...).
	Configure func(i int, c *servent.NodeConfig)
	// LinkTimeout bounds the wait for every link to come up.
	LinkTimeout time.Duration
	// Progress, when set, is told how the network forms.
	Progress io.Writer
}

// Network is a running testnet.
type Network struct {
	Nodes    []*servent.Node
	Servents []*servent.Servent // Nodes[i].Servent
	Edges    []Edge
	Mem      *memnet.Network // nil over TCP
	opts     Options
}

// BaseConfig is the servent config a testnet starts from: loopback
// addresses allowed, no dialling of its own (the topology decides the links)
// and short timers.
func BaseConfig() servent.Config {
	return BaseNodeConfig().Config
}

// BaseNodeConfig is the node config a testnet starts from: BaseConfig, no
// control API, reachable (firewalled hosts are configured so explicitly),
// callbacks to loopback allowed, and paces scaled down for a machine where
// a hop takes microseconds.
func BaseNodeConfig() servent.NodeConfig {
	n := servent.DefaultNodeConfig()
	n.AssumeReachable = true
	n.AcceptLocalProof = true
	n.PushPolicy.AllowLoopback = true
	n.PushPolicy.AllowPrivate = true
	// Every host shares 127.0.0.1: the per-IP push limit (5 per 30 s)
	// would be one for the whole machine.
	n.PushPolicy.PerIP = 1000
	// and the upload slots and queue places one address may hold would
	// let one servent of the testnet download from another at a time
	n.UploadsPerIP, n.QueuePerIP = -1, -1
	n.Rescan = 0
	c := &n.Config
	c.ListenAddr = "127.0.0.1:0"
	c.WantLinks = 0
	c.MaxLinks = 64
	c.AllowLoopback = true
	c.AllowPrivate = true
	c.ByeGrace = 2 * time.Second
	c.HandshakeTimeout = 10 * time.Second
	c.ConnectTimeout = 10 * time.Second
	// Every servent of a TCP testnet dials from 127.0.0.1, and the
	// topology links them all at once: one address, many honest peers.
	c.MaxPending, c.MaxPendingPerAddr = 1024, 1024
	c.QRPAggregateInterval = 200 * time.Millisecond
	c.DQPerHop = 150 * time.Millisecond
	c.DQProbeWait = 300 * time.Millisecond
	return n
}

// Start starts opts.N servents and links them as the topology says. It
// returns once every servent has all its links, or fails and stops them.
func Start(ctx context.Context, opts Options) (*Network, error) {
	if opts.N <= 0 {
		return nil, errors.New("testnet: N must be positive")
	}
	if opts.Transport == "" {
		opts.Transport = TCP
	}
	if opts.Topology == nil {
		opts.Topology = Random{MeanDegree: 4}
	}
	if opts.LinkTimeout == 0 {
		opts.LinkTimeout = 60 * time.Second
	}
	n := &Network{opts: opts}
	if opts.Transport == Memory {
		n.Mem = memnet.New()
	}
	roles, _ := opts.Topology.(Roles)
	for i := 0; i < opts.N; i++ {
		c := BaseNodeConfig()
		if n.Mem != nil {
			ip := n.Mem.NextIP()
			c.Transport = n.Mem.Host(ip)
			c.ListenAddr = netip.AddrPortFrom(ip, 6346).String()
			// The in-memory network is for scale: TLS handshakes (which
			// servents would make once pongs said TLS) cost a third of
			// the time of a 300-servent run and are not what it studies.
			// Configure may turn TLS back on.
			c.TLS = false
		}
		if roles != nil && roles.Leaf(i) {
			c.Mode = servent.ModeLeaf
		}
		// every servent's random choices (walker hops, gossip) derive from
		// the run's seed, so a run can be replayed
		c.Seed = opts.Seed<<20 + uint64(i) + 1
		if opts.Configure != nil {
			opts.Configure(i, &c)
		}
		s, err := servent.NewNode(c)
		if err == nil {
			err = s.Start()
		}
		if err != nil {
			n.Stop()
			return nil, fmt.Errorf("testnet: servent %d: %w", i, err)
		}
		n.Nodes = append(n.Nodes, s)
		n.Servents = append(n.Servents, s.Servent)
	}
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	n.Edges = opts.Topology.Edges(opts.N, rng)
	if err := n.link(ctx); err != nil {
		n.Stop()
		return nil, err
	}
	return n, nil
}

// linkAttempts is how many times link dials one edge before giving up.
const linkAttempts = 3

// link dials every edge (a bounded number at a time) and waits for both
// ends of each to be up.
func (n *Network) link(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.opts.LinkTimeout)
	defer cancel()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	errs := make(chan error, len(n.Edges))
	for _, e := range n.Edges {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a, b := n.Servents[e.A], n.Servents[e.B]
			// A loaded machine (hundreds of servents, a build beside them)
			// can make one handshake miss its timeout: try an edge up to
			// linkAttempts times before the whole network fails.
			var err error
			for try := 1; try <= linkAttempts; try++ {
				if _, err = a.Connect(ctx, b.Addr()); err == nil || ctx.Err() != nil {
					break
				}
			}
			if err != nil {
				errs <- fmt.Errorf("testnet: link %d→%d: %w", e.A, e.B, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	for i, d := range degrees(len(n.Servents), n.Edges) {
		// A link that came up and went again (its peer's handshake ended
		// by a timeout on a loaded machine) is dialled once more.
		for try := 1; try < linkAttempts; try++ {
			wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
			err := n.Servents[i].WaitLinks(wctx, d)
			wcancel()
			if err == nil || ctx.Err() != nil {
				break
			}
			for _, e := range n.missingEdges(i) {
				_, _ = n.Servents[e.A].Connect(ctx, n.Servents[e.B].Addr())
			}
		}
		if err := n.Servents[i].WaitLinks(ctx, d); err != nil {
			return fmt.Errorf("testnet: servent %d: %w (no link on edges %v)", i, err, n.missingEdges(i))
		}
		if p := n.opts.Progress; p != nil && (i+1)%10 == 0 {
			fmt.Fprintf(p, "  ... %d of %d servents linked\n", i+1, len(n.Servents))
		}
	}
	return nil
}

// missingEdges are the edges of servent i that neither end has a link on.
func (n *Network) missingEdges(i int) []Edge {
	var missing []Edge
	for _, e := range n.Edges {
		if e.A != i && e.B != i {
			continue
		}
		if !linked(n.Servents[e.A], n.Servents[e.B]) && !linked(n.Servents[e.B], n.Servents[e.A]) {
			missing = append(missing, e)
		}
	}
	return missing
}

// linked says whether a has a link to b.
func linked(a, b *servent.Servent) bool {
	for _, l := range a.Links() {
		if l.PeerID == b.ID() {
			return true
		}
	}
	return false
}

// Stop stops every servent and waits for them.
func (n *Network) Stop() error {
	var wg sync.WaitGroup
	errs := make([]error, len(n.Nodes))
	for i, s := range n.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Stop()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Neighbours lists, for each servent, the indexes it links to.
func (n *Network) Neighbours() [][]int {
	nb := make([][]int, len(n.Servents))
	for _, e := range n.Edges {
		nb[e.A] = append(nb[e.A], e.B)
		nb[e.B] = append(nb[e.B], e.A)
	}
	return nb
}

// Distances returns the hop distance from servent src to every servent
// (-1 where unreachable), by breadth-first search over the edges.
func (n *Network) Distances(src int) []int {
	nb := n.Neighbours()
	d := make([]int, len(n.Servents))
	for i := range d {
		d[i] = -1
	}
	d[src] = 0
	queue := []int{src}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		for _, y := range nb[x] {
			if d[y] < 0 {
				d[y] = d[x] + 1
				queue = append(queue, y)
			}
		}
	}
	return d
}
