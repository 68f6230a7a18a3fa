package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	// go-toml/v2 rather than BurntSushi/toml: its strict decoder names every
	// unknown key and every value of the wrong type with its line and column
	// (StrictMissingError, DecodeError), which is what a user needs to fix
	// the file; BurntSushi's MetaData.Undecoded lists unknown keys without
	// their lines.
	"github.com/pelletier/go-toml/v2"
	"github.com/urfave/cli/v2"
)

// The config file, DIR/config.toml in the data folder, sets any flag of
// any command: the global flags at the top, a command's flags in a table
// named after it ([serve], [search], [testnet.experiment]), each key the
// flag's name. A flag on the command line (or an environment variable, if
// a flag ever gets one: urfave/cli counts it as set) wins over the file,
// the file over the flag's default. The file is read
// from the folder --data-dir names on the command line or GNUTELLA_DATA_DIR
// (dataDirEnv), else from the default data folder (defaultDataDir);
// commands without --data-dir read the default one.

// configFileName is the config file's name in the data folder.
const configFileName = "config.toml"

// A config is a loaded config file: the values it sets, by table ("" for
// the top, "serve", "testnet.experiment") and flag name.
type config struct {
	path   string
	values map[string]map[string]configValue
}

// A configValue is one key of the file: its value as the command line
// would give it (a list's elements one by one) and its line.
type configValue struct {
	args []string
	line int
}

// configPathOf is the config file that command context c reads.
func configPathOf(c *cli.Context) string {
	dir := defaultDataDir()
	if hasFlag(c, "data-dir") && c.IsSet("data-dir") {
		dir = c.String("data-dir")
	}
	return filepath.Join(dir, configFileName)
}

// hasFlag reports whether the command of c (or one above it) has flag name.
func hasFlag(c *cli.Context, name string) bool {
	for _, x := range c.Lineage() {
		if x.Command != nil && lookupFlag(x.Command.Flags, "--"+name) != nil {
			return true
		}
	}
	return false
}

// loadConfig reads the config file at path for app: a missing file is an
// empty config; an unknown table or key, a value of the wrong type or bad
// TOML is an error naming the file, the line and the key.
func loadConfig(app *cli.App, path string) (*config, error) {
	cfg := &config{path: path, values: map[string]map[string]configValue{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	shape := configShape(app.Flags, app.Commands, true)
	v := reflect.New(shape.typ)
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v.Interface()); err != nil {
		return nil, configError(path, shape, err)
	}
	shape.collect(v.Elem(), "", cfg.values)
	// The lines of the keys set, for `gnutella config`: a decoder that
	// knows the tables but no key reports each key with its place.
	lines := map[string]int{}
	tables := reflect.New(configShape(app.Flags, app.Commands, false).typ)
	if err := toml.NewDecoder(bytes.NewReader(b)).DisallowUnknownFields().Decode(tables.Interface()); err != nil {
		var se *toml.StrictMissingError
		if errors.As(err, &se) {
			for _, e := range se.Errors {
				row, _ := e.Position()
				lines[strings.Join(e.Key(), ".")] = row
			}
		}
	}
	for table, keys := range cfg.values {
		for name, cv := range keys {
			key := name
			if table != "" {
				key = table + "." + name
			}
			cv.line = lines[key]
			keys[name] = cv
		}
	}
	return cfg, nil
}

// A shape is the Go type the config file decodes into, built from the
// flags and commands, with what each field is.
type shape struct {
	typ    reflect.Type
	flags  map[string]cli.Flag // by field name
	tables map[string]*shape   // by field name
	keys   map[string]string   // field name to TOML key
}

// configShape is the shape of a table with flags and a table per command;
// without withFlags, only the tables.
func configShape(flags []cli.Flag, cmds []*cli.Command, withFlags bool) *shape {
	s := &shape{flags: map[string]cli.Flag{}, tables: map[string]*shape{}, keys: map[string]string{}}
	var fields []reflect.StructField
	if !withFlags {
		flags = nil
	}
	for i, f := range configFlags(flags) {
		name := fmt.Sprintf("F%d", i)
		s.flags[name], s.keys[name] = f, f.Names()[0]
		fields = append(fields, reflect.StructField{Name: name, Type: configType(f), Tag: reflect.StructTag(`toml:"` + f.Names()[0] + `"`)})
	}
	for i, cmd := range cmds {
		if cmd.Name == "config" || cmd.Name == "help" {
			continue
		}
		name := fmt.Sprintf("C%d", i)
		sub := configShape(cmd.Flags, cmd.Subcommands, withFlags)
		s.tables[name], s.keys[name] = sub, cmd.Name
		fields = append(fields, reflect.StructField{Name: name, Type: reflect.PointerTo(sub.typ), Tag: reflect.StructTag(`toml:"` + cmd.Name + `"`)})
	}
	s.typ = reflect.StructOf(fields)
	return s
}

// configFlags are the flags a config file may set: all but help and version.
func configFlags(flags []cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, f := range flags {
		switch f.Names()[0] {
		case "help", "version":
			continue
		}
		out = append(out, f)
	}
	return out
}

// configDuration is a duration in the config file: a string such as "3s"
// (a struct, as the decoder sets a string kind without asking it).
type configDuration struct{ d time.Duration }

func (d *configDuration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration: write it as \"3s\", \"500ms\" or \"2m\"", b)
	}
	d.d = v
	return nil
}

// configType is the Go type of flag f's key: a pointer, nil when unset.
func configType(f cli.Flag) reflect.Type {
	switch f.(type) {
	case *cli.BoolFlag:
		return reflect.TypeFor[*bool]()
	case *cli.IntFlag, *cli.Int64Flag:
		return reflect.TypeFor[*int64]()
	case *cli.UintFlag, *cli.Uint64Flag:
		return reflect.TypeFor[*uint64]()
	case *cli.Float64Flag:
		return reflect.TypeFor[*float64]()
	case *cli.DurationFlag:
		return reflect.TypeFor[*configDuration]()
	case *cli.StringSliceFlag:
		return reflect.TypeFor[*[]string]()
	}
	return reflect.TypeFor[*string]()
}

// configKind says in words what flag f's key takes.
func configKind(f cli.Flag) string {
	switch f.(type) {
	case *cli.BoolFlag:
		return "true or false"
	case *cli.IntFlag, *cli.Int64Flag:
		return "a whole number"
	case *cli.UintFlag, *cli.Uint64Flag:
		return "a whole number, 0 or more"
	case *cli.Float64Flag:
		return "a number"
	case *cli.DurationFlag:
		return `a duration in quotes, such as "3s"`
	case *cli.StringSliceFlag:
		return `a list of strings, such as ["a", "b"]`
	}
	return `a string in quotes`
}

// collect puts the keys set in v (of s's type) into values, under table.
func (s *shape) collect(v reflect.Value, table string, values map[string]map[string]configValue) {
	for name, f := range s.flags {
		fv := v.FieldByName(name)
		if fv.IsNil() {
			continue
		}
		var args []string
		switch x := fv.Elem().Interface().(type) {
		case []string:
			args = x
			if args == nil {
				args = []string{}
			}
		case float64:
			args = []string{strconv.FormatFloat(x, 'g', -1, 64)}
		case configDuration:
			args = []string{x.d.String()}
		default:
			args = []string{fmt.Sprint(x)}
		}
		if values[table] == nil {
			values[table] = map[string]configValue{}
		}
		values[table][f.Names()[0]] = configValue{args: args}
	}
	for name, sub := range s.tables {
		fv := v.FieldByName(name)
		if fv.IsNil() {
			continue
		}
		t := s.keys[name]
		if table != "" {
			t = table + "." + t
		}
		sub.collect(fv.Elem(), t, values)
	}
}

// lookup finds what key (a table path and a name) is in s: a flag, a table
// or nothing.
func (s *shape) lookup(key []string) (cli.Flag, *shape) {
	cur := s
	for i, k := range key {
		var next *shape
		for name, t := range cur.keys {
			if t != k {
				continue
			}
			if f, ok := cur.flags[name]; ok && i == len(key)-1 {
				return f, nil
			}
			next = cur.tables[name]
		}
		if next == nil {
			return nil, nil
		}
		cur = next
	}
	return nil, cur
}

// keyNames are the keys table s takes, sorted.
func (s *shape) keyNames() []string {
	var names []string
	for _, k := range s.keys {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// tableNames are the tables s holds, sorted.
func (s *shape) tableNames() []string {
	var names []string
	for name := range s.tables {
		names = append(names, s.keys[name])
	}
	sort.Strings(names)
	return names
}

// configError turns a decoding error into a message naming path, the line
// and the key, and what would be right.
func configError(path string, s *shape, err error) error {
	var se *toml.StrictMissingError
	if errors.As(err, &se) && len(se.Errors) > 0 {
		var msgs []string
		for _, e := range se.Errors {
			row, _ := e.Position()
			key := e.Key()
			table, name := key[:len(key)-1], key[len(key)-1]
			where := "at the top (the global flags)"
			if len(table) == 0 && len(se.Errors) > 0 && strings.Contains(e.Error(), "missing table") {
				msgs = append(msgs, fmt.Sprintf("config file %s line %d: unknown table [%s]; the tables are the commands: %s",
					path, row, name, strings.Join(s.tableNames(), ", ")))
				continue
			}
			if len(table) > 0 {
				where = "in [" + strings.Join(table, ".") + "]"
			}
			_, parent := s.lookup(table)
			hint := ""
			if parent != nil {
				best, bestD := "", 3
				for _, k := range parent.keyNames() {
					if d := editDistance(name, k); d < bestD {
						best, bestD = k, d
					}
				}
				if best != "" {
					hint = fmt.Sprintf("; did you mean %q?", best)
				}
				hint += " (keys: " + strings.Join(parent.keyNames(), ", ") + ")"
			}
			msgs = append(msgs, fmt.Sprintf("config file %s line %d: unknown key %q %s%s", path, row, name, where, hint))
		}
		return cli.Exit(strings.Join(msgs, "\n"), 2)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		key := de.Key()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if f, _ := s.lookup(key); f != nil {
			msg = fmt.Sprintf("%s must be %s", strings.Join(key, "."), configKind(f))
			if strings.Contains(de.Error(), "not a duration") {
				_, after, _ := strings.Cut(de.Error(), "toml: ")
				msg = strings.Join(key, ".") + ": " + after
			}
		} else if _, t := s.lookup(key); t != nil && len(key) > 0 {
			msg = fmt.Sprintf("%s must be a table: [%s]", strings.Join(key, "."), strings.Join(key, "."))
		} else if len(key) > 0 {
			msg = fmt.Sprintf("%s: %s", strings.Join(key, "."), msg)
		}
		return cli.Exit(fmt.Sprintf("config file %s line %d: %s", path, row, msg), 2)
	}
	return cli.Exit(fmt.Sprintf("config file %s: %v", path, err), 2)
}

// tablePath is the config table of command context c: the names of its
// command and those above it, "" for the app.
func tablePath(c *cli.Context) string {
	var names []string
	for _, x := range c.Lineage() {
		if x.Command != nil {
			names = append([]string{x.Command.Name}, names...)
		}
	}
	if len(names) > 0 {
		names = names[1:] // the app's own root command
	}
	return strings.Join(names, ".")
}

// applyConfig sets each flag of c's command, and each global flag, that
// the config file sets and the command line does not.
func applyConfig(app *cli.App) cli.BeforeFunc {
	return func(c *cli.Context) error {
		cfg, err := loadConfig(app, configPathOf(c))
		if err != nil {
			return err
		}
		for _, table := range []string{"", tablePath(c)} {
			for name, cv := range cfg.values[table] {
				if c.IsSet(name) {
					continue
				}
				for _, a := range cv.args {
					if err := c.Set(name, a); err != nil {
						return cli.Exit(fmt.Sprintf("config file %s line %d: %s: %v", cfg.path, cv.line, name, err), 2)
					}
				}
			}
		}
		return nil
	}
}

// withConfig makes every command of app (and subcommand) read the config
// file before it runs.
func withConfig(app *cli.App, cmds []*cli.Command) {
	for _, cmd := range cmds {
		if cmd.Name == "config" {
			continue
		}
		before, read := cmd.Before, applyConfig(app)
		cmd.Before = func(c *cli.Context) error {
			if err := read(c); err != nil {
				return err
			}
			if before != nil {
				return before(c)
			}
			return nil
		}
		withConfig(app, cmd.Subcommands)
	}
}

func configCommand() *cli.Command {
	return &cli.Command{
		Name:      "config",
		Usage:     "show the settings a command would run with, and where each comes from",
		ArgsUsage: "[--command] [COMMAND [SUBCOMMAND]] [its flags]",
		Description: "Prints every flag of COMMAND (serve when none is named; --command NAME names it too) with\n" +
			"the value it would have and where that comes from: flag (the command line, which wins),\n" +
			"environment (GNUTELLA_DATA_DIR, every command's --data-dir), the config file (with its\n" +
			"line), or default. Flags given after the command's name count as if given to it:\n" +
			"gnutella config serve --listen 127.0.0.1:7000.\n\n" +
			"The config file is DIR/config.toml in the data folder (--data-dir on the command line, else\n" +
			"GNUTELLA_DATA_DIR, else the default one). Global flags go at the top, a command's flags in\n" +
			"a table named after it:\n\n" +
			"  log-level = \"info\"\n" +
			"  [serve]\n" +
			"  listen = \"0.0.0.0:6346\"\n" +
			"  peer = [\"203.0.113.5:6346\"]\n" +
			"  [testnet.experiment]\n" +
			"  n = 500\n\n" +
			"An unknown key or a value of the wrong type is refused with the file's name and line.",
		SkipFlagParsing: true, // the flags are the named command's: configSettings parses them
		HideHelpCommand: true,
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			for _, a := range args {
				if a == "-h" || a == "--help" || a == "-help" {
					return cli.ShowCommandHelp(c.Lineage()[1], "config")
				}
			}
			return configSettings(os.Stdout, args)
		},
	}
}

// A setting is one flag's effective value and where it comes from.
type setting struct {
	Name   string
	Global bool   // a global flag, at the top of the file
	Value  string // as the config file writes it
	Source string // "flag", "default" or the config file and its line
}

// configSettings prints the settings of the command args name, with the
// flags args give it.
func configSettings(w io.Writer, args []string) error {
	var path []string
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--command" || a == "-command":
			if i+1 < len(args) {
				path = append(path, strings.Fields(args[i+1])...)
				i++
			}
		case strings.HasPrefix(a, "--command=") || strings.HasPrefix(a, "-command="):
			_, v, _ := strings.Cut(a, "=")
			path = append(path, strings.Fields(v)...)
		default:
			rest = append(rest, a)
		}
	}
	app := newApp()
	// Command names before the first flag name the command too.
	for len(rest) > 0 && !isFlag(rest[0]) {
		path = append(path, rest[0])
		rest = rest[1:]
	}
	if len(path) == 0 {
		path = []string{"serve"}
	}
	var cmd *cli.Command
	cmds := app.Commands
	var names []string // path with each command's own name, not an alias
	for _, name := range path {
		cmd = nil
		for _, x := range cmds {
			if x.HasName(name) && x.Name != "config" {
				cmd = x
			}
		}
		if cmd == nil {
			return cli.Exit(fmt.Sprintf("config: no command %q: gnutella --help lists the commands", strings.Join(path, " ")), 2)
		}
		names = append(names, cmd.Name)
		cmds = cmd.Subcommands
	}
	argv := append(append([]string{"gnutella"}, path...), rest...)
	// Run the app on the command, its Action replaced by one that reads
	// what was set where; the config file is read here, not applied.
	var out []setting
	var runErr error
	cmd.Before, cmd.Subcommands = nil, nil
	cmd.Action = func(c *cli.Context) error {
		cfg, err := loadConfig(app, configPathOf(c))
		if err != nil {
			runErr = err
			return nil
		}
		table := strings.Join(names, ".")
		add := func(f cli.Flag, global bool) {
			name := f.Names()[0]
			s := setting{Name: name, Global: global, Value: flagValue(c, f), Source: "default"}
			t := table
			if global {
				t = ""
			}
			cv, inFile := cfg.values[t][name]
			switch {
			case c.IsSet(name) && !given(argv, name) && envOf(f) != "":
				s.Source = "environment " + envOf(f)
			case c.IsSet(name):
				s.Source = "flag"
			case inFile:
				s.Source = fmt.Sprintf("%s line %d", cfg.path, cv.line)
				for _, a := range cv.args {
					_ = c.Set(name, a)
				}
				s.Value = flagValue(c, f)
			default:
				if d, ok := f.(cli.DocGenerationFlag); ok && d.GetDefaultText() != d.GetValue() {
					s.Value = d.GetDefaultText() // a default that depends on other flags
				}
			}
			out = append(out, s)
		}
		for _, f := range configFlags(cmd.Flags) {
			add(f, false)
		}
		for _, f := range configFlags(app.Flags) {
			add(f, true)
		}
		fmt.Fprintf(w, "gnutella %s would run with (config file %s):\n", strings.Join(names, " "), cfg.path)
		width := 0
		for _, s := range out {
			width = max(width, len(s.Name))
		}
		for _, s := range out {
			line := fmt.Sprintf("  %-*s = %s", width, s.Name, s.Value)
			src := s.Source
			if s.Global {
				src += " (global, at the top of the file)"
			}
			fmt.Fprintf(w, "%-50s  # %s\n", line, src)
		}
		return nil
	}
	app.ExitErrHandler = func(*cli.Context, error) {} // errors come back to us
	if err := app.Run(reorderArgs(app, argv)); err != nil {
		return cli.Exit("config: "+err.Error(), 2)
	}
	return runErr
}

// given reports whether flag name is among args, the command line.
func given(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isFlag(a) && lookupFlag([]cli.Flag{&cli.StringFlag{Name: name}}, a) != nil {
			return true
		}
	}
	return false
}

// envOf is the environment variable set for flag f, "" when none is.
func envOf(f cli.Flag) string {
	if d, ok := f.(cli.DocGenerationFlag); ok {
		for _, e := range d.GetEnvVars() {
			if _, ok := os.LookupEnv(e); ok {
				return e
			}
		}
	}
	return ""
}

// flagValue is the value of flag f in c, written as in the config file.
func flagValue(c *cli.Context, f cli.Flag) string {
	name := f.Names()[0]
	switch f.(type) {
	case *cli.StringSliceFlag:
		var q []string
		for _, s := range c.StringSlice(name) {
			q = append(q, strconv.Quote(s))
		}
		return "[" + strings.Join(q, ", ") + "]"
	case *cli.DurationFlag:
		return strconv.Quote(c.Duration(name).String())
	case *cli.StringFlag:
		return strconv.Quote(c.String(name))
	}
	return fmt.Sprint(c.Value(name))
}
