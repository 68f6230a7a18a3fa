package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"gnutella/servent"
	"gnutella/servent/gwc"
)

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
			ln, err := net.Listen("tcp", c.String("listen"))
			if err != nil {
				hint := "give --listen an ip:port this machine has, such as 127.0.0.1:8080"
				if errors.Is(err, syscall.EADDRINUSE) {
					hint = "another program uses that port: choose another with --listen"
				}
				return cli.Exit(fmt.Sprintf("cannot listen on %s: %v (%s)", c.String("listen"), err, hint), 1)
			}
			srv := &http.Server{Handler: cache, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
			log.Info().Stringer("listen", ln.Addr()).Msg("GWebCache serving")
			// The port actually bound: --listen may have asked for any (:0).
			fmt.Fprintf(os.Stderr, "gnutella: GWebCache at http://%s/ (Ctrl-C to stop)\n", ln.Addr())
			go func() {
				sig := make(chan os.Signal, 1)
				signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
				<-sig
				_ = srv.Close()
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return cli.Exit(fmt.Sprintf("GWebCache on %s: %v", ln.Addr(), err), 1)
			}
			return nil
		},
	}
}
