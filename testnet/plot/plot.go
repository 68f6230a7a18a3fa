// Package plot draws the plots of a search experiment (testnet.RunExperiment) as PNG and SVG, with
// gonum.org/v1/plot, from the results.json it wrote. It is apart from testnet so that the gnutella command does
// not link a plotting library; `go run ./testnet/plot/cmd/plot DIR` runs it.
package plot

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"gnutella/testnet"
)

// Dir reads dir/results.json, as `gnutella testnet experiment --out dir` writes it, and draws its plots into
// dir (see Report).
func Dir(dir string) error {
	rep, err := testnet.ReadReport(filepath.Join(dir, "results.json"))
	if err != nil {
		return err
	}
	return Report(dir, rep)
}

// Report draws into dir the plots messages_vs_success and messages_vs_ttl and, when some results ran under
// churn, churn: each as .png and .svg.
func Report(dir string, rep *testnet.Report) error {
	title := fmt.Sprintf("%s, %d servents", rep.Network.Topology, rep.Network.N)
	if err := messagesVsSuccess(filepath.Join(dir, "messages_vs_success"), title, rep.Results); err != nil {
		return err
	}
	if err := messagesVsTTL(filepath.Join(dir, "messages_vs_ttl"), title, rep.Results); err != nil {
		return err
	}
	for _, r := range rep.Results {
		if r.Churn > 0 {
			return successUnderChurn(filepath.Join(dir, "churn"), title, rep.Results)
		}
	}
	return nil
}

// plotW, plotH are the size of every plot: modest, so the PNGs stay small.
const (
	plotW = 16 * vg.Centimeter
	plotH = 11 * vg.Centimeter
)

// save writes p as base.png and base.svg.
func save(p *plot.Plot, base string) error {
	for _, ext := range []string{".png", ".svg"} {
		if err := p.Save(plotW, plotH, base+ext); err != nil {
			return fmt.Errorf("plot %s%s: %w", base, ext, err)
		}
	}
	return nil
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p
}

// logAxis makes an axis logarithmic (values must be positive).
func logAxis(a *plot.Axis) {
	a.Scale = plot.LogScale{}
	a.Tick.Marker = plot.LogTicks{Prec: -1}
}

// kindOrder fixes colours and shapes per kind of strategy.
var kindOrder = []string{"flood", "ring", "walk", "gossip", "dq", "guess"}

func kindStyle(kind string) (color.Color, draw.GlyphDrawer) {
	for i, k := range kindOrder {
		if k == kind {
			return plotutil.Color(i), plotutil.Shape(i)
		}
	}
	return plotutil.Color(len(kindOrder)), plotutil.Shape(len(kindOrder))
}

// messagesVsSuccess draws success rate against messages per query
// (log scale), one series per kind of strategy, for the results without
// churn: the flooding TTL sweep is a line, labelled with its TTLs.
func messagesVsSuccess(base, title string, results []testnet.Result) error {
	p := newPlot("Messages vs success: "+title, "query messages per query (log)", "success rate (hit within timeout)")
	logAxis(&p.X)
	p.Y.Min, p.Y.Max = 0, 1.05
	p.Legend.Top, p.Legend.Left = false, false
	byKind := map[string][]testnet.Result{}
	for _, r := range results {
		if r.Churn == 0 {
			byKind[r.Kind] = append(byKind[r.Kind], r)
		}
	}
	for _, kind := range append(kindOrder, otherKinds(byKind)...) {
		rs := byKind[kind]
		if len(rs) == 0 {
			continue
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].MessagesPerQuery < rs[j].MessagesPerQuery })
		pts := make(plotter.XYs, 0, len(rs))
		var labels []string
		for _, r := range rs {
			pts = append(pts, plotter.XY{X: math.Max(r.MessagesPerQuery, 1), Y: r.SuccessRate})
			switch r.Kind {
			case "flood", "gossip":
				labels = append(labels, fmt.Sprintf("ttl %d", r.TTL))
			case "walk":
				labels = append(labels, fmt.Sprintf("k=%d", r.Walkers))
			case "ring":
				labels = append(labels, fmt.Sprintf("..%d", r.TTL))
			default:
				labels = append(labels, "")
			}
		}
		c, shape := kindStyle(kind)
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		sc.GlyphStyle.Color, sc.GlyphStyle.Shape, sc.GlyphStyle.Radius = c, shape, vg.Points(3.5)
		p.Add(sc)
		if kind == "flood" && len(pts) > 1 {
			l, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			l.LineStyle.Color = c
			p.Add(l)
		}
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: labels})
		if err != nil {
			return err
		}
		for i := range lb.TextStyle {
			lb.TextStyle[i].Font.Size = vg.Points(7)
			lb.TextStyle[i].Color = c
		}
		lb.Offset = vg.Point{X: vg.Points(4), Y: vg.Points(-9)}
		p.Add(lb)
		p.Legend.Add(kind, sc)
	}
	return save(p, base)
}

func otherKinds(m map[string][]testnet.Result) []string {
	var out []string
	for k := range m {
		known := false
		for _, o := range kindOrder {
			known = known || o == k
		}
		if !known {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// messagesVsTTL draws, for flooding without churn, the messages per
// query, the duplicates among them and the servents reached, against the
// TTL (log scale).
func messagesVsTTL(base, title string, results []testnet.Result) error {
	p := newPlot("Flooding: messages vs TTL: "+title, "TTL", "per query (log)")
	logAxis(&p.Y)
	var fl []testnet.Result
	for _, r := range results {
		if r.Kind == "flood" && r.Churn == 0 {
			fl = append(fl, r)
		}
	}
	sort.Slice(fl, func(i, j int) bool { return fl[i].TTL < fl[j].TTL })
	series := []struct {
		name string
		f    func(testnet.Result) float64
	}{
		{"messages", func(r testnet.Result) float64 { return r.MessagesPerQuery }},
		{"duplicates", func(r testnet.Result) float64 { return r.DuplicatesPerQuery }},
		{"servents reached", func(r testnet.Result) float64 { return r.NodesVisitedPerQuery }},
	}
	for i, s := range series {
		pts := make(plotter.XYs, 0, len(fl))
		for _, r := range fl {
			pts = append(pts, plotter.XY{X: float64(r.TTL), Y: math.Max(s.f(r), 0.1)})
		}
		if len(pts) == 0 {
			continue
		}
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		l.LineStyle.Color = plotutil.Color(i)
		sc.GlyphStyle.Color, sc.GlyphStyle.Shape = plotutil.Color(i), plotutil.Shape(i)
		p.Add(l, sc)
		p.Legend.Add(s.name, l, sc)
	}
	p.X.Tick.Marker = integerTicks{}
	return save(p, base)
}

type integerTicks struct{}

func (integerTicks) Ticks(lo, hi float64) []plot.Tick {
	var t []plot.Tick
	step := math.Max(1, math.Ceil((hi-lo)/10))
	for v := math.Ceil(lo); v <= hi; v += step {
		t = append(t, plot.Tick{Value: v, Label: strconv.Itoa(int(v))})
	}
	return t
}

// successUnderChurn draws success rate against the fraction of servents down, one
// line per strategy that ran under churn (its run without churn is the
// point at 0).
func successUnderChurn(base, title string, results []testnet.Result) error {
	p := newPlot("Success under churn: "+title, "fraction of servents down", "success rate")
	p.Y.Min, p.Y.Max = 0, 1.05
	churned := map[string]bool{}
	var names []string
	for _, r := range results {
		if r.Churn > 0 && !churned[r.Strategy] {
			churned[r.Strategy] = true
			names = append(names, r.Strategy)
		}
	}
	for i, name := range names {
		var pts plotter.XYs
		for _, r := range results {
			if r.Strategy == name {
				pts = append(pts, plotter.XY{X: r.Churn, Y: r.SuccessRate})
			}
		}
		sort.Slice(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		l.LineStyle.Color = plotutil.Color(i)
		l.LineStyle.Dashes = plotutil.Dashes(i)
		sc.GlyphStyle.Color, sc.GlyphStyle.Shape = plotutil.Color(i), plotutil.Shape(i)
		p.Add(l, sc)
		p.Legend.Add(name, l, sc)
	}
	p.Legend.Top, p.Legend.Left = false, true
	return save(p, base)
}
