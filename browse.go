package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"gnutella/servent"
	"gnutella/servent/control"
	"gnutella/transfer"
)

func browseCommand() *cli.Command {
	return &cli.Command{
		Name:      "browse",
		Usage:     "list the files another servent shares (Browse Host)",
		ArgsUsage: "HOST:PORT",
		Description: "Asks the servent at HOST:PORT for its whole library (GET / on its port, as gtk-gnutella\n" +
			"and LimeWire do) and prints one numbered row per file, as gnutella search does. Through\n" +
			"the servent running with --data-dir (when there is one) the browse is kept as a search:\n" +
			"gnutella get SEARCH-ID N downloads row N. Without one, the rows are only printed.\n" +
			"--servent-id (32 hex digits, from a search's hits) lets the running servent reach a\n" +
			"firewalled host by Push. At most 10,000 files are read, for at most two minutes.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: defaultDataDir(), Usage: "`DIR` of the running servent to use"},
			&cli.StringFlag{Name: "servent-id", Usage: "the host's servent ID, to reach it by Push when it is firewalled"},
			&cli.BoolFlag{Name: "json", Usage: "print the search ID and the rows as JSON (for machines)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("give the host to browse: gnutella browse HOST:PORT", 2)
			}
			host, err := netip.ParseAddrPort(strings.TrimSpace(c.Args().First()))
			if err != nil || host.Port() == 0 {
				return cli.Exit("HOST:PORT must be an IP address and a port, e.g. 192.0.2.7:6346", 2)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if info, err := control.ReadInfo(c.String("data-dir")); err == nil {
				cc := &control.Client{Info: info}
				if cc.Do(ctx, "GET", "/api/v1/status", nil, &control.StatusJSON{}) == nil {
					bj, err := cc.Browse(ctx, host.String(), c.String("servent-id"))
					if err != nil {
						return cli.Exit(err.Error(), 1)
					}
					if bj.Error != "" {
						fmt.Fprintln(os.Stderr, "gnutella: browse ended early:", bj.Error)
					}
					rows := groupHits(bj.Hits)
					if c.Bool("json") {
						return printRowsJSON(os.Stdout, bj.ID, rows)
					}
					printRows(os.Stdout, bj.ID, rows, false)
					return nil
				}
			}
			if c.String("servent-id") != "" {
				return cli.Exit("--servent-id needs a running servent (gnutella serve) to send the Push", 2)
			}
			// No servent running: browse from here, with the same limits.
			search, err := servent.BrowseHost(ctx, &transfer.Browser{UserAgent: "gnutella/" + servent.Version}, host)
			if err != nil {
				if search.Len() == 0 {
					return cli.Exit(browseHint(err), 1)
				}
				fmt.Fprintln(os.Stderr, "gnutella: browse ended early:", err)
			}
			rows := groupHits(search.Hits())
			if c.Bool("json") {
				return printRowsJSON(os.Stdout, "", rows)
			}
			printRows(os.Stdout, "", rows, false)
			return nil
		},
	}
}

// browseHint explains a browse that found nothing.
func browseHint(err error) string {
	switch {
	case errors.Is(err, transfer.ErrBrowseUnreachable):
		return err.Error() + " (a firewalled host can be browsed only by Push: run gnutella serve, then gnutella browse --servent-id ID)"
	case errors.Is(err, transfer.ErrBrowseRefused):
		return err.Error() + " (the host does not let itself be browsed, or not now)"
	}
	return err.Error()
}
