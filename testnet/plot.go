package testnet

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"sort"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Output of experiments: CSV, JSON, and plots (PNG and SVG) drawn with
// gonum.org/v1/plot.

// plotW, plotH are the size of every plot: modest, so the PNGs stay small.
const (
	plotW = 16 * vg.Centimeter
	plotH = 11 * vg.Centimeter
)

var csvHeader = []string{"strategy", "kind", "ttl", "walkers", "topology", "n", "replication", "queries", "churn",
	"success_rate", "messages_per_query", "messages_per_node", "duplicates_per_query", "nodes_visited_per_query",
	"peak_node_messages", "mean_hops_first_hit", "mean_ms_first_hit", "results_per_query", "walk_checks_per_query", "seconds"}

// WriteCSV writes one line per result.
func WriteCSV(path string, results []Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write(csvHeader)
	g := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	for _, r := range results {
		_ = w.Write([]string{r.Strategy, r.Kind, strconv.Itoa(r.TTL), strconv.Itoa(r.Walkers), r.Topology,
			strconv.Itoa(r.N), r.Replication, strconv.Itoa(r.Queries), g(r.Churn, 2), g(r.SuccessRate, 4),
			g(r.MessagesPerQuery, 1), g(r.MessagesPerNode, 4), g(r.DuplicatesPerQuery, 1), g(r.NodesVisitedPerQuery, 1),
			g(r.PeakNodeMessages, 2), g(r.MeanHopsFirstHit, 2), g(float64(r.MeanTimeFirstHit)/float64(time.Millisecond), 3),
			g(r.ResultsPerQuery, 2), g(r.WalkChecksPerQuery, 1), g(r.Seconds, 1)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteJSON writes v indented.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

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
var kindOrder = []string{"flood", "ring", "walk", "gossip", "dq"}

func kindStyle(kind string) (color.Color, draw.GlyphDrawer) {
	for i, k := range kindOrder {
		if k == kind {
			return plotutil.Color(i), plotutil.Shape(i)
		}
	}
	return plotutil.Color(len(kindOrder)), plotutil.Shape(len(kindOrder))
}

// PlotMessagesVsSuccess draws success rate against messages per query
// (log scale), one series per kind of strategy, for the results without
// churn: the flooding TTL sweep is a line, labelled with its TTLs.
func PlotMessagesVsSuccess(base, title string, results []Result) error {
	p := newPlot("Messages vs success: "+title, "query messages per query (log)", "success rate (hit within timeout)")
	logAxis(&p.X)
	p.Y.Min, p.Y.Max = 0, 1.05
	p.Legend.Top, p.Legend.Left = false, false
	byKind := map[string][]Result{}
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

func otherKinds(m map[string][]Result) []string {
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

// PlotMessagesVsTTL draws, for flooding without churn, the messages per
// query, the duplicates among them and the servents reached, against the
// TTL (log scale).
func PlotMessagesVsTTL(base, title string, results []Result) error {
	p := newPlot("Flooding: messages vs TTL: "+title, "TTL", "per query (log)")
	logAxis(&p.Y)
	var fl []Result
	for _, r := range results {
		if r.Kind == "flood" && r.Churn == 0 {
			fl = append(fl, r)
		}
	}
	sort.Slice(fl, func(i, j int) bool { return fl[i].TTL < fl[j].TTL })
	series := []struct {
		name string
		f    func(Result) float64
	}{
		{"messages", func(r Result) float64 { return r.MessagesPerQuery }},
		{"duplicates", func(r Result) float64 { return r.DuplicatesPerQuery }},
		{"servents reached", func(r Result) float64 { return r.NodesVisitedPerQuery }},
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

// PlotChurn draws success rate against the fraction of servents down, one
// line per strategy that ran under churn (its run without churn is the
// point at 0).
func PlotChurn(base, title string, results []Result) error {
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
