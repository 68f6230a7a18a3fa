// Command gnutella is a Gnutella servent: see README.md.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"gnutella/servent"
)

func main() {
	app := newApp()
	if err := app.Run(reorderArgs(app, os.Args)); err != nil {
		fmt.Fprintln(os.Stderr, "gnutella:", err)
		os.Exit(1)
	}
}

// newApp is the command line: global flags and commands.
func newApp() *cli.App {
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
			browseCommand(),
			getCommand(),
			downloadsCommand(),
			cacheCommand(),
			testnetCommand(),
			decodeCommand(),
		},
	}
	app.Action = func(c *cli.Context) error {
		if c.NArg() == 0 {
			return cli.ShowAppHelp(c)
		}
		return cli.Exit(unknownCommand(app, c.Args().First()), 2)
	}
	return app
}

// unknownCommand is the message for a command name the app does not have,
// with the nearest one it has when one is near enough to be a typo.
func unknownCommand(app *cli.App, name string) string {
	best, bestD := "", 3
	for _, cmd := range app.Commands {
		for _, n := range cmd.Names() {
			if d := editDistance(name, n); d < bestD {
				best, bestD = cmd.Name, d
			}
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown command %q; did you mean %q? (gnutella --help lists the commands)", name, best)
	}
	return fmt.Sprintf("unknown command %q: gnutella --help lists the commands", name)
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// reorderArgs lets flags follow the arguments: urfave/cli stops reading
// flags at the first argument, so "search koala --timeout 3s" would search
// for "koala --timeout 3s". It moves the global flags given after the
// command in front of it, and a command's flags in front of its arguments.
// Everything after "--" stays an argument.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	// The global flags before the command.
	for len(rest) > 0 && isFlag(rest[0]) {
		n := flagLen(app.Flags, rest)
		out = append(out, rest[:n]...)
		rest = rest[n:]
	}
	if len(rest) == 0 {
		return out
	}
	cmd := app.Command(rest[0])
	if cmd == nil {
		return append(out, rest...)
	}
	var global, flags, words []string
	global, flags, words = splitCommand(app.Flags, cmd, rest[1:])
	out = append(out, global...)
	out = append(out, rest[0])
	out = append(out, flags...)
	return append(out, words...)
}

// splitCommand sorts the arguments of cmd into global flags, cmd's own
// flags (a subcommand's name and its own sorted arguments go last, as the
// words) and words.
func splitCommand(globals []cli.Flag, cmd *cli.Command, args []string) (global, flags, words []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			words = append(words, args[i:]...)
			return
		case isFlag(a):
			if fl := lookupFlag(globals, a); fl != nil && lookupFlag(cmd.Flags, a) == nil {
				n := flagLen(globals, args[i:])
				global = append(global, args[i:i+n]...)
				i += n - 1
				continue
			}
			n := flagLen(cmd.Flags, args[i:])
			flags = append(flags, args[i:i+n]...)
			i += n - 1
		case len(words) == 0 && cmd.Command(a) != nil:
			sub := cmd.Command(a)
			g, f, w := splitCommand(globals, sub, args[i+1:])
			global = append(global, g...)
			words = append(append(append(words, a), f...), w...)
			return
		default:
			words = append(words, a)
		}
	}
	return
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

// lookupFlag finds the flag a (-x, --x or --x=v) names among flags.
func lookupFlag(flags []cli.Flag, a string) cli.Flag {
	name := strings.TrimLeft(a, "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		name = name[:i]
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// flagLen is how many of args the flag at args[0] takes: 2 when it takes a
// value not joined with "=", else 1.
func flagLen(flags []cli.Flag, args []string) int {
	f := lookupFlag(flags, args[0])
	if f == nil || strings.Contains(args[0], "=") || len(args) < 2 {
		return 1
	}
	if v, ok := f.(interface{ TakesValue() bool }); ok && v.TakesValue() {
		return 2
	}
	return 1
}

// logger builds the zerolog logger the global flags ask for. The console
// format is coloured only when stderr is a terminal.
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
		tty := isatty.IsTerminal(os.Stderr.Fd()) || isatty.IsCygwinTerminal(os.Stderr.Fd())
		l = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly, NoColor: !tty})
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
