package testnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent"
	"gnutella/ultrapeer"
)

// Search experiments: one network, content placed by a replication scheme,
// queries drawn by popularity, and every strategy run on the same queries
// (same origins, same files), one query at a time with the network quiet
// in between, so every query message can be counted network-wide by GUID
// (Config.Trace) and a strategy's cost is exactly what it sent. See
// docs/experiments.md.

// ExperimentConfig describes an experiment. Zero fields take the defaults
// given beside them.
type ExperimentConfig struct {
	Topology  Topology      // nil: Random{MeanDegree: 4}
	N         int           // servents (1000)
	Transport TransportKind // Memory (the default here) or TCP
	Seed      uint64        // topology, content, queries and walkers all derive from it

	Files            int     // M distinct files (100)
	Replication      string  // uniform (default), proportional or sqrt
	ReplicationRatio float64 // mean fraction of servents holding a file (0.01)
	ZipfS            float64 // Zipf exponent of query popularity (1)

	Queries    int                // queries per strategy (100)
	Strategies []routing.Strategy // nil: DefaultStrategies(Topology, N, Seed)
	Timeout    time.Duration      // per query: success is a hit within it (10 s)

	// Churn > 0 runs ChurnStrategies again with that fraction of servents
	// down (ChurnLevels, when set, gives several fractions instead). Every
	// ChurnEvery queries (10) a ChurnTurnover share (0.5) of the down
	// servents come back and as many others leave.
	Churn           float64
	ChurnLevels     []float64
	ChurnStrategies []routing.Strategy // nil: the walkers and the widest flood of Strategies
	ChurnEvery      int
	ChurnTurnover   float64

	// DQPerHop and DQProbeWait pace the ultrapeers' dynamic querying (50 ms
	// and 100 ms: a hop takes microseconds in memory).
	DQPerHop, DQProbeWait time.Duration
	// FilesOnDisk writes every servent's files into a temporary folder of
	// its own (removed at the end) and shares them (library, hashing, QRP
	// from the library) instead of answering from memory. Meant for
	// hundreds or thousands of servents, not 10,000.
	FilesOnDisk bool
	// Configure, when set, adjusts each servent's config last.
	Configure func(i int, c *servent.NodeConfig)

	Out string // directory for results.csv and results.json ("" = none); testnet/plot draws the plots from them
}

// Result is what one strategy did over its queries.
type Result struct {
	Strategy             string        `json:"strategy"`
	Kind                 string        `json:"kind"` // flood, ring, walk, gossip, dq
	TTL                  int           `json:"ttl,omitempty"`
	Walkers              int           `json:"walkers,omitempty"`
	Topology             string        `json:"topology"`
	N                    int           `json:"n"`
	Replication          string        `json:"replication"`
	Queries              int           `json:"queries"`
	SuccessRate          float64       `json:"success_rate"`
	MessagesPerQuery     float64       `json:"messages_per_query"`
	MessagesPerNode      float64       `json:"messages_per_node"` // per query and servent up
	DuplicatesPerQuery   float64       `json:"duplicates_per_query"`
	NodesVisitedPerQuery float64       `json:"nodes_visited_per_query"`
	PeakNodeMessages     float64       `json:"peak_node_messages"` // the busiest servent's share of a query, mean
	MeanHopsFirstHit     float64       `json:"mean_hops_first_hit"`
	MeanTimeFirstHit     time.Duration `json:"mean_time_first_hit_ns"`
	ResultsPerQuery      float64       `json:"results_per_query"`
	WalkChecksPerQuery   float64       `json:"walk_checks_per_query,omitempty"`
	Churn                float64       `json:"churn"`
	Seconds              float64       `json:"seconds"`
}

// NetworkFigures describe how the network came up and what it cost.
type NetworkFigures struct {
	Topology      string  `json:"topology"`
	N             int     `json:"n"`
	Transport     string  `json:"transport"`
	Edges         int     `json:"edges"`
	MeanDegree    float64 `json:"mean_degree"`
	MaxDegree     int     `json:"max_degree"`
	StartSeconds  float64 `json:"start_seconds"`
	Goroutines    int     `json:"goroutines"`
	HeapMiB       float64 `json:"heap_mib_after_start"`
	PeakRSSMiB    float64 `json:"peak_rss_mib"` // getrusage maxrss of the whole process, at the end
	TotalSeconds  float64 `json:"total_seconds"`
	CopiesPlaced  int     `json:"copies_placed"`
	LostMessages  int64   `json:"lost_messages,omitempty"` // in flight to servents that churn stopped
	NoQuietPeriod int     `json:"quiet_timeouts,omitempty"`
}

// Report is everything an experiment wrote.
type Report struct {
	Config     map[string]any `json:"config"`
	Network    NetworkFigures `json:"network"`
	Results    []Result       `json:"results"`
	Comparison []Comparison   `json:"lv_comparison"`
}

// DefaultExperimentConfig returns the documented defaults (the CLI's flags
// read them): 1,000 servents in memory on a random graph of mean degree 4,
// DefaultContentConfig's content, 100 queries per strategy with 10 s each,
// seed 1, and dynamic querying paced for an in-memory network.
func DefaultExperimentConfig() ExperimentConfig {
	cc := DefaultContentConfig()
	return ExperimentConfig{
		Topology: Random{MeanDegree: 4}, N: 1000, Transport: Memory, Seed: 1,
		Files: cc.Files, Replication: cc.Replication, ReplicationRatio: cc.Ratio, ZipfS: cc.ZipfS,
		Queries: 100, Timeout: 10 * time.Second, ChurnEvery: 10, ChurnTurnover: 0.5,
		DQPerHop: 50 * time.Millisecond, DQProbeWait: 100 * time.Millisecond,
	}
}

func (c ExperimentConfig) withDefaults() ExperimentConfig {
	d := DefaultExperimentConfig()
	if c.Topology == nil {
		c.Topology = d.Topology
	}
	if c.N <= 0 {
		c.N = d.N
	}
	if c.Transport == "" {
		c.Transport = d.Transport
	}
	if c.Queries <= 0 {
		c.Queries = d.Queries
	}
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.Strategies == nil {
		c.Strategies = DefaultStrategies(c.Topology, c.N, c.Seed)
	}
	if c.ChurnEvery <= 0 {
		c.ChurnEvery = d.ChurnEvery
	}
	if c.ChurnTurnover <= 0 {
		c.ChurnTurnover = d.ChurnTurnover
	}
	if c.DQPerHop <= 0 {
		c.DQPerHop = d.DQPerHop
	}
	if c.DQProbeWait <= 0 {
		c.DQProbeWait = d.DQProbeWait
	}
	if c.ChurnLevels == nil && c.Churn > 0 {
		c.ChurnLevels = []float64{c.Churn}
	}
	return c
}

// LeafDynamicQuery is a leaf's search in a two-tier network: the leaf sends
// its query to its ultrapeers, and each of them runs dynamic querying for
// it (servent's leaf DQ, paced by DQPerHop and DQProbeWait).
type LeafDynamicQuery struct{ TTL uint8 }

// Name implements routing.Strategy.
func (LeafDynamicQuery) Name() string { return "dq(leaf)" }

// Run implements routing.Strategy.
func (d LeafDynamicQuery) Run(ctx context.Context, s *routing.Search, n routing.Network) {
	routing.Flood{TTL: max(d.TTL, 2)}.Run(ctx, s, n)
}

// ttlSweep is the flooding TTLs tried on a topology: up to about where a
// flood reaches everything (or the hard TTL limit, on the grid).
func ttlSweep(topo Topology, n int) []uint8 {
	top := uint8(8)
	switch topo.(type) {
	case PowerLaw:
		top = 7
	case Grid:
		var out []uint8
		for ttl := uint8(2); ttl <= 14; ttl += 2 {
			out = append(out, ttl)
		}
		return out
	case TwoTier:
		top = 5
	}
	if n < 2000 {
		top = min(top, 6)
	}
	var out []uint8
	for ttl := uint8(1); ttl <= top; ttl++ {
		out = append(out, ttl)
	}
	return out
}

// DefaultStrategies is the comparison of Lv et al. for topo: flooding over
// a TTL sweep, the expanding ring (TTL 1, 3, 5, ...), 16, 32 and 64 random
// walkers with checking (budget 1024 steps each), gossip (p 0.5 at the
// widest TTL) and, on a two-tier network, the leaves' dynamic querying.
func DefaultStrategies(topo Topology, n int, seed uint64) []routing.Strategy {
	sweep := ttlSweep(unfix(topo), n)
	top := sweep[len(sweep)-1]
	var out []routing.Strategy
	for _, ttl := range sweep {
		out = append(out, routing.Flood{TTL: ttl})
	}
	out = append(out, routing.Ring{Start: 1, Step: 2, Max: top, Wait: 30 * time.Millisecond})
	for k, walkers := range []int{16, 32, 64} {
		out = append(out, routing.Walk{K: walkers, Budget: 1024, Check: true,
			Rand: rand.New(rand.NewPCG(seed, uint64(100+k)))})
	}
	out = append(out, routing.Gossip{P: 0.5, TTL: top, Rand: rand.New(rand.NewPCG(seed, 200))})
	if _, ok := unfix(topo).(Roles); ok {
		out = append(out, LeafDynamicQuery{TTL: 4})
	}
	return out
}

// ParseStrategies builds a strategy list from names separated by commas:
// flood (the whole TTL sweep) or flood:T, ring or ring:MAX, walk (16, 32
// and 64 walkers) or walk:K, gossip or gossip:P, dq, guess or guess:HOSTS
// (TCP transport only); "all" or "" is DefaultStrategies.
func ParseStrategies(list string, topo Topology, n int, seed uint64) ([]routing.Strategy, error) {
	def := DefaultStrategies(topo, n, seed)
	if list == "" || list == "all" {
		return def, nil
	}
	sweep := ttlSweep(unfix(topo), n)
	top := sweep[len(sweep)-1]
	var out []routing.Strategy
	for i, item := range strings.Split(list, ",") {
		name, arg, _ := strings.Cut(strings.TrimSpace(item), ":")
		num := func(d float64) (float64, error) {
			if arg == "" {
				return d, nil
			}
			return strconv.ParseFloat(arg, 64)
		}
		rng := rand.New(rand.NewPCG(seed, uint64(300+i)))
		switch name {
		case "flood":
			if arg == "" {
				for _, ttl := range sweep {
					out = append(out, routing.Flood{TTL: ttl})
				}
				continue
			}
			v, err := num(0)
			if err != nil || v < 1 || v > 15 {
				return nil, fmt.Errorf("bad flood TTL %q", arg)
			}
			out = append(out, routing.Flood{TTL: uint8(v)})
		case "ring":
			v, err := num(float64(top))
			if err != nil || v < 1 || v > 15 {
				return nil, fmt.Errorf("bad ring maximum %q", arg)
			}
			out = append(out, routing.Ring{Start: 1, Step: 2, Max: uint8(v), Wait: 30 * time.Millisecond})
		case "walk":
			if arg == "" {
				for k, w := range []int{16, 32, 64} {
					out = append(out, routing.Walk{K: w, Budget: 1024, Check: true, Rand: rand.New(rand.NewPCG(seed, uint64(400+10*i+k)))})
				}
				continue
			}
			v, err := num(0)
			if err != nil || v < 1 || v > 255 {
				return nil, fmt.Errorf("bad walker count %q", arg)
			}
			out = append(out, routing.Walk{K: int(v), Budget: 1024, Check: true, Rand: rng})
		case "gossip":
			v, err := num(0.5)
			if err != nil || v <= 0 || v > 1 {
				return nil, fmt.Errorf("bad gossip probability %q", arg)
			}
			out = append(out, routing.Gossip{P: v, TTL: top, Rand: rng})
		case "dq":
			out = append(out, LeafDynamicQuery{TTL: 4})
		case "guess":
			v, err := num(routing.DefaultGUESSHosts)
			if err != nil || v < 1 || v > routing.MaxGUESSHosts {
				return nil, fmt.Errorf("bad GUESS host count %q", arg)
			}
			out = append(out, routing.GUESS{MaxHosts: int(v), Wait: 30 * time.Millisecond})
		default:
			return nil, fmt.Errorf("unknown strategy %q: use flood, ring, walk, gossip, dq or guess", name)
		}
	}
	return out, nil
}

func unfix(t Topology) Topology {
	switch f := t.(type) {
	case fixedEdges:
		return f.orig
	case fixedRoles:
		return f.orig
	}
	return t
}

// kindOf describes a strategy for tables and plots.
func kindOf(st routing.Strategy) (kind string, ttl, walkers int) {
	switch s := st.(type) {
	case routing.Flood:
		return "flood", int(s.TTL), 0
	case routing.Ring:
		return "ring", int(s.Max), 0
	case routing.Walk:
		return "walk", 0, s.K
	case routing.Gossip:
		return "gossip", int(s.TTL), 0
	case LeafDynamicQuery, routing.DynamicQuery:
		return "dq", 0, 0
	case routing.GUESS:
		return "guess", 0, 0
	}
	return st.Name(), 0, 0
}

// queryCounter counts, network-wide, the query messages each GUID caused:
// every copy handed to a router (Config.Trace), duplicates apart, and per
// servent.
type queryCounter struct {
	mu sync.Mutex
	m  map[protocol.GUID]*guidCount
}

type guidCount struct {
	total, dups int
	perNode     map[int32]int32
}

func (c *queryCounter) hook(i int) func(*servent.Link, protocol.Header, bool) {
	return func(_ *servent.Link, h protocol.Header, dup bool) {
		if h.Type != protocol.TypeQuery {
			return
		}
		c.mu.Lock()
		g := c.m[h.ID]
		if g == nil {
			g = &guidCount{perNode: map[int32]int32{}}
			c.m[h.ID] = g
		}
		g.total++
		if dup {
			g.dups++
		}
		g.perNode[int32(i)]++
		c.mu.Unlock()
	}
}

// take returns (and forgets) the counts of the given GUIDs.
func (c *queryCounter) take(ids []protocol.GUID) (total, dups, visited, peak int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	nodes := map[int32]int32{}
	for _, id := range ids {
		g := c.m[id]
		if g == nil {
			continue
		}
		delete(c.m, id)
		total += g.total
		dups += g.dups
		for k, v := range g.perNode {
			nodes[k] += v
		}
	}
	for _, v := range nodes {
		peak = max(peak, int(v))
	}
	return total, dups, len(nodes), peak
}

// experiment is one running experiment.
type experiment struct {
	cfg      ExperimentConfig
	net      *Network
	content  *Content
	counter  *queryCounter
	churn    *Churn
	progress io.Writer
	leaves   []bool
	baseline int64 // sent − handled when the network is quiet (churn loses messages)
	figures  NetworkFigures
}

// RunExperiment starts the network, runs every strategy and writes the
// results (a table to progress; CSV and JSON to cfg.Out).
func RunExperiment(ctx context.Context, cfg ExperimentConfig, progress io.Writer) ([]Result, error) {
	rep, err := RunExperimentReport(ctx, cfg, progress)
	if rep == nil {
		return nil, err
	}
	return rep.Results, err
}

// RunExperimentReport is RunExperiment returning the whole report.
func RunExperimentReport(ctx context.Context, cfg ExperimentConfig, progress io.Writer) (*Report, error) {
	began := time.Now()
	if progress == nil {
		progress = io.Discard
	}
	cfg = cfg.withDefaults()
	if cfg.Transport == Memory && (hasGUESS(cfg.Strategies) || hasGUESS(cfg.ChurnStrategies)) {
		return nil, errGUESSMemory
	}
	x := &experiment{cfg: cfg, counter: &queryCounter{m: map[protocol.GUID]*guidCount{}}, progress: progress}
	topo := Fix(cfg.Topology, cfg.N, cfg.Seed)
	edges := topo.Edges(cfg.N, nil)
	deg := degrees(cfg.N, edges)
	roles, isTwoTier := topo.(Roles)
	x.leaves = make([]bool, cfg.N)
	for i := range x.leaves {
		x.leaves[i] = isTwoTier && roles.Leaf(i)
	}
	content, err := NewContent(cfg.N, ContentConfig{Files: cfg.Files, Replication: cfg.Replication,
		Ratio: cfg.ReplicationRatio, ZipfS: cfg.ZipfS}, rand.New(rand.NewPCG(cfg.Seed, 2)))
	if err != nil {
		return nil, err
	}
	x.content = content
	maxTTL := uint8(7)
	for _, st := range append(append([]routing.Strategy(nil), cfg.Strategies...), cfg.ChurnStrategies...) {
		if _, ttl, _ := kindOf(st); ttl > int(maxTTL) {
			maxTTL = uint8(min(ttl, 15))
		}
	}
	var diskDirs []string
	if cfg.FilesOnDisk {
		root, err := os.MkdirTemp("", "gnutella-experiment-files-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(root)
		diskDirs = make([]string, cfg.N)
		for i := range cfg.N {
			if len(content.byNode[i]) == 0 {
				continue
			}
			diskDirs[i] = filepath.Join(root, strconv.Itoa(i))
			if err := content.WriteFiles(diskDirs[i], i); err != nil {
				return nil, err
			}
		}
	}
	tables := make([]*ultrapeer.Table, cfg.N)
	configure := func(i int, c *servent.NodeConfig) {
		c.Deflate = false                   // memory: the inflater's window is most of a link's cost
		c.PongCaching = false               // no pong-cache refresh pings
		c.AlivePingInterval = 3 * time.Hour // no alive pings during a run (they would keep the network from being quiet)
		c.IdleTimeout = 6 * time.Hour
		c.FlowControlTimeout = 6 * time.Hour
		c.HardTTL = 15
		c.MaxTTL = maxTTL
		c.MaxLinks = max(c.MaxLinks, deg[i]+8)
		c.DupCacheSize = 1 << 12 // queries run one at a time: a few thousand GUIDs is plenty
		c.RouteTableSize = 1 << 12
		c.DQPerHop, c.DQProbeWait = cfg.DQPerHop, cfg.DQProbeWait
		if !isTwoTier {
			c.UltrapeerQRP = false // flat network: flood to the last hop
		}
		c.Trace = x.counter.hook(i)
		if cfg.FilesOnDisk {
			if diskDirs[i] != "" {
				c.ShareDirs = []string{diskDirs[i]}
			}
		} else {
			lib := servent.StaticLibrary{Results: content.Answer(i)}
			if isTwoTier {
				if tables[i] == nil {
					tables[i] = content.QRPTable(i)
				}
				lib.Table = tables[i]
			}
			c.Library = lib
		}
		if cfg.Configure != nil {
			cfg.Configure(i, c)
		}
	}
	fmt.Fprintf(progress, "starting %d servents (%s, %s, seed %d): %d links, mean degree %.2f, max %d\n",
		cfg.N, cfg.Transport, topo, cfg.Seed, len(edges), 2*float64(len(edges))/float64(cfg.N), maxInt(deg))
	t0 := time.Now()
	net, err := Start(ctx, Options{N: cfg.N, Transport: cfg.Transport, Topology: topo, Seed: cfg.Seed,
		Configure: configure, LinkTimeout: 10*time.Minute + time.Duration(cfg.N)*20*time.Millisecond})
	if err != nil {
		return nil, err
	}
	x.net = net
	defer func() { _ = x.stopAll() }()
	copies := 0
	for _, f := range content.Files {
		copies += len(f.Holders)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	x.figures = NetworkFigures{Topology: topo.String(), N: cfg.N, Transport: string(cfg.Transport), Edges: len(edges),
		MeanDegree: 2 * float64(len(edges)) / float64(cfg.N), MaxDegree: maxInt(deg),
		StartSeconds: time.Since(t0).Seconds(), Goroutines: runtime.NumGoroutine(), HeapMiB: float64(ms.HeapAlloc) / (1 << 20),
		CopiesPlaced: copies}
	fmt.Fprintf(progress, "linked in %.1f s: %d goroutines, heap %.0f MiB, peak RSS so far %.0f MiB; %d files, %d copies (%s)\n",
		x.figures.StartSeconds, x.figures.Goroutines, x.figures.HeapMiB, peakRSSMiB(), len(content.Files), copies, content.Config.Replication)
	if cfg.FilesOnDisk {
		if err := x.hashLibraries(ctx); err != nil {
			return nil, err
		}
	}
	if isTwoTier {
		if err := x.waitTables(ctx); err != nil {
			return nil, err
		}
	}
	if hasGUESS(cfg.Strategies) || hasGUESS(cfg.ChurnStrategies) {
		x.introduceGUESS(ctx)
	}
	if err := x.settle(ctx); err != nil {
		return nil, err
	}
	var results []Result
	for _, st := range cfg.Strategies {
		r, err := x.runStrategy(ctx, st, 0)
		if err != nil {
			return nil, err
		}
		results = append(results, r)
		fmt.Fprintln(progress, "  "+r.line())
	}
	if len(cfg.ChurnLevels) > 0 {
		churnSts := cfg.ChurnStrategies
		if churnSts == nil {
			churnSts = churnDefaults(cfg.Strategies)
		}
		x.churn = NewChurn(net, cfg.Seed)
		for _, level := range cfg.ChurnLevels {
			for _, st := range churnSts {
				if err := x.churn.SetDown(ctx, level); err != nil {
					return nil, err
				}
				if err := x.settle(ctx); err != nil {
					return nil, err
				}
				r, err := x.runStrategy(ctx, st, level)
				if err != nil {
					return nil, err
				}
				results = append(results, r)
				fmt.Fprintln(progress, "  "+r.line())
			}
		}
		if err := x.churn.Restore(ctx); err != nil {
			return nil, err
		}
	}
	x.figures.TotalSeconds = time.Since(began).Seconds()
	x.figures.PeakRSSMiB = peakRSSMiB()
	rep := &Report{Config: cfg.describe(), Network: x.figures, Results: results, Comparison: Compare(results)}
	fmt.Fprintln(progress)
	WriteTable(progress, rep)
	fmt.Fprintf(progress, "\ntotal %.1f s, peak RSS %.0f MiB\n", x.figures.TotalSeconds, x.figures.PeakRSSMiB)
	if cfg.Out != "" {
		if err := WriteAll(cfg.Out, rep); err != nil {
			return rep, err
		}
		fmt.Fprintf(progress, "wrote %s/{results.csv,results.json}; plots: go run ./testnet/plot/cmd/plot %s\n", cfg.Out, cfg.Out)
	}
	return rep, nil
}

// churnDefaults picks, of strategies, the walkers, the widest flood and the ring.
func churnDefaults(sts []routing.Strategy) []routing.Strategy {
	var out []routing.Strategy
	var widest routing.Strategy
	top := 0
	for _, st := range sts {
		switch kind, ttl, _ := kindOf(st); kind {
		case "walk", "ring", "dq":
			out = append(out, st)
		case "flood":
			if ttl > top {
				top, widest = ttl, st
			}
		}
	}
	if widest != nil {
		out = append([]routing.Strategy{widest}, out...)
	}
	return out
}

func (c ExperimentConfig) describe() map[string]any {
	var names []string
	for _, s := range c.Strategies {
		names = append(names, s.Name())
	}
	return map[string]any{
		"topology": c.Topology.String(), "n": c.N, "transport": string(c.Transport), "seed": c.Seed,
		"files": c.Files, "replication": c.Replication, "replication_ratio": c.ReplicationRatio, "zipf_s": c.ZipfS,
		"queries": c.Queries, "strategies": names, "timeout": c.Timeout.String(), "churn_levels": c.ChurnLevels,
		"churn_every": c.ChurnEvery, "churn_turnover": c.ChurnTurnover, "dq_per_hop": c.DQPerHop.String(),
		"dq_probe_wait": c.DQProbeWait.String(), "files_on_disk": c.FilesOnDisk,
		"go": runtime.Version(), "cpus": runtime.NumCPU(),
	}
}

func maxInt(v []int) int {
	m := 0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// peakRSSMiB is the process's peak resident set (getrusage maxrss, KiB on Linux).
func peakRSSMiB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}

func (x *experiment) stopAll() error {
	var wg sync.WaitGroup
	for i, s := range x.net.Nodes {
		if x.churn != nil && !x.churn.Up(i) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.Stop()
		}()
	}
	wg.Wait()
	return nil
}

// hashLibraries waits until every shared library has hashed its files.
func (x *experiment) hashLibraries(ctx context.Context) error {
	for _, nd := range x.net.Nodes {
		if nd.Library == nil {
			continue
		}
		if err := nd.Library.Rescan(); err != nil {
			return err
		}
		if err := nd.Library.HashAll(ctx); err != nil {
			return err
		}
	}
	return nil
}

// waitTables waits until every ultrapeer holds the QRP table of each leaf.
func (x *experiment) waitTables(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		missing := 0
		for _, s := range x.net.Servents {
			for _, l := range s.Links() {
				if l.Kind == servent.LinkLeaf && l.PeerTable() == nil {
					missing++
				}
			}
		}
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testnet: %d leaf QRP tables still missing", missing)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// balance sums the message balance of every servent.
func (x *experiment) balance() (sent, handled int64) {
	for _, s := range x.net.Servents {
		a, b := s.MessageBalance()
		sent += a
		handled += b
	}
	return sent, handled
}

// settle waits until the counts stop moving (after start-up or churn) and
// takes the imbalance left then as the new baseline: messages that were on
// their way to a servent that stopped are never handled.
func (x *experiment) settle(ctx context.Context) error {
	lastS, lastH := int64(-1), int64(-1)
	stable := 0
	for stable < 25 { // 25 looks, 4 ms apart, with nothing moving
		s, h := x.balance()
		if s == lastS && h == lastH {
			stable++
		} else {
			stable = 0
		}
		lastS, lastH = s, h
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(4 * time.Millisecond):
		}
	}
	if d := lastS - lastH; d != x.baseline {
		x.figures.LostMessages += d - x.baseline
		x.baseline = d
	}
	return nil
}

// quietFor waits until nothing is in flight and nothing moved for idle, or
// done is closed (then until nothing is in flight). It gives up after
// limit (and takes what is left as lost).
func (x *experiment) quietFor(ctx context.Context, done <-chan struct{}, idle, limit time.Duration) error {
	start := time.Now()
	lastS, lastH := int64(-1), int64(-1)
	var since time.Time
	for {
		s, h := x.balance()
		now := time.Now()
		if s == lastS && h == lastH && s-h == x.baseline {
			if since.IsZero() {
				since = now
			}
			finished := false
			select {
			case <-done:
				finished = true
			default:
			}
			if (finished && now.Sub(since) >= 4*time.Millisecond) || now.Sub(since) >= idle {
				return nil
			}
		} else {
			since = time.Time{}
		}
		lastS, lastH = s, h
		if now.Sub(start) > limit {
			x.figures.NoQuietPeriod++
			return x.settle(ctx)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// idleBound is how long a strategy can stay silent while still running:
// the network must be quiet that long before its search is taken as over.
func (x *experiment) idleBound(st routing.Strategy) time.Duration {
	const slack = 25 * time.Millisecond
	switch s := st.(type) {
	case routing.Ring:
		return s.Wait*time.Duration(s.Max) + slack
	case LeafDynamicQuery, routing.DynamicQuery:
		return max(x.cfg.DQProbeWait, x.cfg.DQPerHop*time.Duration(max(x.net.Servents[0].Config().MaxTTL, 4))) + slack
	case routing.Walk:
		return 2 * slack // a walker waits for its originator's answer every 4 steps
	case routing.GUESS:
		return x.cfg.Timeout // its probes go by UDP, which the balance does not see: wait for the search's end
	}
	return slack
}

// enough is the result count at which a strategy stops: the ring stops
// expanding and the walkers stop walking at the first hit (Lv et al.);
// flooding and gossip cannot stop, and dynamic querying has its own target.
func enough(st routing.Strategy) int {
	switch st.(type) {
	case routing.Ring, routing.Walk, routing.GUESS:
		return 1
	}
	return 0
}

// origins are the servents a strategy's queries may start from: in a
// two-tier network, leaves for dynamic querying (an ultrapeer runs it for
// them) and ultrapeers for the rest (a leaf's query is always run as a
// dynamic query by its ultrapeers).
func (x *experiment) origins(st routing.Strategy) []int {
	kind, _, _ := kindOf(st)
	twoTier := slices.Contains(x.leaves, true)
	var out []int
	for i, leaf := range x.leaves {
		if x.churn != nil && !x.churn.Up(i) {
			continue
		}
		if !twoTier || leaf == (kind == "dq") {
			out = append(out, i)
		}
	}
	return out
}

// runStrategy runs cfg.Queries queries with st. The queries (file and
// origin) are the same for every strategy at a churn level.
func (x *experiment) runStrategy(ctx context.Context, st routing.Strategy, churn float64) (Result, error) {
	cfg := x.cfg
	kind, ttl, walkers := kindOf(st)
	r := Result{Strategy: st.Name(), Kind: kind, TTL: ttl, Walkers: walkers, Topology: x.figures.Topology, N: cfg.N,
		Replication: x.content.Config.Replication, Queries: cfg.Queries, Churn: churn}
	began := time.Now()
	qrng := rand.New(rand.NewPCG(cfg.Seed, 7+uint64(churn*1000)))
	var succ, hops, results, msgs, dups, visited, peak, checks, up int
	var firstHit time.Duration
	for k := 0; k < cfg.Queries; k++ {
		if x.churn != nil && churn > 0 && k > 0 && k%cfg.ChurnEvery == 0 {
			if err := x.churn.Turn(ctx, cfg.ChurnTurnover); err != nil {
				return r, err
			}
			if err := x.settle(ctx); err != nil {
				return r, err
			}
		}
		file := x.content.Draw(qrng)
		pick := qrng.Uint64()
		origins := x.origins(st)
		if len(origins) == 0 {
			return r, errors.New("testnet: no servent to search from")
		}
		origin := origins[pick%uint64(len(origins))]
		up += len(x.net.Servents) - x.downCount()
		checksBefore := x.walkChecks()
		s, done := x.net.Servents[origin].StartSearch(x.content.Query(file), st, enough(st), cfg.Timeout)
		if err := x.quietFor(ctx, done, x.idleBound(st), cfg.Timeout+30*time.Second); err != nil {
			return r, err
		}
		stats := s.Stats()
		total, dup, vis, pk := x.counter.take(s.GUIDs())
		msgs += total
		dups += dup
		visited += vis
		peak += pk
		results += stats.Results
		checks += int(x.walkChecks() - checksBefore)
		if stats.Results > 0 {
			succ++
			hops += int(stats.FirstHitHops) + 1 // a hit arrives with the relays it took: the responder is one further
			firstHit += stats.FirstHit
		}
	}
	q := float64(cfg.Queries)
	r.SuccessRate = float64(succ) / q
	r.MessagesPerQuery = float64(msgs) / q
	r.MessagesPerNode = float64(msgs) / float64(up)
	r.DuplicatesPerQuery = float64(dups) / q
	r.NodesVisitedPerQuery = float64(visited) / q
	r.PeakNodeMessages = float64(peak) / q
	r.ResultsPerQuery = float64(results) / q
	r.WalkChecksPerQuery = float64(checks) / q
	if succ > 0 {
		r.MeanHopsFirstHit = float64(hops) / float64(succ)
		r.MeanTimeFirstHit = firstHit / time.Duration(succ)
	}
	r.Seconds = time.Since(began).Seconds()
	return r, nil
}

func (x *experiment) downCount() int {
	if x.churn == nil {
		return 0
	}
	return x.churn.Down()
}

func (x *experiment) walkChecks() int64 {
	var t int64
	for _, s := range x.net.Servents {
		t += s.WalkChecks()
	}
	return t
}

func (r Result) line() string {
	return fmt.Sprintf("%-32s churn %3.0f%%  success %5.1f%%  msgs/query %9.1f  dups %8.1f  hops %4.1f  first hit %8s  results %5.1f  (%.1f s)",
		r.Strategy, 100*r.Churn, 100*r.SuccessRate, r.MessagesPerQuery, r.DuplicatesPerQuery, r.MeanHopsFirstHit,
		r.MeanTimeFirstHit.Round(10*time.Microsecond), r.ResultsPerQuery, r.Seconds)
}

// Comparison sets a random-walk result beside flooding, as Lv et al. do:
// the cheapest flood that reaches at least the walkers' success (or the
// most successful flood when none does), and the message ratio.
type Comparison struct {
	Topology     string  `json:"topology"`
	Walk         string  `json:"walk"`
	WalkSuccess  float64 `json:"walk_success"`
	WalkMessages float64 `json:"walk_messages"`
	Flood        string  `json:"flood"`
	FloodSuccess float64 `json:"flood_success"`
	FloodMsgs    float64 `json:"flood_messages"`
	Ratio        float64 `json:"ratio"` // flood messages / walk messages
	// The widest flood of the sweep (the one that reaches about everything,
	// as a fixed Gnutella TTL would) and its ratio.
	WidestFlood string  `json:"widest_flood"`
	WidestRatio float64 `json:"widest_ratio"`
	Churn       float64 `json:"churn"`
}

// Compare pairs every walker result with flooding at the same churn level.
func Compare(results []Result) []Comparison {
	var out []Comparison
	for _, w := range results {
		if w.Kind != "walk" && w.Kind != "ring" {
			continue
		}
		var floods []Result
		for _, f := range results {
			if f.Kind == "flood" && f.Churn == w.Churn && f.Topology == w.Topology {
				floods = append(floods, f)
			}
		}
		if len(floods) == 0 {
			continue
		}
		sort.Slice(floods, func(i, j int) bool { return floods[i].MessagesPerQuery < floods[j].MessagesPerQuery })
		best := floods[len(floods)-1]
		for _, f := range floods {
			if f.SuccessRate >= w.SuccessRate {
				best = f
				break
			}
		}
		for _, f := range floods {
			if f.SuccessRate > best.SuccessRate {
				best = f
			}
		}
		c := Comparison{Topology: w.Topology, Walk: w.Strategy, WalkSuccess: w.SuccessRate, WalkMessages: w.MessagesPerQuery,
			Flood: best.Strategy, FloodSuccess: best.SuccessRate, FloodMsgs: best.MessagesPerQuery, Churn: w.Churn}
		widest := floods[0]
		for _, f := range floods {
			if f.TTL > widest.TTL {
				widest = f
			}
		}
		c.WidestFlood = widest.Strategy
		if w.MessagesPerQuery > 0 {
			c.Ratio = best.MessagesPerQuery / w.MessagesPerQuery
			c.WidestRatio = widest.MessagesPerQuery / w.MessagesPerQuery
		}
		out = append(out, c)
	}
	return out
}

// WriteTable prints the results and the comparison as text tables.
func WriteTable(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "%s, %d servents over %s, %d edges (mean degree %.2f)\n", rep.Network.Topology, rep.Network.N,
		rep.Network.Transport, rep.Network.Edges, rep.Network.MeanDegree)
	fmt.Fprintf(w, "%-32s %6s %8s %10s %9s %9s %8s %6s %10s %8s\n", "strategy", "churn", "success", "msgs/query",
		"msgs/node", "dups/qry", "visited", "hops", "first hit", "results")
	for _, r := range rep.Results {
		fmt.Fprintf(w, "%-32s %5.0f%% %7.1f%% %10.1f %9.3f %9.1f %8.1f %6.2f %10s %8.2f\n", r.Strategy, 100*r.Churn,
			100*r.SuccessRate, r.MessagesPerQuery, r.MessagesPerNode, r.DuplicatesPerQuery, r.NodesVisitedPerQuery,
			r.MeanHopsFirstHit, r.MeanTimeFirstHit.Round(10*time.Microsecond), r.ResultsPerQuery)
	}
	if len(rep.Comparison) > 0 {
		fmt.Fprintf(w, "\nLv et al.'s comparison: the cheapest flood reaching the same success\n")
		fmt.Fprintf(w, "%-32s %6s %8s %10s   %-14s %8s %10s %8s   %s\n", "strategy", "churn", "success", "msgs/query", "flood", "success", "msgs/query", "ratio", "widest flood")
		for _, c := range rep.Comparison {
			fmt.Fprintf(w, "%-32s %5.0f%% %7.1f%% %10.1f   %-14s %7.1f%% %10.1f %7.1fx   %s %.0fx\n", c.Walk, 100*c.Churn, 100*c.WalkSuccess,
				c.WalkMessages, c.Flood, 100*c.FloodSuccess, c.FloodMsgs, c.Ratio, c.WidestFlood, c.WidestRatio)
		}
	}
}
