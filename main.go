// Command gnutella is a Gnutella servent: see README.md.

// gtk-gnutella's self-signed TLS certificates take the time as their serial
// number, which comes out negative half of the time; Go refuses those since
// 1.23 unless told not to. Certificates are not checked on Gnutella links
// (servent/tls.go), only parsed.
//
//go:debug x509negativeserial=1
package main

import (
	"encoding/json"
	"fmt"
	"io"
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
			uiCommand(),
			searchCommand(),
			browseCommand(),
			getCommand(),
			downloadsCommand(),
			statusCommand(),
			linksCommand(),
			cacheCommand(),
			testnetCommand(),
			decodeCommand(),
			configCommand(),
		},
	}
	app.OnUsageError = usageError
	strictArgs(app.Commands)
	withConfig(app, app.Commands)
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

// usageError is the message for a flag a command does not have (or a bad
// flag value): one line, with the nearest flag when one is near enough to
// be a typo, and exit 2, instead of urfave/cli's whole help page.
func usageError(c *cli.Context, err error, isSubcommand bool) error {
	name := "gnutella"
	flags := c.App.Flags
	if c.Command != nil && isSubcommand {
		name, flags = c.Command.HelpName, c.Command.Flags // "gnutella testnet experiment"
		if name == "" {
			name = "gnutella " + c.Command.Name
		}
	}
	msg := strings.Replace(err.Error(), " for flag -", " for flag --", 1)
	if bad, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		best, bestD := "", 3
		for _, f := range configFlags(append(append([]cli.Flag{}, flags...), c.App.Flags...)) { // not help or version
			for _, n := range f.Names() {
				if d := editDistance(bad, n); d < bestD {
					best, bestD = n, d
				}
			}
		}
		msg = fmt.Sprintf("%s has no flag --%s", name, bad)
		if best != "" {
			msg += fmt.Sprintf("; did you mean --%s?", best)
		}
	}
	return cli.Exit(fmt.Sprintf("%s (%s --help lists the flags)", msg, name), 2)
}

// strictArgs makes each command that takes no arguments refuse them (a
// mistyped subcommand, a forgotten flag name) rather than ignore them, and
// every command answer a usage error as usageError does.
func strictArgs(cmds []*cli.Command) {
	for _, cmd := range cmds {
		cmd.OnUsageError = usageError
		strictArgs(cmd.Subcommands)
		if cmd.ArgsUsage != "" || cmd.SkipFlagParsing || cmd.Action == nil {
			continue
		}
		before, cmd := cmd.Before, cmd
		cmd.Before = func(c *cli.Context) error {
			if c.NArg() > 0 && cmd.Command(c.Args().First()) == nil { // a subcommand is run after Before
				return cli.Exit(extraArgs(cmd, c.Args().First()), 2)
			}
			if before != nil {
				return before(c)
			}
			return nil
		}
	}
}

// extraArgs is the message for argument a given to cmd, which takes none.
func extraArgs(cmd *cli.Command, a string) string {
	best, bestD := "", 3
	var names []string
	for _, sub := range cmd.Subcommands {
		if sub.Name == "help" {
			continue
		}
		names = append(names, sub.Name)
		if d := editDistance(a, sub.Name); d < bestD {
			best, bestD = sub.Name, d
		}
	}
	switch {
	case best != "":
		return fmt.Sprintf("gnutella %s has no command %q; did you mean %q?", cmd.Name, a, best)
	case len(names) > 0:
		return fmt.Sprintf("gnutella %s has no command %q: its commands are %s", cmd.Name, a, strings.Join(names, ", "))
	}
	return fmt.Sprintf("gnutella %s takes no arguments, only flags: %q is not one (gnutella %s --help lists them)", cmd.Name, a, cmd.Name)
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
	if cmd == nil || cmd.SkipFlagParsing {
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

// dataDirEnv names the data folder when --data-dir is not given, for every
// command that has one: set once, it points them all at one servent.
const dataDirEnv = "GNUTELLA_DATA_DIR"

// dataDirFlag is the --data-dir flag of a command, with usage.
func dataDirFlag(usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: "data-dir", Value: defaultDataDir(), EnvVars: []string{dataDirEnv}, Usage: usage}
}

func defaultDataDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "gnutella")
	}
	return ".gnutella"
}

// writeJSON prints v indented: what every --json prints.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
