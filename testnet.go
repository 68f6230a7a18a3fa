package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"gnutella/testnet"
)

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
			&cli.IntFlag{Name: "firewalled", Value: d.Firewalled, Usage: "how many of the leaves are firewalled (reachable by Push only; at most --leaves - 2; 0 skips the push download)"},
			&cli.StringFlag{Name: "dir", Usage: "`DIR` for shares, downloads and data (default: a temporary folder, removed at exit)"},
			&cli.Uint64Flag{Name: "seed", Value: d.Seed, Usage: "seed of the topology"},
			&cli.StringSliceFlag{Name: "uhc", Usage: "`HOST:PORT` of a UDP host cache every servent also pings for ultrapeers (repeatable)"},
			&cli.StringFlag{Name: "upload-rate", Value: "0", Usage: "`BYTES` per second each servent uploads at most, with K, M or G: 100K, 2M (0: unlimited)"},
		},
		Subcommands: []*cli.Command{experimentCommand()},
		Action: func(c *cli.Context) error {
			rate, err := parseRate(c.String("upload-rate"))
			if err != nil {
				return cli.Exit("testnet: --upload-rate: "+err.Error(), 2)
			}
			cfg := testnet.DemoConfig{Ultrapeers: c.Int("ultrapeers"), Leaves: c.Int("leaves"),
				Firewalled: c.Int("firewalled"), Dir: c.String("dir"), Seed: c.Uint64("seed"), UploadRate: rate,
				UHCs: c.StringSlice("uhc")}
			if !c.IsSet("firewalled") {
				// The default fits the default leaves; fewer leaves get
				// fewer firewalled ones rather than a refusal.
				cfg.Firewalled = max(min(cfg.Firewalled, cfg.Leaves-2), 0)
			}
			if err := cfg.Check(); err != nil {
				return cli.Exit("testnet: "+err.Error()+": change --ultrapeers, --leaves or --firewalled", 2)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
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
	d := testnet.DefaultExperimentConfig()
	return &cli.Command{
		Name:  "experiment",
		Usage: "compare search strategies on a generated network and write a table, CSV and JSON",
		Description: "Starts --n servents in one process (in memory by default, or over loopback TCP) in the chosen\n" +
			"topology, places --files files replicated as --replication says, asks --queries queries per\n" +
			"strategy drawn from a Zipf popularity, and measures success, messages (total, per node,\n" +
			"duplicates), hops and time to the first hit, and results. docs/experiments.md shows full runs.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "topology", Value: "random", Usage: "random, powerlaw, grid or twotier"},
			&cli.IntFlag{Name: "n", Value: d.N, Usage: "number of servents (10000 fits in memory on this machine)"},
			&cli.Float64Flag{Name: "degree", Usage: "mean degree of random and power-law graphs (0: 4 for random, 4.46 for power-law)"},
			&cli.StringFlag{Name: "transport", Value: string(d.Transport), Usage: "mem (in memory) or tcp (loopback)"},
			&cli.StringFlag{Name: "strategies", Usage: "comma-separated list, e.g. flood,ring:7,walk:32,gossip,dq,guess (guess needs --transport tcp; default: a TTL sweep of flooding, the ring, 16/32/64 walkers with checking, gossip, and dq on two-tier)"},
			&cli.IntFlag{Name: "files", Value: d.Files, Usage: "distinct files"},
			&cli.StringFlag{Name: "replication", Value: d.Replication, Usage: "uniform, proportional or sqrt"},
			&cli.Float64Flag{Name: "ratio", Value: d.ReplicationRatio, Usage: "mean fraction of servents holding a file"},
			&cli.IntFlag{Name: "queries", Value: d.Queries, Usage: "queries per strategy"},
			&cli.Float64Flag{Name: "churn", Usage: "also run with this fraction of servents down and turning over (e.g. 0.3)"},
			&cli.DurationFlag{Name: "timeout", Value: d.Timeout, Usage: "per query: success is a hit within it"},
			&cli.Uint64Flag{Name: "seed", Value: d.Seed, Usage: "seed of topology, content, queries and walkers"},
			&cli.StringFlag{Name: "out", Usage: "`DIR` for results.csv and results.json (then plots: go run ./testnet/plot/cmd/plot DIR)"},
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
			testnet.WriteTable(os.Stdout, rep) // RunExperimentReport already wrote cfg.Out
			return nil
		},
	}
}
