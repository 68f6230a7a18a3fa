package testnet

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent"
	"gnutella/servent/control"
	"gnutella/servent/gwc"
)

// The demo: a small two-tier Gnutella network on this machine, started with
// one command (`go run . testnet`). It forms the network, shares generated
// files, runs a search with each strategy, downloads one file directly and
// one by Push from a firewalled leaf, prints what happened, and stays up for
// a person to join until Ctrl-C (or exits with --once).

// DemoConfig sizes the demo.
type DemoConfig struct {
	Ultrapeers int    // 5
	Leaves     int    // 40
	Firewalled int    // leaves behind a (simulated) firewall: 4
	Dir        string // where shares, downloads and data go ("" = a temporary folder, removed at the end)
	Seed       uint64
	UploadRate int64    // bytes per second each servent uploads at most (0: unlimited)
	UHCs       []string // UDP host caches every servent also pings (--uhc)
}

// Check reports a size the demo cannot run with: it needs at least 2
// ultrapeers and 2 leaves, and two open leaves (the seeker and the holder
// of the direct download), so at most Leaves-2 firewalled ones.
func (c DemoConfig) Check() error {
	switch {
	case c.Ultrapeers < 2:
		return fmt.Errorf("%d ultrapeers: the demo needs at least 2", c.Ultrapeers)
	case c.Leaves < 2:
		return fmt.Errorf("%d leaves: the demo needs at least 2", c.Leaves)
	case c.Firewalled < 0:
		return fmt.Errorf("%d firewalled leaves: cannot be negative", c.Firewalled)
	case c.Firewalled > c.Leaves-2:
		return fmt.Errorf("%d firewalled leaves of %d: at most %d, as two leaves must be open (the seeker and the direct download's source)",
			c.Firewalled, c.Leaves, c.Leaves-2)
	}
	return nil
}

// DefaultDemoConfig is what `go run . testnet` runs.
func DefaultDemoConfig() DemoConfig {
	return DemoConfig{Ultrapeers: 5, Leaves: 40, Firewalled: 4, Seed: 1}
}

// Demo is a running demo network.
type Demo struct {
	Net       *Network
	GWebCache string // the introducer's URL
	Seeker    *servent.Node
	Control   *control.Server // the seeker's control API
	SeekerDir string          // the seeker's data folder (its control.json is there)
	dir       string
	ownDir    bool
	gwc       *http.Server
	steps     []DemoStep
	word      string // a word the demo's searches found, for JoinHelp
	msgs      *msgCount
	spread    spreadLog // spread.go
}

// DemoStep is one thing the demo checked.
type DemoStep struct {
	What   string
	OK     bool
	Detail string
}

type msgCount struct {
	mu sync.Mutex
	n  map[protocol.GUID]int
}

func (m *msgCount) add(h protocol.Header) {
	if h.Type != protocol.TypeQuery {
		return
	}
	m.mu.Lock()
	m.n[h.ID]++
	m.mu.Unlock()
}

func (m *msgCount) total(ids []protocol.GUID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := 0
	for _, id := range ids {
		t += m.n[id]
	}
	return t
}

// demoVocabulary names the generated files.
var demoVocabulary = []string{"zebra", "quokka", "emu", "wallaby", "platypus", "koala", "wombat", "dingo",
	"kookaburra", "numbat", "echidna", "bilby", "quoll", "cassowary", "lyrebird", "galah"}

// RunDemo starts the network and runs every step, writing progress to out.
// The returned Demo keeps running until Close.
func RunDemo(ctx context.Context, cfg DemoConfig, out io.Writer) (*Demo, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	d := &Demo{dir: cfg.Dir, msgs: &msgCount{n: map[protocol.GUID]int{}}}
	if d.dir == "" {
		dir, err := os.MkdirTemp("", "gnutella-testnet-")
		if err != nil {
			return nil, err
		}
		d.dir, d.ownDir = dir, true
	}
	// The introducer: a GWebCache on loopback.
	gwcHandler := gwc.NewServer(time.Now)
	gwcHandler.Name = "gnutella-gwc/" + servent.Version
	gwcHandler.AllowLoopback, gwcHandler.AllowPrivate = true, true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.Close()
		return nil, err
	}
	d.gwc = &http.Server{Handler: gwcHandler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = d.gwc.Serve(ln) }()
	d.GWebCache = "http://" + ln.Addr().String() + "/"

	ups, n := cfg.Ultrapeers, cfg.Ultrapeers+cfg.Leaves
	seeker := ups // the first leaf: open, downloads, control API
	firewalled := map[int]bool{}
	for i := 0; i < cfg.Firewalled; i++ {
		firewalled[n-1-i] = true
	}
	// Content: every leaf shares three files, small but real; the open leaf
	// just after the seeker and the last firewalled leaf (if any) each hold
	// a file found nowhere else.
	direct, pushed := seeker+1, n-1
	shares := make([]string, n)
	for i := ups; i < n; i++ {
		shares[i] = filepath.Join(d.dir, fmt.Sprintf("share-%02d", i))
		if err := os.MkdirAll(shares[i], 0o755); err != nil {
			d.Close()
			return nil, err
		}
		if i == seeker {
			continue
		}
		for k := 0; k < 3; k++ {
			a := demoVocabulary[(i*3+k)%len(demoVocabulary)]
			b := demoVocabulary[(i*7+k*5+1)%len(demoVocabulary)]
			name := fmt.Sprintf("%s %s %02d-%d.txt", a, b, i, k)
			if err := writeDemoFile(filepath.Join(shares[i], name), name, 20_000+i*100+k); err != nil {
				d.Close()
				return nil, err
			}
		}
	}
	if err := writeDemoFile(filepath.Join(shares[direct], "direct download demo.bin"), "direct", 400_000); err != nil {
		d.Close()
		return nil, err
	}
	if cfg.Firewalled > 0 {
		if err := writeDemoFile(filepath.Join(shares[pushed], "firewalled push demo.bin"), "pushed", 300_000); err != nil {
			d.Close()
			return nil, err
		}
	}
	d.SeekerDir = filepath.Join(d.dir, "seeker")

	fmt.Fprintf(out, "Starting a two-tier network: %d ultrapeers, %d leaves (%d firewalled), on 127.0.0.1...\n",
		ups, cfg.Leaves, len(firewalled))
	started := time.Now()
	netw, err := Start(ctx, Options{
		N: n, Transport: TCP, Topology: TwoTier{Ultrapeers: ups, UltrapeerDegree: float64(ups - 1), LeafUltrapeers: 3},
		Seed: cfg.Seed, LinkTimeout: 60 * time.Second, Progress: out,
		Configure: func(i int, c *servent.NodeConfig) {
			c.Trace = func(l *servent.Link, h protocol.Header, dup bool) {
				d.msgs.add(h)
				d.spread.add(i, l, h, dup)
			}
			c.UploadRate = cfg.UploadRate
			c.GWebCaches = []string{d.GWebCache}
			c.UHCs = cfg.UHCs
			if shares[i] != "" {
				c.ShareDirs = []string{shares[i]}
			}
			if firewalled[i] {
				// no inbound connection can prove it reachable: it decides
				// it is firewalled, sets the push flag and needs Push
				c.AssumeReachable, c.AcceptLocalProof = false, false
			}
			if i == seeker {
				c.DataDir = d.SeekerDir
				c.DownloadDir = filepath.Join(d.dir, "downloads")
			}
		},
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	d.Net = netw
	d.Seeker = netw.Nodes[seeker]
	if d.Control, err = control.Start(d.Seeker, "127.0.0.1:0"); err != nil {
		d.Close()
		return nil, err
	}
	d.Control.SetTestnet(func() any { return d.Graph() }) // the UI's testnet page
	d.step(out, "network formed", true, fmt.Sprintf("%d links in %v", len(netw.Edges), time.Since(started).Round(time.Millisecond)))
	for i := 0; i < ups; i++ {
		_ = (&gwc.Client{Version: servent.Version}).Update(ctx, d.GWebCache, netw.Servents[i].Addr())
	}

	// Libraries scanned and hashed, QRP tables at the ultrapeers.
	for i := ups; i < n; i++ {
		lib := netw.Nodes[i].Library
		err := lib.Rescan()
		if err == nil {
			err = lib.HashAll(ctx)
		}
		if err != nil {
			d.step(out, "libraries hashed", false, err.Error())
			return d, nil
		}
	}
	files := 3*(cfg.Leaves-1) + 1 // three a leaf but the seeker's, and the direct download
	if cfg.Firewalled > 0 {
		files++ // the push download
	}
	d.step(out, "libraries hashed", true, fmt.Sprintf("%d leaves share %d files", cfg.Leaves, files))
	tables := waitLeafTables(ctx, netw, 30*time.Second)
	d.step(out, "QRP tables at the ultrapeers", tables == nil, errText(tables))

	// A search with each strategy, from an ultrapeer.
	from := netw.Nodes[0]
	common := demoVocabulary[direct*3%len(demoVocabulary)] // on the open leaf next to the seeker, and others
	d.word = common
	for _, st := range []routing.Strategy{
		routing.Flood{TTL: 3},
		routing.Ring{Start: 1, Step: 1, Max: 3, Wait: 300 * time.Millisecond},
		routing.Walk{K: 4, Budget: 64, Check: true},
		routing.Gossip{P: 0.7, TTL: 3},
		routing.DynamicQuery{Target: 10, PerHop: 300 * time.Millisecond, ProbeWait: 500 * time.Millisecond},
	} {
		q := protocol.NewQuery(common, protocol.QueryFlagMark|protocol.QueryFlagGGEPH)
		d.spread.start(netw.Nodes)
		s := from.Search(ctx, q, st, 10, 3*time.Second)
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = netw.WaitQuiet(qctx)
		cancel()
		d.spread.finish(Spread{Strategy: st.Name(), Query: common, Origin: 0, Results: s.Len()}, s.GUIDs())
		d.step(out, "search "+st.Name(), s.Len() > 0, fmt.Sprintf("%d results for %q, %d query messages network-wide, first hit after %v",
			s.Len(), common, d.msgs.total(s.GUIDs()), s.Stats().FirstHit.Round(time.Microsecond)))
	}

	// Downloads from the seeker leaf: one direct, one by Push.
	d.download(ctx, out, "direct download", "direct download demo", netw.Servents[direct].ID(), false)
	if cfg.Firewalled > 0 {
		d.download(ctx, out, "push download from a firewalled leaf", "firewalled push demo", netw.Servents[pushed].ID(), true)
	}
	return d, nil
}

// download searches from the seeker, downloads the one hit and checks it.
func (d *Demo) download(ctx context.Context, out io.Writer, what, words string, holder protocol.GUID, wantPush bool) {
	q := protocol.NewQuery(words, protocol.QueryFlagMark|protocol.QueryFlagGGEPH)
	s := d.Seeker.Search(ctx, q, routing.Flood{TTL: 3}, 1, 5*time.Second)
	hits := s.Hits()
	if len(hits) == 0 {
		d.step(out, what, false, "no hit for "+words)
		return
	}
	h := hits[0]
	if h.ServentID != holder || h.Push != wantPush {
		d.step(out, what, false, fmt.Sprintf("hit from %s push=%v, want %s push=%v", h.ServentID, h.Push, holder, wantPush))
		return
	}
	start := time.Now()
	dl, err := d.Seeker.Download(h, hits)
	if err == nil {
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err = dl.Wait(wctx)
		cancel()
	}
	if err != nil {
		d.step(out, what, false, err.Error())
		return
	}
	st := dl.Status()
	data, err := os.ReadFile(st.Path)
	if err != nil {
		d.step(out, what, false, err.Error())
		return
	}
	sum := protocol.SHA1(sha1.Sum(data))
	d.step(out, what, sum == h.URN, fmt.Sprintf("%s (%d bytes) in %v, SHA-1 verified %s", filepath.Base(st.Path), len(data),
		time.Since(start).Round(time.Millisecond), sum))
}

func (d *Demo) step(out io.Writer, what string, ok bool, detail string) {
	d.steps = append(d.steps, DemoStep{What: what, OK: ok, Detail: detail})
	mark := "ok  "
	if !ok {
		mark = "FAIL"
	}
	fmt.Fprintf(out, "  [%s] %-42s %s\n", mark, what, detail)
}

// Steps lists what the demo checked.
func (d *Demo) Steps() []DemoStep { return d.steps }

// OK reports whether every step worked.
func (d *Demo) OK() bool {
	for _, s := range d.steps {
		if !s.OK {
			return false
		}
	}
	return len(d.steps) > 0
}

// JoinHelp says how a person joins the running network.
func (d *Demo) JoinHelp() string {
	var ups []string
	for i, s := range d.Net.Servents {
		if d.Net.Nodes[i].Mode() == servent.ModeUltrapeer && len(ups) < 3 {
			ups = append(ups, s.Addr().String())
		}
	}
	sort.Strings(ups)
	var b strings.Builder
	fmt.Fprintf(&b, "Join it with your own servent:\n")
	fmt.Fprintf(&b, "  mkdir -p /tmp/me/share && go run . serve --listen 127.0.0.1:0 --allow-private --data-dir /tmp/me \\\n")
	fmt.Fprintf(&b, "      --share /tmp/me/share --downloads /tmp/me/downloads --peer %s\n", ups[0])
	fmt.Fprintf(&b, "  (or --gwebcache %s, or --uhc %s: every ultrapeer is a UDP host cache on its port),\n", d.GWebCache, ups[0])
	fmt.Fprintf(&b, "  then in another terminal:\n")
	fmt.Fprintf(&b, "  go run . search --data-dir /tmp/me %s    and    go run . get --data-dir /tmp/me SEARCH-ID N\n", d.searchWord())
	if d.Control != nil {
		fmt.Fprintf(&b, "The demo's own leaf has a control API at http://%s/ ; use it with:\n", d.Control.Addr())
		fmt.Fprintf(&b, "  go run . search --data-dir %s %s\n", d.SeekerDir, d.searchWord())
		fmt.Fprintf(&b, "and its browser UI (with a Testnet page drawing how the searches spread): open\n  %s\n", d.Control.LoginURL())
		fmt.Fprintf(&b, "  (works once, for 10 minutes; go run . ui --data-dir %s prints a fresh link)\n", d.SeekerDir)
	}
	fmt.Fprintf(&b, "Ultrapeers: %s\n", strings.Join(ups, ", "))
	return b.String()
}

// searchWord is a word some leaf's files have.
func (d *Demo) searchWord() string {
	if d.word == "" {
		return demoVocabulary[0]
	}
	return d.word
}

// Close stops everything and removes the temporary folder.
func (d *Demo) Close() error {
	var errs []error
	if d.Control != nil {
		errs = append(errs, d.Control.Close())
	}
	if d.Net != nil {
		errs = append(errs, d.Net.Stop())
	}
	if d.gwc != nil {
		errs = append(errs, d.gwc.Close())
	}
	if d.ownDir {
		errs = append(errs, os.RemoveAll(d.dir))
	}
	return errors.Join(errs...)
}

// writeDemoFile writes size bytes derived from seed: small but real files.
func writeDemoFile(path, seed string, size int) error {
	data := make([]byte, size)
	h := sha1.Sum([]byte(seed))
	for i := range data {
		if i%20 == 0 && i > 0 {
			h = sha1.Sum(h[:])
		}
		data[i] = h[i%20]
	}
	return os.WriteFile(path, data, 0o644)
}

// waitLeafTables waits until every ultrapeer holds each of its leaves' QRP tables.
func waitLeafTables(ctx context.Context, n *Network, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		missing := 0
		for _, s := range n.Servents {
			for _, l := range s.Links() {
				if l.Kind == servent.LinkLeaf && l.PeerTable() == nil {
					missing++
				}
			}
		}
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d leaf tables missing", missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func errText(err error) string {
	if err == nil {
		return "every leaf's table arrived"
	}
	return err.Error()
}
