// Command gnutella is a Gnutella servent: see README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent"
	"gnutella/servent/gwc"
	"gnutella/testnet"
)

func main() {
	app := &cli.App{
		Name:    "gnutella",
		Usage:   "a Gnutella 0.6 servent",
		Version: servent.Version,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "how much to log: debug, info, warn or error"},
			&cli.StringFlag{Name: "log-format", Value: "console", Usage: "console (for people) or json (for machines)"},
		},
		Commands: []*cli.Command{
			serveCommand(),
			searchCommand(),
			getCommand(),
			cacheCommand(),
			testnetCommand(),
			decodeCommand(),
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "gnutella:", err)
		os.Exit(1)
	}
}

// logger builds the zerolog logger the global flags ask for.
func logger(c *cli.Context) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(c.String("log-level"))
	if err != nil || c.String("log-level") == "" {
		return zerolog.Nop(), fmt.Errorf("unknown --log-level %q: use debug, info, warn or error", c.String("log-level"))
	}
	var l zerolog.Logger
	switch c.String("log-format") {
	case "json":
		l = zerolog.New(os.Stderr)
	case "console":
		l = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly})
	default:
		return zerolog.Nop(), fmt.Errorf("unknown --log-format %q: use console or json", c.String("log-format"))
	}
	return l.Level(level).With().Timestamp().Logger(), nil
}

func defaultDataDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "gnutella")
	}
	return ".gnutella"
}

func serveCommand() *cli.Command {
	d := servent.DefaultConfig()
	return &cli.Command{
		Name:  "serve",
		Usage: "run a servent: listen, join the network and route until Ctrl-C",
		Description: "Runs a Gnutella 0.6 servent on one port (Gnutella links, HTTP and push callbacks).\n" +
			"It joins through --peer addresses, its saved host cache and any --gwebcache, keeps\n" +
			"--links links up, and on SIGINT/SIGTERM says Bye 200 to every link and exits.\n" +
			"No bootstrap host is built in: give at least one --peer or --gwebcache the first time.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: d.ListenAddr, Usage: "`ADDR`ess (ip:port) of the one listening port"},
			&cli.StringSliceFlag{Name: "peer", Usage: "`HOST:PORT` of a servent to join through (repeatable)"},
			&cli.StringSliceFlag{Name: "gwebcache", Usage: "`URL` of a GWebCache to ask for hosts (repeatable)"},
			&cli.StringFlag{Name: "data-dir", Value: defaultDataDir(), Usage: "`DIR` for the servent ID and host cache"},
			&cli.IntFlag{Name: "links", Value: d.WantLinks, Usage: "how many ultrapeer links to keep dialling for"},
			&cli.IntFlag{Name: "max-links", Value: d.MaxLinks, Usage: "most ultrapeer links accepted; more get 503 with X-Try-Ultrapeers"},
			&cli.IntFlag{Name: "max-ttl", Value: int(d.MaxTTL), Usage: "clamp of hops+TTL when relaying (4 as gtk-gnutella, 7 for a 0.4-style network)"},
			&cli.BoolFlag{Name: "no-deflate", Usage: "neither offer nor accept compressed links (gtk-gnutella ultrapeers refuse such leaves)"},
			&cli.BoolFlag{Name: "no-pong-caching", Usage: "flood pings and route pongs back (0.4 behaviour) instead of answering from the pong cache"},
			&cli.BoolFlag{Name: "allow-private", Usage: "accept loopback and private addresses in the host cache, prove reachability and call back pushes there (for a local testnet)"},
			&cli.StringSliceFlag{Name: "share", Usage: "`DIR` to share, recursively (repeatable)"},
			&cli.StringFlag{Name: "downloads", Usage: "`DIR` where downloads go (none: this servent does not download)"},
			&cli.IntFlag{Name: "upload-slots", Value: 4, Usage: "uploads at once; more get 503 with Retry-After"},
			&cli.StringFlag{Name: "control", Value: "127.0.0.1:0", Usage: "loopback `ADDR`ess of the control API (\"\" to turn it off); its token goes to DIR/control.json"},
			&cli.StringFlag{Name: "mode", Value: "ultrapeer", Usage: "leaf, ultrapeer or auto (leaf until eligible to be an ultrapeer)"},
		},
		Action: func(c *cli.Context) error {
			log, err := logger(c)
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			ncfg := servent.DefaultNodeConfig()
			ncfg.ShareDirs = c.StringSlice("share")
			ncfg.DownloadDir = c.String("downloads")
			ncfg.UploadSlots = c.Int("upload-slots")
			ncfg.ControlAddr = c.String("control")
			ncfg.AcceptLocalProof = c.Bool("allow-private")
			ncfg.PushPolicy.AllowLoopback = c.Bool("allow-private")
			ncfg.PushPolicy.AllowPrivate = c.Bool("allow-private")
			mode, err := servent.ParseMode(c.String("mode"))
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			cfg := ncfg.Config
			cfg.Mode = mode
			cfg.ListenAddr = c.String("listen")
			cfg.Peers = c.StringSlice("peer")
			cfg.GWebCaches = c.StringSlice("gwebcache")
			cfg.DataDir = c.String("data-dir")
			cfg.WantLinks = c.Int("links")
			cfg.MaxLinks = c.Int("max-links")
			if c.Int("max-ttl") < 1 || c.Int("max-ttl") > 15 {
				return cli.Exit("--max-ttl must be between 1 and 15", 2)
			}
			cfg.MaxTTL = uint8(c.Int("max-ttl"))
			cfg.Deflate = !c.Bool("no-deflate")
			cfg.PongCaching = !c.Bool("no-pong-caching")
			cfg.AllowLoopback = c.Bool("allow-private")
			cfg.AllowPrivate = c.Bool("allow-private")
			cfg.Logger = log
			ncfg.Config = cfg
			s, err := servent.NewNode(ncfg)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if err := s.Start(); err != nil {
				return cli.Exit(err.Error(), 1)
			}
			fmt.Fprintf(os.Stderr, "gnutella: servent %s listening on %s (Ctrl-C to stop)\n", s.ID(), s.Addr())
			if s.Control != nil {
				fmt.Fprintf(os.Stderr, "gnutella: control API on http://%s/ (token in %s)\n", s.Control.Addr(),
					filepath.Join(cfg.DataDir, "control.json"))
			}
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			<-sig
			signal.Stop(sig)
			fmt.Fprintln(os.Stderr, "gnutella: saying Bye to every link...")
			return s.Stop()
		},
	}
}

func cacheCommand() *cli.Command {
	return &cli.Command{
		Name:  "cache",
		Usage: "run a small GWebCache (specification 2) so a local testnet has an introducer",
		Description: "Serves GWebCache requests (?get=1&net=gnutella, ?update=1&ip=...) over HTTP.\n" +
			"Servents find it with: gnutella serve --gwebcache http://ADDR/",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8080", Usage: "`ADDR`ess (ip:port) to serve HTTP on"},
			&cli.BoolFlag{Name: "allow-private", Value: true, Usage: "store loopback and private servent addresses (a local testnet needs this)"},
		},
		Action: func(c *cli.Context) error {
			log, err := logger(c)
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			cache := gwc.NewServer(time.Now)
			cache.Name = "gnutella-gwc/" + servent.Version
			cache.AllowLoopback = c.Bool("allow-private")
			cache.AllowPrivate = c.Bool("allow-private")
			srv := &http.Server{Addr: c.String("listen"), Handler: cache, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
			log.Info().Str("listen", srv.Addr).Msg("GWebCache serving")
			fmt.Fprintf(os.Stderr, "gnutella: GWebCache at http://%s/ (Ctrl-C to stop)\n", srv.Addr)
			go func() {
				sig := make(chan os.Signal, 1)
				signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
				<-sig
				_ = srv.Close()
			}()
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return cli.Exit(fmt.Sprintf("cannot serve on %s: %v (choose another with --listen)", srv.Addr, err), 1)
			}
			return nil
		},
	}
}

func decodeCommand() *cli.Command {
	return &cli.Command{
		Name:      "decode",
		Usage:     "print every handshake block and descriptor of a raw Gnutella byte stream",
		ArgsUsage: "FILE",
		Description: "Reads FILE as one direction of a Gnutella TCP connection (handshake blocks\n" +
			"ending with an empty line, then 23-byte-header descriptors) and prints each\n" +
			"descriptor: type, GUID, TTL, hops and its decoded fields (GGEP keys, URNs).\n" +
			"Exits with status 1 and the offset of the first bad byte if the stream is malformed.",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("decode needs exactly one FILE; try: gnutella decode protocol/testdata/gtk-gnutella/leaf-to-ultrapeer.bin", 2)
			}
			f, err := os.Open(c.Args().First())
			if err != nil {
				return cli.Exit(fmt.Sprintf("cannot open %s: %v", c.Args().First(), err), 1)
			}
			defer f.Close()
			if err := protocol.Dump(os.Stdout, f); err != nil {
				return cli.Exit(fmt.Sprintf("%s: %v", c.Args().First(), err), 1)
			}
			return nil
		},
	}
}

func searchCommand() *cli.Command {
	return &cli.Command{
		Name:      "search",
		Usage:     "search the network and print results as they arrive",
		ArgsUsage: `"WORDS"`,
		Description: "Uses the servent running with --data-dir (through its control API) when there is one;\n" +
			"otherwise starts a short-lived servent that joins through --peer. Results print as a table\n" +
			"(name, size, urn, host, speed, push needed) until --timeout or --max-results.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "strategy", Value: "flood", Usage: "flood, ring (expanding ring), walk (random walkers with checking) or gossip"},
			&cli.IntFlag{Name: "ttl", Value: 4, Usage: "TTL of flood and gossip, largest ring of ring"},
			&cli.IntFlag{Name: "walkers", Value: 16, Usage: "number of random walkers (strategy walk)"},
			&cli.Float64Flag{Name: "p", Value: 0.5, Usage: "forwarding probability (strategy gossip)"},
			&cli.StringFlag{Name: "urn", Usage: "search by hash: urn:sha1:<32 base32 characters>"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "how long to wait for results"},
			&cli.IntFlag{Name: "max-results", Usage: "stop after this many results (0: wait for --timeout)"},
			&cli.StringFlag{Name: "data-dir", Value: defaultDataDir(), Usage: "`DIR` of the running servent to use"},
			&cli.StringSliceFlag{Name: "peer", Usage: "`HOST:PORT` to join through when no servent is running (repeatable)"},
			&cli.BoolFlag{Name: "allow-private", Usage: "accept loopback and private addresses (a local testnet)"},
		},
		Action: func(c *cli.Context) error {
			req := servent.SearchRequest{
				Query: strings.Join(c.Args().Slice(), " "), URN: c.String("urn"), Strategy: c.String("strategy"),
				TTL: c.Int("ttl"), Walkers: c.Int("walkers"), P: c.Float64("p"),
				TimeoutMS: int(c.Duration("timeout") / time.Millisecond), MaxResults: c.Int("max-results"),
			}
			if _, err := servent.BuildQuery(req.Query, req.URN); err != nil {
				return cli.Exit(err.Error(), 2)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			printer := newHitPrinter(os.Stdout)
			if info, err := servent.ReadControlInfo(c.String("data-dir")); err == nil {
				cc := &servent.ControlClient{Info: info}
				var st servent.StatusJSON
				if cc.Do(ctx, "GET", "/api/v1/status", nil, &st) == nil {
					var started map[string]string
					if err := cc.Do(ctx, "POST", "/api/v1/searches", req, &started); err != nil {
						return cli.Exit(err.Error(), 1)
					}
					err := cc.StreamResults(ctx, started["id"], printer.print)
					printer.done()
					if err != nil && ctx.Err() == nil {
						return cli.Exit(err.Error(), 1)
					}
					return nil
				}
			}
			if len(c.StringSlice("peer")) == 0 {
				return cli.Exit("no servent is running with --data-dir "+c.String("data-dir")+
					" and no --peer was given: start `gnutella serve` or pass --peer HOST:PORT", 2)
			}
			log, err := logger(c)
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			cfg := servent.DefaultConfig()
			cfg.ListenAddr = "0.0.0.0:0"
			cfg.Peers = c.StringSlice("peer")
			cfg.WantLinks = len(cfg.Peers)
			cfg.AllowLoopback = c.Bool("allow-private")
			cfg.AllowPrivate = c.Bool("allow-private")
			cfg.Logger = log
			s, err := servent.New(cfg)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if err := s.Start(); err != nil {
				return cli.Exit(err.Error(), 1)
			}
			defer s.Stop()
			wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err = s.WaitLinks(wctx, 1)
			cancel()
			if err != nil {
				return cli.Exit("could not link to any --peer within 15 s: check the addresses and that they run", 1)
			}
			q, _ := servent.BuildQuery(req.Query, req.URN)
			st, err := routing.ParseStrategy(req.Strategy, routing.StrategyOptions{TTL: uint8(req.TTL), Walkers: req.Walkers, P: req.P})
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			search, done := s.StartSearch(q, st, req.MaxResults, c.Duration("timeout"))
			shown := 0
			for {
				changed := search.Changed()
				for _, h := range search.Hits()[shown:] {
					printer.print(servent.HitToJSON(h))
					shown++
				}
				select {
				case <-changed:
				case <-done:
					for _, h := range search.Hits()[shown:] {
						printer.print(servent.HitToJSON(h))
					}
					printer.done()
					return nil
				case <-ctx.Done():
					printer.done()
					return nil
				}
			}
		},
	}
}

// hitPrinter prints search results as table rows as they arrive.
type hitPrinter struct {
	w io.Writer
	n int
}

func newHitPrinter(w io.Writer) *hitPrinter { return &hitPrinter{w: w} }

func (p *hitPrinter) print(h servent.HitJSON) {
	if p.n == 0 {
		fmt.Fprintf(p.w, "%-40s %10s  %-41s %-21s %6s  %s\n", "NAME", "SIZE", "URN", "HOST", "KBPS", "PUSH")
	}
	p.n++
	push := "no"
	if h.Push {
		push = "yes"
	}
	fmt.Fprintf(p.w, "%-40s %10d  %-41s %-21s %6d  %s\n", clip(h.Name, 40), h.Size, h.URN, h.Host, h.Speed, push)
}

func (p *hitPrinter) done() { fmt.Fprintf(p.w, "%d results\n", p.n) }

func clip(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func getCommand() *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "download a file through the running servent, with a progress bar",
		ArgsUsage: "urn:sha1:<base32> | magnet:?xt=urn:sha1:<base32> | SEARCH-ID HIT",
		Description: "Asks the servent running with --data-dir (started with --downloads DIR) to download:\n" +
			"a URN or magnet link is searched for first and fetched from every source found; a search\n" +
			"ID and a hit number (from gnutella search, or the control API) fetch that hit. Downloads\n" +
			"are verified by SHA-1 and resume after an interruption.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: defaultDataDir(), Usage: "`DIR` of the running servent"},
			&cli.DurationFlag{Name: "search-timeout", Value: 10 * time.Second, Usage: "how long to look for sources of a URN"},
		},
		Action: func(c *cli.Context) error {
			info, err := servent.ReadControlInfo(c.String("data-dir"))
			if err != nil {
				return cli.Exit("no servent running with --data-dir "+c.String("data-dir")+
					": start `gnutella serve --downloads DIR` first", 2)
			}
			cc := &servent.ControlClient{Info: info}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var req servent.DownloadRequest
			switch {
			case c.NArg() == 2:
				req.SearchID = c.Args().Get(0)
				if _, err := fmt.Sscan(c.Args().Get(1), &req.Hit); err != nil {
					return cli.Exit("HIT must be a number (the row of the search result, from 0)", 2)
				}
			case c.NArg() == 1:
				urn := c.Args().First()
				if strings.HasPrefix(urn, "magnet:") {
					u, err := servent.MagnetURN(urn)
					if err != nil {
						return cli.Exit(err.Error(), 2)
					}
					urn = u
				}
				var started map[string]string
				err := cc.Do(ctx, "POST", "/api/v1/searches", servent.SearchRequest{URN: urn, TTL: 4,
					TimeoutMS: int(c.Duration("search-timeout") / time.Millisecond), MaxResults: 10}, &started)
				if err != nil {
					return cli.Exit(err.Error(), 1)
				}
				n := 0
				_ = cc.StreamResults(ctx, started["id"], func(servent.HitJSON) { n++ })
				if n == 0 {
					return cli.Exit("no source found for "+urn+": nobody reachable shares it", 1)
				}
				req.SearchID, req.URN = started["id"], urn
			default:
				return cli.Exit("give a urn:sha1, a magnet link, or a search ID and a hit number", 2)
			}
			var st transferStatus
			if err := cc.Do(ctx, "POST", "/api/v1/downloads", req, &st); err != nil {
				return cli.Exit(err.Error(), 1)
			}
			bar := progressbar.DefaultBytes(st.Size, st.Name)
			for {
				var all []transferStatus
				if err := cc.Do(ctx, "GET", "/api/v1/downloads", nil, &all); err != nil {
					return cli.Exit(err.Error(), 1)
				}
				for _, d := range all {
					if d.URN != st.URN || d.Name != st.Name {
						continue
					}
					_ = bar.Set64(d.Have)
					switch d.State {
					case "done":
						_ = bar.Finish()
						fmt.Fprintf(os.Stderr, "\nverified and saved: %s\n", d.Path)
						return nil
					case "failed":
						return cli.Exit("\ndownload failed: "+d.Error, 1)
					}
				}
				select {
				case <-ctx.Done():
					fmt.Fprintln(os.Stderr, "\nstopped watching; the servent keeps downloading")
					return nil
				case <-time.After(200 * time.Millisecond):
				}
			}
		},
	}
}

// transferStatus is the part of a download's status the CLI shows.
type transferStatus struct {
	Name  string `json:"name"`
	Size  int64  `json:"size"`
	URN   string `json:"urn"`
	Have  int64  `json:"have"`
	State string `json:"state"`
	Error string `json:"error"`
	Path  string `json:"path"`
}

func testnetCommand() *cli.Command {
	d := testnet.DefaultDemoConfig()
	return &cli.Command{
		Name:  "testnet",
		Usage: "start a local two-tier Gnutella network, show search and downloads working, and keep it up to join",
		Description: "Starts ultrapeers and leaves on 127.0.0.1 with a GWebCache introducer, shares generated files,\n" +
			"runs a search with each strategy (flood, expanding ring, random walk, gossip, dynamic query),\n" +
			"downloads one file directly and one by Push from a firewalled leaf, prints a summary, and stays\n" +
			"up (printing how to join it) until Ctrl-C. With --once it exits: 0 if every step worked.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "once", Usage: "run the steps and exit (status 0 only if every step worked)"},
			&cli.IntFlag{Name: "ultrapeers", Value: d.Ultrapeers, Usage: "number of ultrapeers"},
			&cli.IntFlag{Name: "leaves", Value: d.Leaves, Usage: "number of leaves (each links to 3 ultrapeers)"},
			&cli.IntFlag{Name: "firewalled", Value: d.Firewalled, Usage: "how many of the leaves are firewalled (reachable by Push only)"},
			&cli.StringFlag{Name: "dir", Usage: "`DIR` for shares, downloads and data (default: a temporary folder, removed at exit)"},
			&cli.Uint64Flag{Name: "seed", Value: d.Seed, Usage: "seed of the topology"},
		},
		Subcommands: []*cli.Command{experimentCommand()},
		Action: func(c *cli.Context) error {
			if c.Int("ultrapeers") < 2 || c.Int("leaves") < 2 {
				return cli.Exit("a testnet needs at least 2 ultrapeers and 2 leaves", 2)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg := testnet.DemoConfig{Ultrapeers: c.Int("ultrapeers"), Leaves: c.Int("leaves"),
				Firewalled: c.Int("firewalled"), Dir: c.String("dir"), Seed: c.Uint64("seed")}
			demo, err := testnet.RunDemo(ctx, cfg, os.Stdout)
			if err != nil {
				return cli.Exit("testnet: "+err.Error(), 1)
			}
			defer demo.Close()
			ok := demo.OK()
			if ok {
				fmt.Println("Every step worked.")
			} else {
				fmt.Println("Some steps FAILED (see above).")
			}
			if c.Bool("once") {
				if !ok {
					return cli.Exit("", 1)
				}
				return nil
			}
			fmt.Println()
			fmt.Print(demo.JoinHelp())
			fmt.Println("Ctrl-C stops the network.")
			<-ctx.Done()
			fmt.Println("stopping...")
			return nil
		},
	}
}

func experimentCommand() *cli.Command {
	return &cli.Command{
		Name:  "experiment",
		Usage: "compare search strategies on a generated network and write a table, CSV, JSON and plots",
		Description: "Starts --n servents in one process (in memory by default, or over loopback TCP) in the chosen\n" +
			"topology, places --files files replicated as --replication says, asks --queries queries per\n" +
			"strategy drawn from a Zipf popularity, and measures success, messages (total, per node,\n" +
			"duplicates), hops and time to the first hit, and results. docs/experiments.md shows full runs.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "topology", Value: "random", Usage: "random, powerlaw, grid or twotier"},
			&cli.IntFlag{Name: "n", Value: 1000, Usage: "number of servents (10000 fits in memory on this machine)"},
			&cli.Float64Flag{Name: "degree", Value: 4, Usage: "mean degree of random and power-law graphs"},
			&cli.StringFlag{Name: "transport", Value: "mem", Usage: "mem (in memory) or tcp (loopback)"},
			&cli.StringFlag{Name: "strategies", Usage: "comma-separated list, e.g. flood,ring:7,walk:32,gossip,dq (default: a TTL sweep of flooding, the ring, 16/32/64 walkers with checking, gossip, and dq on two-tier)"},
			&cli.IntFlag{Name: "files", Value: 100, Usage: "distinct files"},
			&cli.StringFlag{Name: "replication", Value: "uniform", Usage: "uniform, proportional or sqrt"},
			&cli.Float64Flag{Name: "ratio", Value: 0.01, Usage: "mean fraction of servents holding a file"},
			&cli.IntFlag{Name: "queries", Value: 100, Usage: "queries per strategy"},
			&cli.Float64Flag{Name: "churn", Usage: "also run with this fraction of servents down and turning over (e.g. 0.3)"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "per query: success is a hit within it"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of topology, content, queries and walkers"},
			&cli.StringFlag{Name: "out", Usage: "`DIR` for results.csv, results.json and the PNG/SVG plots"},
		},
		Action: func(c *cli.Context) error {
			n := c.Int("n")
			if n < 2 {
				return cli.Exit("--n must be at least 2", 2)
			}
			topo, err := testnet.ParseTopology(c.String("topology"), n, c.Float64("degree"))
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			cfg := testnet.ExperimentConfig{
				Topology: topo, N: n, Transport: testnet.TransportKind(c.String("transport")), Seed: c.Uint64("seed"),
				Files: c.Int("files"), Replication: c.String("replication"), ReplicationRatio: c.Float64("ratio"),
				Queries: c.Int("queries"), Timeout: c.Duration("timeout"), Churn: c.Float64("churn"), Out: c.String("out"),
			}
			if cfg.Transport != testnet.Memory && cfg.Transport != testnet.TCP {
				return cli.Exit("--transport must be mem or tcp", 2)
			}
			if list := c.String("strategies"); list != "" {
				if cfg.Strategies, err = testnet.ParseStrategies(list, topo, n, cfg.Seed); err != nil {
					return cli.Exit(err.Error(), 2)
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := testnet.RunExperimentReport(ctx, cfg, os.Stderr)
			if err != nil {
				return cli.Exit("experiment: "+err.Error(), 1)
			}
			testnet.WriteTable(os.Stdout, rep)
			if cfg.Out != "" {
				if err := testnet.WriteAll(cfg.Out, rep); err != nil {
					return cli.Exit(err.Error(), 1)
				}
				fmt.Fprintf(os.Stderr, "wrote results and plots to %s\n", cfg.Out)
			}
			return nil
		},
	}
}
