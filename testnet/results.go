package testnet

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Output of experiments: results.csv and results.json. The plots are drawn from results.json by
// `go run ./testnet/plot/cmd/plot DIR` (package testnet/plot), so that the gnutella command does not link a
// plotting library.

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

// ReadReport reads a report written by WriteJSON (results.json).
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &rep, nil
}

// WriteAll writes results.csv and results.json into dir.
func WriteAll(dir string, rep *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := WriteCSV(filepath.Join(dir, "results.csv"), rep.Results); err != nil {
		return err
	}
	return WriteJSON(filepath.Join(dir, "results.json"), rep)
}
