package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"gnutella/routing"
	"gnutella/servent"
	"gnutella/servent/control"
)

func searchCommand() *cli.Command {
	d := control.DefaultSearchRequest()
	return &cli.Command{
		Name:      "search",
		Usage:     "search the network and print results as they arrive",
		ArgsUsage: `"WORDS"`,
		Description: "Uses the servent running with --data-dir (through its control API) when there is one;\n" +
			"otherwise starts a short-lived servent that joins through --peer, with its own control API,\n" +
			"and searches through it the same way. At --timeout or --max-results it prints the files\n" +
			"found, one numbered row per file (its name, size, speed, number of sources and URN), and the\n" +
			"search ID: gnutella get SEARCH-ID N downloads row N, and gnutella get N row N of the last\n" +
			"search made through the running servent. --json prints the same for machines.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "strategy", Value: d.Strategy, Usage: "flood, ring (expanding ring), walk (random walkers with checking), gossip, or guess (GUESS: UDP unicast to GUESS ultrapeers, a few at a time)"},
			&cli.IntFlag{Name: "ttl", Value: d.TTL, Usage: "TTL of flood and gossip, largest ring of ring"},
			&cli.IntFlag{Name: "walkers", Value: d.Walkers, Usage: "number of random walkers (strategy walk)"},
			&cli.Float64Flag{Name: "p", Value: d.P, Usage: "forwarding probability (strategy gossip)"},
			&cli.StringFlag{Name: "urn", Usage: "search by hash: urn:sha1:<32 base32 characters>"},
			&cli.DurationFlag{Name: "timeout", Value: time.Duration(d.TimeoutMS) * time.Millisecond, Usage: "how long to wait for results"},
			&cli.IntFlag{Name: "max-results", Usage: "stop after this many results (0: wait for --timeout)"},
			dataDirFlag("`DIR` of the running servent to use"),
			&cli.StringSliceFlag{Name: "peer", Usage: "`HOST:PORT` to join through when no servent is running (repeatable)"},
			&cli.BoolFlag{Name: "allow-private", Usage: "accept loopback and private addresses (a local testnet)"},
			&cli.BoolFlag{Name: "json", Usage: "print the search ID and the rows as JSON (for machines)"},
		},
		Action: func(c *cli.Context) error {
			req := control.SearchRequest{
				Query: strings.Join(c.Args().Slice(), " "), URN: c.String("urn"), Strategy: c.String("strategy"),
				TTL: c.Int("ttl"), Walkers: c.Int("walkers"), P: c.Float64("p"),
				TimeoutMS: int(c.Duration("timeout") / time.Millisecond), MaxResults: c.Int("max-results"),
			}
			if _, err := control.BuildQuery(req.Query, req.URN); err != nil {
				return cli.Exit(err.Error()+`: give "WORDS" or --urn urn:sha1:<32 base32 characters>`, 2)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cc, done, running, err := searchClient(ctx, c)
			if err != nil {
				return err
			}
			defer done()
			id, err := cc.StartSearch(ctx, req)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if running {
				saveLastSearch(c.String("data-dir"), id)
			}
			if !c.Bool("json") {
				fmt.Fprintf(os.Stderr, "gnutella: searching (search ID %s) for %s...\n", id, c.Duration("timeout"))
			}
			var hits []routing.Hit
			err = cc.StreamResults(ctx, id, func(h routing.Hit) { hits = append(hits, h) })
			if err != nil && ctx.Err() == nil {
				return cli.Exit(err.Error(), 1)
			}
			rows := groupHits(hits)
			if len(rows) == 0 {
				firewalledHint(ctx, cc)
			}
			if c.Bool("json") {
				return printRowsJSON(os.Stdout, id, rows)
			}
			printRows(os.Stdout, id, rows, running)
			return nil
		},
	}
}

// firewalledHint explains, after a search found nothing, that the servent
// it went through counts as firewalled when it does: firewalled sharers do
// not answer a firewalled searcher (neither could open the connection), so
// on a local testnet everything looks empty without --allow-private.
func firewalledHint(ctx context.Context, cc *control.Client) {
	var st control.StatusJSON
	if cc.Do(ctx, "GET", "/api/v1/status", nil, &st) != nil || !st.Firewalled {
		return
	}
	fmt.Fprintln(os.Stderr, "gnutella: the servent searched through counts as firewalled (nobody has connected to it from "+
		"outside yet), so sharers that are firewalled too do not answer it. On a local network, give --allow-private (to serve, or to search --peer) "+
		"so that connections from local addresses prove it reachable; on the Internet, open its --listen port.")
}

// noLinks is the error of a search through the servent of dir when it has
// no link: the search would reach nobody.
func noLinks(dir string) error {
	return cli.Exit("the servent running with --data-dir "+dir+" has no links, so a search would reach nobody: "+
		"wait until it has joined (gnutella status shows its links; its stderr says why a --peer did not link), or give it a --peer", 1)
}

// searchClient returns a client of the control API that search uses: the
// servent running with --data-dir when there is one; otherwise a servent
// started here, joined through --peer, with its own control API on
// loopback. done stops what searchClient started; running is true for
// the running servent (whose searches outlive the command).
func searchClient(ctx context.Context, c *cli.Context) (cc *control.Client, done func(), running bool, err error) {
	if info, err := control.ReadInfo(c.String("data-dir")); err == nil {
		cc := &control.Client{Info: info}
		var st control.StatusJSON
		if cc.Do(ctx, "GET", "/api/v1/status", nil, &st) == nil {
			if st.Links+st.Leaves == 0 {
				return nil, nil, false, noLinks(c.String("data-dir"))
			}
			return cc, func() {}, true, nil
		}
	}
	peers := c.StringSlice("peer")
	if len(peers) == 0 {
		return nil, nil, false, cli.Exit("no servent is running with --data-dir "+c.String("data-dir")+
			" and no --peer was given: start `gnutella serve` or pass --peer HOST:PORT", 2)
	}
	log, err := logger(c)
	if err != nil {
		return nil, nil, false, cli.Exit(err.Error(), 2)
	}
	ncfg := servent.DefaultNodeConfig()
	cfg := &ncfg.Config
	cfg.ListenAddr = "0.0.0.0:0"
	cfg.WantLinks = len(peers)
	cfg.AllowLoopback = c.Bool("allow-private")
	cfg.AllowPrivate = c.Bool("allow-private")
	cfg.Logger = log
	n, err := servent.NewNode(ncfg)
	if err != nil {
		return nil, nil, false, cli.Exit(startHint(err), 1)
	}
	if err := n.Start(); err != nil {
		return nil, nil, false, cli.Exit(startHint(err), 1)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	linked, problems := linkPeers(wctx, n, peers)
	cancel()
	if linked == 0 {
		_ = n.Stop()
		return nil, nil, false, cli.Exit("could not link to any --peer, so nothing was searched:\n"+indent(problems), 1)
	}
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, "gnutella: not linked:", p)
	}
	ctl, err := control.Start(n, control.DefaultAddr)
	if err != nil {
		_ = n.Stop()
		return nil, nil, false, cli.Exit(err.Error(), 1)
	}
	return &control.Client{Info: ctl.Info()}, func() {
		_ = ctl.Close()
		_ = n.Stop()
	}, false, nil
}
