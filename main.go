// Command gnutella is a Gnutella servent: see README.md.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

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
			searchCommand(),
			getCommand(),
			cacheCommand(),
			testnetCommand(),
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
