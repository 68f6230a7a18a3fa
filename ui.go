package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"gnutella/servent/control"
)

// uiCommand prints a fresh one-time login URL of the browser UI of the
// servent running with --data-dir.
func uiCommand() *cli.Command {
	return &cli.Command{
		Name:  "ui",
		Usage: "print a one-time URL that logs a browser in to the running servent's UI",
		Description: "Asks the servent running with --data-dir (gnutella serve) for a login link: opening it\n" +
			"in a browser logs that browser in (a session cookie) and shows the UI. The link works\n" +
			"once, for 10 minutes.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: defaultDataDir(), Usage: "`DIR` of the running servent"},
		},
		Action: func(c *cli.Context) error {
			cc, err := runningServent(c.String("data-dir"))
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
			defer cancel()
			var login control.LoginJSON
			if err := cc.Do(ctx, "POST", "/api/v1/login", nil, &login); err != nil {
				return cli.Exit(fmt.Sprintf("%v (is the servent of --data-dir %s still running?)", err, c.String("data-dir")), 1)
			}
			fmt.Fprintln(c.App.Writer, login.URL)
			return nil
		},
	}
}
