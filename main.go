// Command gnutella is a Gnutella servent: see README.md.
package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"gnutella/protocol"
	"gnutella/servent"
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
			cacheCommand(),
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
			&cli.BoolFlag{Name: "allow-private", Usage: "accept loopback and private addresses in the host cache (for a local testnet)"},
		},
		Action: func(c *cli.Context) error {
			log, err := logger(c)
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			cfg := servent.DefaultConfig()
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
			s, err := servent.New(cfg)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if err := s.Start(); err != nil {
				return cli.Exit(err.Error(), 1)
			}
			fmt.Fprintf(os.Stderr, "gnutella: servent %s listening on %s (Ctrl-C to stop)\n", s.ID(), s.Addr())
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
			gwc := servent.NewGWebCacheServer(time.Now)
			gwc.AllowLoopback = c.Bool("allow-private")
			gwc.AllowPrivate = c.Bool("allow-private")
			srv := &http.Server{Addr: c.String("listen"), Handler: gwc, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
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
