package testnet

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// The demo's every step works on a smaller network, and it cleans up.
func TestDemoRunsEveryStep(t *testing.T) {
	var out bytes.Buffer
	d, err := RunDemo(ctxFor(t, 120*time.Second), DemoConfig{Ultrapeers: 3, Leaves: 12, Firewalled: 2, Seed: 4}, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !d.OK() {
		t.Fatalf("demo steps failed:\n%s", out.String())
	}
	for _, want := range []string{"network formed", "search walk", "push download from a firewalled leaf"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// The root package's TestTestnetJoinHintWorksAsPrinted runs it.
	for _, want := range []string{"--peer 127.0.0.1:", "--share /tmp/me/share", "--downloads /tmp/me/downloads", "search --data-dir /tmp/me " + d.searchWord()} {
		if !strings.Contains(d.JoinHelp(), want) {
			t.Errorf("join help lacks %q: %s", want, d.JoinHelp())
		}
	}
}
