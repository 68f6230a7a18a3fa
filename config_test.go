package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// writeConfig writes text as DIR/config.toml and returns its path.
func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, configFileName)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A command's table and the top-level global flags are used when the
// command line does not give them; a flag given wins.
func TestConfigValueUsedWhenNoFlag(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, "# the global flags\nlog-format = \"console\"\n\n[search]\npeer = [\"127.0.0.1:1\"]\ntimeout = \"2s\"\n")
	wantRun(t, 1, "could not link to any --peer, so nothing was searched:\n  127.0.0.1:1: connection refused",
		"search", "--data-dir", dir, "koala")
	// The flag wins over the file: its peer is dialled, not the file's.
	_, errOut, code := run(t, "search", "--data-dir", dir, "--peer", "127.0.0.1:2", "koala")
	if code != 1 || !strings.Contains(errOut, "127.0.0.1:2: connection refused") || strings.Contains(errOut, "127.0.0.1:1") {
		t.Fatalf("search --peer 127.0.0.1:2 with the file's peer 127.0.0.1:1: exit %d, stderr %q", code, errOut)
	}
	// A global flag at the top of the file, and the flag over it.
	writeConfig(t, dir, "log-level = \"loud\"\n[search]\npeer = [\"127.0.0.1:1\"]\n")
	wantRun(t, 2, `unknown --log-level "loud"`, "search", "--data-dir", dir, "koala")
	wantRun(t, 1, "127.0.0.1:1: connection refused", "search", "--data-dir", dir, "koala", "--log-level", "error")
}

// A command without --data-dir (testnet) reads the default data folder's
// file, a subcommand its own table.
func TestConfigSubcommandTableInTheDefaultFolder(t *testing.T) {
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, "gnutella"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, filepath.Join(home, "gnutella"), "[testnet.experiment]\nn = 1\n")
	_, stderr, code := runEnv(t, []string{"XDG_CONFIG_HOME=" + home, "HOME=" + home}, "testnet", "experiment")
	if code != 2 || !strings.Contains(stderr, "--n must be at least 2") {
		t.Fatalf("testnet experiment with n = 1 in the config file: exit %d, stderr %q", code, stderr)
	}
}

// GNUTELLA_DATA_DIR names the data folder (and so the config file) of
// every command when --data-dir is not given; --data-dir wins.
func TestDataDirFromTheEnvironment(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	path := writeConfig(t, dir, "[serve]\nlinks = 5\n")
	env := []string{dataDirEnv + "=" + dir}
	out, _, code := runEnv(t, env, "config")
	if code != 0 || !strings.Contains(out, `data-dir        = "`+dir+`"`) || !strings.Contains(out, "# environment "+dataDirEnv+"\n") ||
		!strings.Contains(out, "# "+path+" line 2\n") {
		t.Fatalf("config with %s=%s: exit %d\n%s", dataDirEnv, dir, code, out)
	}
	out, _, _ = runEnv(t, env, "config", "--data-dir", other)
	if !strings.Contains(out, `data-dir        = "`+other+`"`) || strings.Contains(out, "environment") || strings.Contains(out, "links           = 5") {
		t.Fatalf("config --data-dir with %s set:\n%s", dataDirEnv, out)
	}
	startServent(t, dir)
	out, errOut, code := runEnv(t, env, "status", "--json")
	if code != 0 || !strings.Contains(out, `"servent_id"`) {
		t.Fatalf("status with %s: exit %d, %s %s", dataDirEnv, code, out, errOut)
	}
}

// A bad file is refused before anything runs, with the file, the line and
// the key named.
func TestConfigBadFileRefused(t *testing.T) {
	dir := t.TempDir()
	serve := []string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--control", ""}
	path := writeConfig(t, dir, "[serve]\nlisten = \"127.0.0.1:0\"\nlisen = 3\n")
	wantRun(t, 2, "config file "+path+` line 3: unknown key "lisen" in [serve]; did you mean "listen"?`, serve...)
	writeConfig(t, dir, "log-levl = \"info\"\n")
	wantRun(t, 2, "config file "+path+` line 1: unknown key "log-levl" at the top (the global flags); did you mean "log-level"?`, serve...)
	writeConfig(t, dir, "\n[serv]\n")
	wantRun(t, 2, "config file "+path+" line 2: unknown table [serv]; the tables are the commands: ", serve...)
	writeConfig(t, dir, "[serve]\n\nlinks = \"five\"\n")
	wantRun(t, 2, "config file "+path+" line 3: serve.links must be a whole number\n", serve...)
	writeConfig(t, dir, "[serve]\npeer = \"1.2.3.4:6346\"\n")
	wantRun(t, 2, "config file "+path+` line 2: serve.peer must be a list of strings, such as ["a", "b"]`, serve...)
	writeConfig(t, dir, "[search]\ntimeout = \"soon\"\n")
	wantRun(t, 2, "config file "+path+` line 2: search.timeout: "soon" is not a duration`, serve...)
	writeConfig(t, dir, "[serve\n")
	wantRun(t, 2, "config file "+path+" line 1: ", serve...)
	// gnutella config refuses it the same way.
	wantRun(t, 2, "config file "+path+" line 1: ", "config", "--data-dir", dir)
}

// gnutella config prints each flag's value and where it comes from.
func TestConfigShowsWhereEachSettingComesFrom(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "log-level = \"info\"\n[serve]\nlinks = 5\npeer = [\"10.0.0.1:6346\", \"10.0.0.2:6346\"]\n[search]\ntimeout = \"2s\"\n")
	out := wantRun(t, 0, "", "config", "--data-dir", dir, "--max-links", "9")
	settings := map[string]string{}
	for _, line := range strings.Split(out, "\n")[1:] {
		if name, rest, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			settings[name] = strings.Join(strings.Fields(rest), " ")
		}
	}
	for name, want := range map[string]string{
		"links":     "= 5 # " + path + " line 3",
		"peer":      `= ["10.0.0.1:6346", "10.0.0.2:6346"] # ` + path + " line 4",
		"max-links": "= 9 # flag",
		"max-ttl":   "= 4 # default",
		"data-dir":  `= "` + dir + `" # flag`,
		"downloads": "= DIR/downloads # default",
		"log-level": `= "info" # ` + path + " line 1 (global, at the top of the file)",
	} {
		if settings[name] != want {
			t.Errorf("config: %s %s; want %s", name, settings[name], want)
		}
	}
	if !strings.HasPrefix(out, "gnutella serve would run with (config file "+path+"):\n") {
		t.Errorf("config printed\n%s", out)
	}
	out = wantRun(t, 0, "", "config", "--command", "search", "--data-dir", dir)
	if !strings.Contains(out, `timeout       = "2s"`) || !strings.Contains(out, path+" line 6") || strings.Contains(out, "links") {
		t.Errorf("config --command search printed\n%s", out)
	}
	out = wantRun(t, 0, "", "config", "testnet", "experiment", "--n", "7")
	if !strings.HasPrefix(out, "gnutella testnet experiment would run with") || !strings.Contains(out, "= 7") {
		t.Errorf("config testnet experiment --n 7 printed\n%s", out)
	}
	wantRun(t, 2, `config: no command "nosuch"`, "config", "nosuch")
}

// Every flag of every command is a key of its table, of its own type: a
// new kind of flag must be taught to configType.
func TestConfigCoversEveryFlag(t *testing.T) {
	app := newApp()
	var walk func(path string, flags []cli.Flag, cmds []*cli.Command)
	walk = func(path string, flags []cli.Flag, cmds []*cli.Command) {
		for _, f := range configFlags(flags) {
			_, isString := f.(*cli.StringFlag)
			if configType(f) == reflect.TypeFor[*string]() && !isString {
				t.Errorf("%s: flag --%s (%T) has no config type", path, f.Names()[0], f)
			}
		}
		for _, c := range cmds {
			walk(strings.TrimSpace(path+" "+c.Name), c.Flags, c.Subcommands)
		}
	}
	walk("", app.Flags, app.Commands)
	// Each command's table takes each of its flags.
	s := configShape(app.Flags, app.Commands, true)
	for _, key := range [][]string{{"log-level"}, {"serve", "listen"}, {"serve", "peer"}, {"testnet", "experiment", "n"}, {"downloads", "pause", "data-dir"}} {
		if f, _ := s.lookup(key); f == nil {
			t.Errorf("no config key %s", strings.Join(key, "."))
		}
	}
}

// README.md's example config file is one the servent takes.
func TestReadmeConfigExample(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n    log-level = \"info\"\n")
	if !ok {
		t.Fatal("README.md has no example config file")
	}
	example := "log-level = \"info\"\n"
	for _, line := range strings.Split(after, "\n") {
		if !strings.HasPrefix(line, "    ") {
			break
		}
		example += strings.TrimPrefix(line, "    ") + "\n"
	}
	dir := t.TempDir()
	path := writeConfig(t, dir, example)
	cfg, err := loadConfig(newApp(), path)
	if err != nil {
		t.Fatalf("README's example:\n%s\n%v", example, err)
	}
	if got := cfg.values["testnet.experiment"]["n"]; len(got.args) != 1 || got.args[0] != "500" {
		t.Errorf("README's example: testnet.experiment.n = %+v", got)
	}
}

// Every `gnutella WORD` README.md shows is a command.
func TestReadmeCommandsExist(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	app := newApp()
	for _, part := range strings.Split(string(b), "`gnutella ")[1:] {
		word := strings.FieldsFunc(part, func(r rune) bool { return r == ' ' || r == '`' || r == '\n' })[0]
		if strings.HasPrefix(word, "-") || strings.ToUpper(word) == word {
			continue // `gnutella --help`, `gnutella COMMAND --help`
		}
		if app.Command(word) == nil {
			t.Errorf("README.md shows `gnutella %s`: no such command", word)
		}
	}
}
