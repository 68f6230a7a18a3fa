package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"gnutella/routing"
	"gnutella/servent/control"
	"gnutella/transfer"
)

func getCommand() *cli.Command {
	d := control.DefaultSearchRequest()
	return &cli.Command{
		Name:      "get",
		Usage:     "download a file through the running servent, showing its progress",
		ArgsUsage: "urn:sha1:<base32> | magnet:?xt=urn:sha1:<base32> | SEARCH-ID N | N",
		Description: "Asks the servent running with --data-dir to download (into its --downloads folder):\n" +
			"a URN or magnet link is searched for first and fetched from every source found; a search\n" +
			"ID and a row number N (as gnutella search prints them) fetch row N's file from its sources;\n" +
			"N alone is row N of the last search gnutella search made through this servent. Downloads\n" +
			"are verified by SHA-1 and resume after an interruption.\n\n" +
			"It shows where the download stands (looking for sources, downloading from N sources,\n" +
			"verifying) until the file is saved (exit 0) or the download fails (exit 1). Ctrl-C asks\n" +
			"whether to cancel the download (y: cancelled, exit 1); any other answer, or Ctrl-C when\n" +
			"there is no terminal to ask on, leaves it running in the servent (exit 0): gnutella\n" +
			"downloads follows it. --detach prints the download's ID and returns once it is queued.\n" +
			"A file already in the download list that is paused, failed or cancelled goes on.",
		Flags: []cli.Flag{
			dataDirFlag("`DIR` of the running servent"),
			&cli.DurationFlag{Name: "search-timeout", Value: time.Duration(d.TimeoutMS) * time.Millisecond, Usage: "how long to look for sources of a URN"},
			&cli.BoolFlag{Name: "detach", Usage: "return once the download is queued, printing its ID (gnutella downloads follows it)"},
		},
		Action: func(c *cli.Context) error {
			cc, err := runningServent(c.String("data-dir"))
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var req control.DownloadRequest
			switch {
			case c.NArg() == 2:
				var n int
				if _, err := fmt.Sscan(c.Args().Get(1), &n); err != nil || n < 1 {
					return cli.Exit("N must be a row number of the search's results (1, 2, ...), as gnutella search prints them", 2)
				}
				var err error
				if req, err = rowRequest(ctx, cc, c.Args().Get(0), n); err != nil {
					return err
				}
			case c.NArg() == 1 && isRowNumber(c.Args().First()):
				id, err := lastSearch(c.String("data-dir"))
				if err != nil {
					return cli.Exit("no last search to take row "+c.Args().First()+" of: run gnutella search WORDS first "+
						"(through the servent running with --data-dir "+c.String("data-dir")+"), or give SEARCH-ID N", 2)
				}
				n, _ := strconv.Atoi(c.Args().First())
				if req, err = rowRequest(ctx, cc, id, n); err != nil {
					return err
				}
			case c.NArg() == 1:
				urn := c.Args().First()
				if strings.HasPrefix(urn, "magnet:") {
					u, err := control.MagnetURN(urn)
					if err != nil {
						return cli.Exit(err.Error(), 2)
					}
					urn = u
				}
				var status control.StatusJSON
				if err := cc.Do(ctx, "GET", "/api/v1/status", nil, &status); err == nil && status.Links+status.Leaves == 0 {
					return noLinks(c.String("data-dir"))
				}
				sr := d
				sr.URN, sr.TimeoutMS, sr.MaxResults = urn, int(c.Duration("search-timeout")/time.Millisecond), 10
				id, err := cc.StartSearch(ctx, sr)
				if err != nil {
					return cli.Exit(err.Error(), 1)
				}
				fmt.Fprintf(os.Stderr, "looking for sources of %s…\n", urn)
				n := 0
				_ = cc.StreamResults(ctx, id, func(routing.Hit) { n++ })
				if ctx.Err() != nil {
					return cli.Exit("stopped while looking for sources; nothing was queued", 1)
				}
				if n == 0 {
					firewalledHint(ctx, cc)
					return cli.Exit("no source found for "+urn+": nobody reachable shares it", 1)
				}
				req.SearchID, req.URN = id, urn
			default:
				return cli.Exit("give a urn:sha1, a magnet link, a search ID and a row number (gnutella get SEARCH-ID N), "+
					"or a row number of the last search (gnutella get N)", 2)
			}
			st, err := cc.StartDownload(ctx, req)
			if err != nil {
				return apiExit(err, "get", "", c.String("data-dir"))
			}
			// The file is already in the list, stopped: asking for it again
			// means wanting it, so it goes on (a cancelled one from nothing).
			switch st.State {
			case transfer.StatePaused, transfer.StateCancelled, transfer.StateFailed:
				was := st.State
				again, err := cc.ResumeDownload(ctx, st.ID)
				if err != nil {
					return apiExit(err, "resume", st.ID, c.String("data-dir"))
				}
				fmt.Fprintf(os.Stderr, "download %s was %s; it goes on\n", st.ID, was)
				st = again
			}
			if c.Bool("detach") {
				fmt.Println(st.ID)
				fmt.Fprintf(os.Stderr, "gnutella: download %s queued (%s, %s); \"gnutella downloads\" shows its progress\n",
					st.ID, st.Name, humanSize(uint64(st.Size)))
				return nil
			}
			// From here Ctrl-C asks before cancelling: the signal goes to
			// sig, registered before the search's handler is let go so that
			// none is missed.
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sig)
			stop()
			return follow(cc, st, c.String("data-dir"), sig)
		},
	}
}

// follow shows download st's progress on a status line until it ends. On
// Ctrl-C it asks whether to cancel the download when it can ask (stdin and
// stderr are a terminal); otherwise the download goes on in the servent.
func follow(cc *control.Client, st transfer.Status, dir string, sig <-chan os.Signal) error {
	ctx := context.Background()
	tty := isTerminal(os.Stdin) && isTerminal(os.Stderr)
	line := newStatusLine(tty, st)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		switch st.State {
		case transfer.StateDone:
			line.clear()
			fmt.Fprintf(os.Stderr, "verified and saved: %s\n", st.Path)
			return nil
		case transfer.StateFailed:
			line.clear()
			return cli.Exit(fmt.Sprintf("download %s failed: %s (\"gnutella downloads resume %s\" tries again)", st.ID, st.Error, st.ID), 1)
		case transfer.StateCancelled:
			line.clear()
			return cli.Exit(fmt.Sprintf("download %s was cancelled", st.ID), 1)
		}
		line.show(st)
		select {
		case <-tick.C:
		case s := <-sig:
			line.clear()
			if !tty || s != os.Interrupt || !askYes("cancel the download? [y/N] ", sig) {
				fmt.Fprintf(os.Stderr, "stopped watching; download %s goes on in the servent: \"gnutella downloads\" shows it, "+
					"\"gnutella downloads cancel %s\" stops it\n", st.ID, st.ID)
				return nil
			}
			if _, err := cc.CancelDownload(ctx, st.ID); err != nil {
				return apiExit(err, "cancel", st.ID, dir)
			}
			return cli.Exit(fmt.Sprintf("cancelled download %s and deleted its partial file", st.ID), 1)
		}
		pollCtx, cancel := context.WithTimeout(ctx, 10*time.Second) // a servent that hangs is as good as gone
		next, err := cc.Download(pollCtx, st.ID)
		cancel()
		if err != nil {
			line.clear()
			var e *control.Error
			if errors.As(err, &e) && e.Status == http.StatusNotFound {
				return cli.Exit(fmt.Sprintf("download %s was removed from the servent's list", st.ID), 1)
			}
			return cli.Exit(fmt.Sprintf("lost the servent running with --data-dir %s (%v); the download goes on when it runs again", dir, err), 1)
		}
		st = next
	}
}

// askYes asks question on stderr and reports whether the answer read from
// stdin is yes. Another signal while it waits means no.
func askYes(question string, sig <-chan os.Signal) bool {
	fmt.Fprint(os.Stderr, question)
	answer := make(chan string, 1)
	go func() { // left blocked on stdin if a signal comes first: the command ends then
		s, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		answer <- s
	}()
	select {
	case a := <-answer:
		a = strings.ToLower(strings.TrimSpace(a))
		return a == "y" || a == "yes"
	case <-sig:
		fmt.Fprintln(os.Stderr)
		return false
	}
}

func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// statusLine shows where a download stands: on a terminal one line, redrawn
// with a progress bar; otherwise a line each time the phase changes, so
// that a log stays readable.
type statusLine struct {
	bar  *progressbar.ProgressBar // nil when not on a terminal
	last string
}

func newStatusLine(tty bool, st transfer.Status) *statusLine {
	l := &statusLine{}
	if tty {
		l.bar = progressbar.NewOptions64(st.Size, progressbar.OptionSetDescription(phase(st, true)),
			progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetWidth(24),
			progressbar.OptionSetPredictTime(false), progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionShowDescriptionAtLineEnd())
	}
	return l
}

func (l *statusLine) show(st transfer.Status) {
	if l.bar != nil {
		_ = l.bar.Set64(min(st.Have, st.Size))
		l.bar.Describe(phase(st, true))
		return
	}
	if p := phase(st, false); p != l.last {
		l.last = p
		fmt.Fprintln(os.Stderr, p)
	}
}

func (l *statusLine) clear() {
	if l.bar != nil {
		_ = l.bar.Clear()
	}
}

// phase says in words where download st stands: "looking for sources…",
// "downloading from 3 sources, 1.2 MB/s", "verifying" (the progress bar
// shows the percentage). Without numbers it leaves out the speed and the
// time of the next try, which change all the time.
func phase(st transfer.Status, numbers bool) string {
	switch st.State {
	case transfer.StateVerifying:
		return "verifying"
	case transfer.StatePaused:
		return fmt.Sprintf("paused; \"gnutella downloads resume %s\" goes on", st.ID)
	case transfer.StateQueued:
		if st.ActiveSources == 0 {
			return "queued" // for a moment, or behind other downloads: the list says which
		}
	}
	if st.ActiveSources == 0 {
		s := "looking for sources…"
		if numbers && st.State == transfer.StateWaiting && !st.RetryAt.IsZero() {
			s += fmt.Sprintf(" (%d known, busy; next try in %s)", st.Sources, max(time.Until(st.RetryAt), 0).Round(time.Second))
		}
		return s
	}
	sources := "1 source"
	if st.ActiveSources != 1 {
		sources = fmt.Sprintf("%d sources", st.ActiveSources)
	}
	if !numbers || st.Speed <= 0 {
		return "downloading from " + sources
	}
	return fmt.Sprintf("downloading from %s, %s/s", sources, humanSize(uint64(st.Speed)))
}

// isRowNumber reports whether a is a row number: 1, 2, ... (a URN or a
// magnet link never is).
func isRowNumber(a string) bool {
	n, err := strconv.Atoi(a)
	return err == nil && n >= 1
}

// rowRequest is the download of row n (from 1) of search id's results, as
// gnutella search numbers them (groupHits): by the row's URN, with the
// search's hits for it as sources, or the row's first hit when it has none.
func rowRequest(ctx context.Context, cc *control.Client, id string, n int) (control.DownloadRequest, error) {
	var sj control.SearchJSON
	if err := cc.Do(ctx, "GET", "/api/v1/searches/"+url.PathEscape(id), nil, &sj); err != nil {
		var e *control.Error
		if errors.As(err, &e) && e.Status == http.StatusNotFound {
			return control.DownloadRequest{}, cli.Exit("the servent has no search "+id+
				": search again (it keeps the last 100 searches, until it restarts)", 1)
		}
		return control.DownloadRequest{}, cli.Exit(err.Error(), 1)
	}
	rows := groupHits(sj.Hits)
	if n > len(rows) {
		return control.DownloadRequest{}, cli.Exit(fmt.Sprintf("search %s has %d rows, no row %d", id, len(rows), n), 2)
	}
	r := rows[n-1]
	if r.URN != "" {
		return control.DownloadRequest{SearchID: id, URN: r.URN}, nil
	}
	return control.DownloadRequest{SearchID: id, Hit: r.FirstHit}, nil
}
