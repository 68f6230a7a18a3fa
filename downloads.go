package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"gnutella/servent/control"
	"gnutella/transfer"
)

func downloadsCommand() *cli.Command {
	return &cli.Command{
		Name:      "downloads",
		Usage:     "list the running servent's downloads; pause, resume, cancel or remove one, or change its priority",
		ArgsUsage: "[list | pause ID | resume ID | cancel ID | remove ID | priority ID N]",
		Description: "Talks to the servent running with --data-dir. Without a subcommand it lists the downloads:\n" +
			"ID, state, progress, size, sources in use of those known, speed, priority and name.\n" +
			"The ID is what the other subcommands take. A paused download stays paused across a\n" +
			"restart of the servent; cancel stops a download and deletes its partial file; remove\n" +
			"takes a finished, failed or cancelled download off the list (a finished file stays).",
		Flags:  downloadsFlags(true),
		Action: listDownloads,
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "list the downloads (the default)", Flags: downloadsFlags(true), Action: listDownloads},
			downloadAction("pause", "pause a download (it stays paused across a restart)",
				func(ctx context.Context, cc *control.Client, id string) (transfer.Status, error) {
					return cc.PauseDownload(ctx, id)
				},
				func(st transfer.Status) string {
					return fmt.Sprintf("paused %s (%s, %s of %s); \"gnutella downloads resume %s\" goes on with it",
						st.ID, st.Name, percent(st), humanSize(uint64(st.Size)), st.ID)
				}),
			downloadAction("resume", "resume a paused download, or start a failed or cancelled one again",
				func(ctx context.Context, cc *control.Client, id string) (transfer.Status, error) {
					return cc.ResumeDownload(ctx, id)
				},
				func(st transfer.Status) string {
					return fmt.Sprintf("resumed %s (%s); \"gnutella downloads\" shows its progress", st.ID, st.Name)
				}),
			downloadAction("cancel", "stop a download and delete its partial file",
				func(ctx context.Context, cc *control.Client, id string) (transfer.Status, error) {
					return cc.CancelDownload(ctx, id)
				},
				func(st transfer.Status) string {
					return fmt.Sprintf("cancelled %s (%s) and deleted its partial file; \"gnutella downloads remove %s\" takes it off the list",
						st.ID, st.Name, st.ID)
				}),
			downloadAction("remove", "take a finished, failed or cancelled download off the list",
				func(ctx context.Context, cc *control.Client, id string) (transfer.Status, error) {
					st, err := cc.Download(ctx, id)
					if err != nil {
						return st, err
					}
					return st, cc.RemoveDownload(ctx, id)
				},
				func(st transfer.Status) string {
					if st.State == transfer.StateDone && st.Path != "" {
						return fmt.Sprintf("removed %s (%s) from the list; the file stays: %s", st.ID, st.Name, st.Path)
					}
					return fmt.Sprintf("removed %s (%s) from the list", st.ID, st.Name)
				}),
			{
				Name:      "priority",
				Usage:     "set a download's priority: higher runs first (default 0)",
				ArgsUsage: "ID N",
				Flags:     downloadsFlags(false),
				Action: func(c *cli.Context) error {
					if c.NArg() != 2 {
						return cli.Exit(`downloads priority needs a download ID and a number (gnutella downloads priority ID N); "gnutella downloads" lists the IDs`, 2)
					}
					p, err := strconv.Atoi(c.Args().Get(1))
					if err != nil {
						return cli.Exit(fmt.Sprintf("priority %q is not a whole number: higher runs first, 0 is the default", c.Args().Get(1)), 2)
					}
					cc, err := runningServent(dataDirOf(c))
					if err != nil {
						return err
					}
					id := c.Args().First()
					st, err := cc.SetDownloadPriority(context.Background(), id, p)
					if err != nil {
						return apiExit(err, "priority", id, dataDirOf(c))
					}
					fmt.Printf("%s (%s) now has priority %d; higher runs first\n", st.ID, st.Name, st.Priority)
					return nil
				},
			},
		},
	}
}

// downloadsFlags are the flags of downloads and its subcommands: each
// takes --data-dir (before or after the subcommand's name, see dataDirOf).
func downloadsFlags(list bool) []cli.Flag {
	fl := []cli.Flag{dataDirFlag("`DIR` of the running servent")}
	if list {
		fl = append(fl, &cli.BoolFlag{Name: "json", Usage: "print the downloads as JSON (for machines)"})
	}
	return fl
}

// dataDirOf is --data-dir as given to the subcommand or, when not there,
// to downloads itself ("downloads --data-dir D pause ID").
func dataDirOf(c *cli.Context) string {
	for _, x := range c.Lineage() {
		for _, n := range x.LocalFlagNames() {
			if n == "data-dir" {
				return x.String("data-dir")
			}
		}
	}
	return c.String("data-dir")
}

// downloadAction is a subcommand that does one thing to download ID
// through the API and prints what say makes of its status.
func downloadAction(name, usage string, do func(context.Context, *control.Client, string) (transfer.Status, error), say func(transfer.Status) string) *cli.Command {
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "ID",
		Flags:     downloadsFlags(false),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit(fmt.Sprintf(`downloads %s needs one download ID; "gnutella downloads" lists them`, name), 2)
			}
			cc, err := runningServent(dataDirOf(c))
			if err != nil {
				return err
			}
			id := c.Args().First()
			st, err := do(context.Background(), cc, id)
			if err != nil {
				return apiExit(err, name, id, dataDirOf(c))
			}
			fmt.Println(say(st))
			return nil
		},
	}
}

func listDownloads(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("unknown downloads command %q: use list, pause, resume, cancel, remove or priority (gnutella downloads --help)", c.Args().First()), 2)
	}
	cc, err := runningServent(dataDirOf(c))
	if err != nil {
		return err
	}
	all, err := cc.Downloads(context.Background())
	if err != nil {
		return apiExit(err, "list", "", dataDirOf(c))
	}
	if c.Bool("json") {
		if all == nil {
			all = []transfer.Status{}
		}
		return writeJSON(os.Stdout, all)
	}
	printDownloads(os.Stdout, all)
	return nil
}

// printDownloads prints the downloads as a table, one row each, and why
// each failed one failed.
func printDownloads(w io.Writer, all []transfer.Status) {
	if len(all) == 0 {
		fmt.Fprintln(w, "No downloads. gnutella get urn:sha1:<base32> (or gnutella get SEARCH-ID N) starts one.")
		return
	}
	fmt.Fprintf(w, "%-8s  %-11s  %4s  %9s  %7s  %10s  %3s  %s\n", "ID", "STATE", "DONE", "SIZE", "SOURCES", "SPEED", "PRI", "NAME")
	for _, st := range all {
		speed := "-"
		if st.Speed > 0 {
			speed = humanSize(uint64(st.Speed)) + "/s"
		}
		fmt.Fprintf(w, "%-8s  %-11s  %4s  %9s  %7s  %10s  %3d  %s\n", st.ID, st.State, percent(st), humanSize(uint64(st.Size)),
			fmt.Sprintf("%d/%d", st.ActiveSources, st.Sources), speed, st.Priority, st.Name)
	}
	for _, st := range all {
		switch {
		case st.Error == "":
		case st.State == transfer.StateFailed:
			fmt.Fprintf(w, "%s failed: %s%s (\"gnutella downloads resume %s\" tries again)\n", st.ID, st.Error, errorHint(st.Error), st.ID)
		case st.State == transfer.StateConnecting: // "waiting" says why in its own words (a queue, a retry)
			fmt.Fprintf(w, "%s is still trying; its last attempt: %s%s (\"gnutella downloads cancel %s\" stops it)\n",
				st.ID, st.Error, errorHint(st.Error), st.ID)
		}
	}
}

// errorHint says what a user can do about a download error, where we know.
func errorHint(msg string) string {
	if strings.Contains(msg, transfer.ErrNoCallback.Error()) {
		return ". The holder never connected back: it may not reach us, or it refuses to call back a loopback or " +
			"private address (on a local testnet, start every servent with --allow-private)"
	}
	return ""
}

// percent is how much of the file a download has, in whole percent.
func percent(st transfer.Status) string {
	if st.Size <= 0 {
		if st.State == transfer.StateDone {
			return "100%"
		}
		return "0%"
	}
	return strconv.FormatInt(min(st.Have, st.Size)*100/st.Size, 10) + "%"
}

// runningServent is a client of the control API of the servent running
// with data folder dir.
func runningServent(dir string) (*control.Client, error) {
	info, err := control.ReadInfo(dir)
	if err != nil {
		return nil, cli.Exit("no servent running with --data-dir "+dir+": start `gnutella serve` first", 2)
	}
	return &control.Client{Info: info}, nil
}

// apiExit turns an error of the control API about download id ("" for
// none) into the message and exit status a user gets; verb is the
// subcommand that failed.
func apiExit(err error, verb, id, dir string) error {
	var e *control.Error
	switch {
	case !errors.As(err, &e):
		return cli.Exit(fmt.Sprintf("cannot reach the servent running with --data-dir %s (%v): is it still running?", dir, err), 1)
	case e.Status == http.StatusNotFound && id != "":
		return cli.Exit(fmt.Sprintf(`no download %q; "gnutella downloads" lists them`, id), 1)
	case e.Status == http.StatusServiceUnavailable:
		return cli.Exit("the servent running with --data-dir "+dir+" has no download folder (it was started with --downloads \"\"): restart it without that, or with --downloads DIR", 1)
	case e.Status == http.StatusConflict && verb == "remove":
		return cli.Exit(fmt.Sprintf(`%s ("gnutella downloads cancel %s" does that)`, e.Message, id), 1)
	}
	return cli.Exit(e.Message, 1)
}
