package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"gnutella/servent/control"
)

func linksCommand() *cli.Command {
	return askCommand("links", "list the running servent's links: address, role, direction, user agent, deflate, TLS, messages, age",
		"Asks the servent running with --data-dir for its Gnutella links, one line each: the peer's\n"+
			"address (where it listens when it said so), its role, whether we dialled it (out) or it\n"+
			"dialled us (in), its user agent, whether the link is deflated (in, out or both), whether it\n"+
			"runs over TLS, the messages received and sent, and how long the link has been up. --json prints the same for machines.",
		func(ctx context.Context, cc *control.Client, asJSON bool) error {
			var links []control.LinkJSON
			if err := cc.Do(ctx, "GET", "/api/v1/links", nil, &links); err != nil {
				return err
			}
			if asJSON {
				if links == nil {
					links = []control.LinkJSON{}
				}
				return writeJSON(os.Stdout, links)
			}
			printLinks(os.Stdout, links, time.Now())
			return nil
		})
}

// printLinks prints one line per link; now is when the ages are counted to.
func printLinks(w io.Writer, links []control.LinkJSON, now time.Time) {
	if len(links) == 0 {
		fmt.Fprintln(w, "No links. gnutella status says more; the servent's log (--log-level info) says why a dial failed.")
		return
	}
	fmt.Fprintf(w, "%-22s  %-9s  %-3s  %-20s  %-7s  %-3s  %8s  %8s  %s\n", "ADDRESS", "ROLE", "DIR", "USER AGENT", "DEFLATE", "TLS", "IN", "OUT", "AGE")
	for _, l := range links {
		addr := l.Remote
		if l.Listen != "" {
			addr = l.Listen
		}
		dir := "out"
		if l.Inbound {
			dir = "in"
		}
		deflate := "no"
		switch {
		case l.DeflateIn && l.DeflateOut:
			deflate = "both"
		case l.DeflateIn:
			deflate = "in"
		case l.DeflateOut:
			deflate = "out"
		}
		ua := l.UserAgent
		if ua == "" {
			ua = "?"
		}
		tls := "no"
		if l.TLS {
			tls = "yes"
		}
		age := max(now.Sub(l.Since), 0).Round(time.Second)
		fmt.Fprintf(w, "%-22s  %-9s  %-3s  %-20s  %-7s  %-3s  %8d  %8d  %s\n", addr, l.Kind, dir, clip(ua, 20), deflate, tls,
			l.Stats.RxMessages, l.Stats.TxMessages, age)
	}
}
