package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"gnutella/servent/control"
	"gnutella/transfer"
)

func statusCommand() *cli.Command {
	return askCommand("status", "show the running servent: ID, role, address, links, shares, downloads, uptime",
		"Asks the servent running with --data-dir (through its control API) how it stands:\n"+
			"its servent ID, role (leaf or ultrapeer, and whether it counts as firewalled), listening\n"+
			"address, links, shared files, active downloads and uptime. --json prints the same for machines.",
		func(ctx context.Context, cc *control.Client, asJSON bool) error {
			st, err := servingStatus(ctx, cc)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(os.Stdout, st)
			}
			printStatus(os.Stdout, st)
			return nil
		})
}

// askCommand is a command that asks the servent running with --data-dir
// something and prints the answer, as a table or with --json as JSON:
// ask does that; its errors are the control API's.
func askCommand(name, usage, description string, ask func(ctx context.Context, cc *control.Client, asJSON bool) error) *cli.Command {
	return &cli.Command{
		Name: name, Usage: usage, Description: description,
		Flags: []cli.Flag{
			dataDirFlag("`DIR` of the running servent"),
			&cli.BoolFlag{Name: "json", Usage: "print it as JSON (for machines)"},
		},
		Action: func(c *cli.Context) error {
			dir := c.String("data-dir")
			cc, err := runningServent(dir)
			if err != nil {
				return err
			}
			if err := ask(c.Context, cc, c.Bool("json")); err != nil {
				return apiExit(err, name, "", dir)
			}
			return nil
		},
	}
}

// statusJSON is what status --json prints: the API's status and how many
// downloads there are, and are under way (-1 each when the servent does not
// download).
type statusJSON struct {
	control.StatusJSON
	Downloads       int `json:"downloads"`
	DownloadsActive int `json:"downloads_active"`
}

// servingStatus asks the servent of cc for its status and its downloads.
func servingStatus(ctx context.Context, cc *control.Client) (statusJSON, error) {
	var st statusJSON
	if err := cc.Do(ctx, "GET", "/api/v1/status", nil, &st.StatusJSON); err != nil {
		return st, err
	}
	all, err := cc.Downloads(ctx)
	var e *control.Error
	switch {
	case errors.As(err, &e) && (e.Status == http.StatusServiceUnavailable || e.Status == http.StatusNotImplemented):
		st.Downloads, st.DownloadsActive = -1, -1 // no download folder
		return st, nil
	case err != nil:
		return st, err
	}
	st.Downloads = len(all)
	for _, d := range all {
		switch d.State {
		case transfer.StateDone, transfer.StateFailed, transfer.StatePaused, transfer.StateCancelled:
		default:
			st.DownloadsActive++
		}
	}
	return st, nil
}

func printStatus(w io.Writer, st statusJSON) {
	role := st.Mode
	if st.Firewalled {
		role += ", firewalled (nobody has connected to it from outside yet)"
	}
	fmt.Fprintf(w, "servent    %s (gnutella/%s)\n", st.ServentID, st.Version)
	fmt.Fprintf(w, "role       %s\n", role)
	fmt.Fprintf(w, "listening  %s\n", st.Addr)
	fmt.Fprintf(w, "links      %d to ultrapeers and normal servents, %d leaves (gnutella links lists them)\n", st.Links, st.Leaves)
	if l := st.Library; l != nil {
		fmt.Fprintf(w, "shares     %d files, %s", l.Files, humanSize(uint64(l.Bytes)))
		if l.HashedFiles < l.Files {
			fmt.Fprintf(w, " (%d hashed so far; only hashed files are found)", l.HashedFiles)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintln(w, "shares     nothing (serve --share DIR shares a folder)")
	}
	if st.Downloads < 0 {
		fmt.Fprintln(w, "downloads  off (serve --downloads \"\" turned them off)")
	} else {
		fmt.Fprintf(w, "downloads  %d active, %d in the list\n", st.DownloadsActive, st.Downloads)
	}
	fmt.Fprintf(w, "uptime     %s\n", (time.Duration(st.UptimeSec) * time.Second).String())
	fmt.Fprintf(w, "hosts      %d known\n", st.Hosts)
}
