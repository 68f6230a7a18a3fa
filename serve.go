package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"gnutella/servent"
	"gnutella/servent/control"
)

func serveCommand() *cli.Command {
	nd := servent.DefaultNodeConfig()
	d := nd.Config
	return &cli.Command{
		Name:  "serve",
		Usage: "run a servent: listen, join the network and route until Ctrl-C",
		Description: "Runs a Gnutella 0.6 servent on one port (Gnutella links, HTTP and push callbacks).\n" +
			"It joins through --peer addresses, its saved host cache, any --gwebcache and any --uhc, keeps\n" +
			"--links links up, and on SIGINT/SIGTERM says Bye 200 to every link and exits.\n" +
			"No bootstrap host is built in: give at least one --peer or --gwebcache the first time.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: d.ListenAddr, Usage: "`ADDR`ess (ip:port) of the one listening port"},
			&cli.StringSliceFlag{Name: "peer", Usage: "`HOST:PORT` of a servent to join through (repeatable)"},
			&cli.StringSliceFlag{Name: "gwebcache", Usage: "`URL` of a GWebCache to ask for hosts (repeatable)"},
			&cli.BoolFlag{Name: "no-tls", Usage: "neither accept TLS on the listening port nor dial TLS to peers that say they speak it (docs/protocol.md §12)"},
			&cli.BoolFlag{Name: "no-oob", Usage: "do not ask for out-of-band hits (by UDP) in our searches; we still answer others' OOB queries"},
			&cli.BoolFlag{Name: "no-oob-proxy", Usage: "as an ultrapeer, do not OOB-proxy our leaves' queries that ask for no out-of-band hits (docs/protocol.md §11.6)"},
			&cli.StringSliceFlag{Name: "uhc", Usage: "`HOST:PORT` of a UDP host cache to ping for ultrapeers (repeatable; any ultrapeer of ours is one)"},
			dataDirFlag("`DIR` for the servent ID, host cache, control.json, config.toml and (by default) downloads"),
			&cli.IntFlag{Name: "links", Value: d.WantLinks, Usage: "how many ultrapeer links to keep dialling for"},
			&cli.IntFlag{Name: "max-links", Value: d.MaxLinks, Usage: "most ultrapeer links accepted; more get 503 with X-Try-Ultrapeers. Each takes 15 KB idle (more with its QRP table and traffic; 50 KB with deflate) and a file descriptor (BENCHMARKS.md)"},
			&cli.IntFlag{Name: "max-leaves", Value: d.MaxLeaves, Usage: "most leaves accepted as an ultrapeer; more get 503 with X-Try-Ultrapeers. Each idle leaf takes about 4-6 KB on Linux over plain TCP (its reader parks), 8-11 KB with deflate, and a file descriptor (BENCHMARKS.md). The default is sized on this machine from the descriptor limit (ulimit -n) and an eighth of the memory at 16 KiB a leaf, at most 5,000"},
			&cli.IntFlag{Name: "max-ttl", Value: int(d.MaxTTL), Usage: "clamp of hops+TTL when relaying (4 as gtk-gnutella, 7 for a 0.4-style network)"},
			&cli.BoolFlag{Name: "no-deflate", Usage: "neither offer nor accept compressed links (gtk-gnutella ultrapeers refuse such leaves)"},
			&cli.BoolFlag{Name: "no-pong-caching", Usage: "flood pings and route pongs back (0.4 behaviour) instead of answering from the pong cache"},
			&cli.BoolFlag{Name: "allow-private", Usage: "accept loopback and private addresses in the host cache, prove reachability and call back pushes there (for a local testnet)"},
			&cli.StringSliceFlag{Name: "share", Usage: "`DIR` to share, recursively (repeatable)"},
			&cli.StringFlag{Name: "downloads", DefaultText: "DIR/downloads", Usage: "`DIR` where downloads go (DIR/downloads is in --data-dir; \"\" turns downloading off)"},
			&cli.IntFlag{Name: "upload-slots", Value: nd.UploadSlots, Usage: "uploads at once; more wait in the PARQ queue or get 503 with Retry-After"},
			&cli.StringFlag{Name: "upload-rate", Value: "0", Usage: "`BYTES` per second for all uploads together, with K, M or G (1024s): 100K, 2M (0: unlimited)"},
			&cli.StringFlag{Name: "control", Value: control.DefaultAddr, Usage: "loopback `ADDR`ess of the control API (\"\" to turn it off); its token goes to DIR/control.json"},
			&cli.StringFlag{Name: "mode", Value: d.Mode.String(), Usage: "leaf, ultrapeer or auto (leaf until eligible to be an ultrapeer)"},
		},
		Action: func(c *cli.Context) error {
			log, err := logger(c)
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			ncfg := servent.DefaultNodeConfig()
			ncfg.ShareDirs = c.StringSlice("share")
			ncfg.DownloadDir = c.String("downloads")
			if !c.IsSet("downloads") {
				ncfg.DownloadDir = filepath.Join(c.String("data-dir"), "downloads")
			}
			ncfg.UploadSlots = c.Int("upload-slots")
			if ncfg.UploadRate, err = parseRate(c.String("upload-rate")); err != nil {
				return cli.Exit("--upload-rate: "+err.Error(), 2)
			}
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
			cfg.UHCs = c.StringSlice("uhc")
			if c.Bool("no-tls") {
				cfg.TLS = false
			}
			if c.Bool("no-oob") {
				cfg.OOB = false
			}
			if c.Bool("no-oob-proxy") {
				cfg.OOBProxy = false
			}
			cfg.DataDir = c.String("data-dir")
			cfg.WantLinks = c.Int("links")
			cfg.MaxLinks = c.Int("max-links")
			if c.Int("max-leaves") < 0 {
				return cli.Exit("--max-leaves must be 0 or more", 2)
			}
			cfg.MaxLeaves = c.Int("max-leaves")
			if c.Int("max-ttl") < 1 || c.Int("max-ttl") > 15 {
				return cli.Exit("--max-ttl must be between 1 and 15", 2)
			}
			cfg.MaxTTL = uint8(c.Int("max-ttl"))
			cfg.Deflate = !c.Bool("no-deflate")
			cfg.PongCaching = !c.Bool("no-pong-caching")
			cfg.AllowLoopback = c.Bool("allow-private")
			cfg.AllowPrivate = c.Bool("allow-private")
			cfg.Logger = log
			report := &peerReport{}
			cfg.OnDial = report.dialled
			ncfg.Config = cfg
			unlock, pid, err := lockDataDir(cfg.DataDir)
			switch {
			case errors.Is(err, errDataDirInUse):
				who := "another servent"
				if pid > 0 {
					who += fmt.Sprintf(" (pid %d)", pid)
				}
				return cli.Exit(fmt.Sprintf("data folder %s is in use by %s: choose another with --data-dir", cfg.DataDir, who), 1)
			case err != nil:
				return cli.Exit(err.Error()+" (choose another folder with --data-dir)", 1)
			}
			defer unlock()
			s, err := servent.NewNode(ncfg)
			if err != nil {
				return cli.Exit(startHint(err), 1)
			}
			warnRefusedPeers(s, cfg.Peers)
			report.learn(s, cfg.Peers)
			if err := s.Start(); err != nil {
				return cli.Exit(startHint(err), 1)
			}
			fmt.Fprintf(os.Stderr, "gnutella: servent %s listening on %s (Ctrl-C to stop)\n", s.ID(), s.Addr())
			if cfg.Mode != servent.ModeLeaf {
				fmt.Fprintf(os.Stderr, "gnutella: as an ultrapeer it takes up to %s and %s (--max-leaves, --max-links)\n",
					plural(cfg.MaxLeaves, "leaf", "leaves"), plural(cfg.MaxLinks, "ultrapeer link", "ultrapeer links"))
			}
			if len(cfg.Peers) == 0 && len(cfg.GWebCaches) == 0 && len(cfg.UHCs) == 0 && s.Hosts().Len() == 0 {
				fmt.Fprintln(os.Stderr, "gnutella: no --peer, no --gwebcache, no --uhc and no saved hosts: this servent links only "+
					"when others dial it; give it a --peer HOST:PORT, a --gwebcache URL or a --uhc HOST:PORT to join a network")
			}
			var ctl *control.Server
			if addr := c.String("control"); addr != "" {
				if ctl, err = control.Start(s, addr); err != nil {
					_ = s.Stop()
					return cli.Exit(err.Error()+` (choose another with --control, or --control "" for none)`, 1)
				}
				fmt.Fprintf(os.Stderr, "gnutella: control API on http://%s/ (token in %s)\n", ctl.Addr(),
					filepath.Join(cfg.DataDir, "control.json"))
				fmt.Fprintf(os.Stderr, "gnutella: browser UI: open %s (works once, for 10 minutes; `gnutella ui` prints a fresh one)\n", ctl.LoginURL())
			}
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			<-sig
			signal.Stop(sig)
			fmt.Fprintln(os.Stderr, "gnutella: saying Bye to every link...")
			if ctl != nil {
				_ = ctl.Close()
			}
			return s.Stop()
		},
	}
}

// startHint is what a user can do about an error of servent.NewNode or
// Start: the library says what went wrong, the CLI which flag changes it.
func startHint(err error) string {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return err.Error() + " (another program uses that port: choose another with --listen)"
	case errors.Is(err, servent.ErrListen):
		return err.Error() + " (give --listen an ip:port this machine has, such as 127.0.0.1:6346)"
	case errors.Is(err, servent.ErrDataDir):
		return err.Error() + " (choose another folder with --data-dir)"
	}
	return err.Error()
}

// parseRate reads a rate in bytes per second as people write it: plain
// bytes ("65536"), or a number with K, M or G (units of 1024, as sizes are
// printed), optionally followed by "B" and "/s": "100K", "1.5M", "2MB/s".
// "0" means unlimited.
func parseRate(v string) (int64, error) {
	s := strings.TrimSpace(v)
	s = strings.TrimSuffix(strings.TrimSuffix(s, "/s"), "/S")
	s = strings.TrimRight(s, "bB")
	mult := 1.0
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			s = strings.TrimSpace(s[:n-1])
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || s == "" || strings.ContainsAny(s, "eExXpP_+-") || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a rate: write bytes per second, such as 65536, 100K, 2M or 1G (0: unlimited)", v)
	}
	b := f * mult
	if b >= math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large", v)
	}
	if b > 0 && b < 1 {
		return 0, fmt.Errorf("%q is less than a byte per second (0 means unlimited)", v)
	}
	return int64(b), nil
}

// plural is n with the noun that fits it: "1 leaf", "5000 leaves".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
