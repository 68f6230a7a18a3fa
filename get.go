package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

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
		Usage:     "download a file through the running servent, with a progress bar",
		ArgsUsage: "urn:sha1:<base32> | magnet:?xt=urn:sha1:<base32> | SEARCH-ID N",
		Description: "Asks the servent running with --data-dir (started with --downloads DIR) to download:\n" +
			"a URN or magnet link is searched for first and fetched from every source found; a search\n" +
			"ID and a row number N (as gnutella search prints them) fetch row N's file from its sources. Downloads\n" +
			"are verified by SHA-1 and resume after an interruption.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: defaultDataDir(), Usage: "`DIR` of the running servent"},
			&cli.DurationFlag{Name: "search-timeout", Value: time.Duration(d.TimeoutMS) * time.Millisecond, Usage: "how long to look for sources of a URN"},
		},
		Action: func(c *cli.Context) error {
			info, err := control.ReadInfo(c.String("data-dir"))
			if err != nil {
				return cli.Exit("no servent running with --data-dir "+c.String("data-dir")+
					": start `gnutella serve --downloads DIR` first", 2)
			}
			cc := &control.Client{Info: info}
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
			case c.NArg() == 1:
				urn := c.Args().First()
				if strings.HasPrefix(urn, "magnet:") {
					u, err := control.MagnetURN(urn)
					if err != nil {
						return cli.Exit(err.Error(), 2)
					}
					urn = u
				}
				sr := d
				sr.URN, sr.TimeoutMS, sr.MaxResults = urn, int(c.Duration("search-timeout")/time.Millisecond), 10
				id, err := cc.StartSearch(ctx, sr)
				if err != nil {
					return cli.Exit(err.Error(), 1)
				}
				n := 0
				_ = cc.StreamResults(ctx, id, func(routing.Hit) { n++ })
				if n == 0 {
					return cli.Exit("no source found for "+urn+": nobody reachable shares it", 1)
				}
				req.SearchID, req.URN = id, urn
			default:
				return cli.Exit("give a urn:sha1, a magnet link, or a search ID and a row number (gnutella get SEARCH-ID N)", 2)
			}
			var st transfer.Status
			if err := cc.Do(ctx, "POST", "/api/v1/downloads", req, &st); err != nil {
				var e *control.Error
				if errors.As(err, &e) && e.Status == http.StatusNotImplemented {
					return cli.Exit(err.Error()+": restart it with `gnutella serve --downloads DIR`", 1)
				}
				return cli.Exit(err.Error(), 1)
			}
			bar := progressbar.DefaultBytes(st.Size, st.Name)
			for {
				var all []transfer.Status
				if err := cc.Do(ctx, "GET", "/api/v1/downloads", nil, &all); err != nil {
					return cli.Exit(err.Error(), 1)
				}
				for _, d := range all {
					if d.URN != st.URN || d.Name != st.Name {
						continue
					}
					_ = bar.Set64(d.Have)
					switch d.State {
					case transfer.StateDone:
						_ = bar.Finish()
						fmt.Fprintf(os.Stderr, "\nverified and saved: %s\n", d.Path)
						return nil
					case transfer.StateFailed:
						return cli.Exit("\ndownload failed: "+d.Error, 1)
					}
				}
				select {
				case <-ctx.Done():
					fmt.Fprintln(os.Stderr, "\nstopped watching; the servent keeps downloading")
					return nil
				case <-time.After(200 * time.Millisecond):
				}
			}
		},
	}
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
