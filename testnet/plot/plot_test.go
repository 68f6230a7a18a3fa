package plot

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"gnutella/testnet"
)

// results is a small made-up experiment: a flooding TTL sweep, a walk, and the walk under churn.
func results(churn bool) *testnet.Report {
	rep := &testnet.Report{Network: testnet.NetworkFigures{Topology: "random", N: 100}}
	for ttl := 1; ttl <= 4; ttl++ {
		rep.Results = append(rep.Results, testnet.Result{Strategy: "flood", Kind: "flood", TTL: ttl,
			SuccessRate: 0.2 * float64(ttl), MessagesPerQuery: float64(int(10) << ttl), DuplicatesPerQuery: float64(ttl),
			NodesVisitedPerQuery: float64(5 * ttl)})
	}
	rep.Results = append(rep.Results, testnet.Result{Strategy: "walk(k=16)", Kind: "walk", Walkers: 16,
		SuccessRate: 0.7, MessagesPerQuery: 90})
	if churn {
		rep.Results = append(rep.Results, testnet.Result{Strategy: "walk(k=16)", Kind: "walk", Walkers: 16,
			SuccessRate: 0.5, MessagesPerQuery: 80, Churn: 0.3})
	}
	return rep
}

// Dir reads the results.json an experiment wrote and draws each plot as a PNG image and an SVG document.
func TestDirDrawsThePlotsOfAnExperiment(t *testing.T) {
	dir := t.TempDir()
	if err := testnet.WriteAll(dir, results(true)); err != nil {
		t.Fatal(err)
	}
	if err := Dir(dir); err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{"messages_vs_success", "messages_vs_ttl", "churn"} {
		f, err := os.Open(filepath.Join(dir, base+".png"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Errorf("%s.png: %v", base, err)
		} else if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
			t.Errorf("%s.png is %v", base, b)
		}
		svg, err := os.ReadFile(filepath.Join(dir, base+".svg"))
		if err != nil || !bytes.Contains(svg, []byte("<svg")) {
			t.Errorf("%s.svg: %v, %.60q", base, err, svg)
		}
	}
}

// Without results under churn there is no churn plot; without results.json, Dir fails.
func TestDirWithoutChurnOrResults(t *testing.T) {
	dir := t.TempDir()
	if err := Dir(dir); err == nil {
		t.Error("Dir drew plots from a directory without results.json")
	}
	if err := testnet.WriteAll(dir, results(false)); err != nil {
		t.Fatal(err)
	}
	if err := Dir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "messages_vs_ttl.png")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "churn.png")); !os.IsNotExist(err) {
		t.Errorf("a churn plot without churn: %v", err)
	}
}
