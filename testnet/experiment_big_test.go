//go:build bigexperiment

package testnet

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// The big runs of docs/experiments.md, by hand (not in CI):
//
//	EXP_TOPOLOGY=random EXP_N=10000 EXP_CHURN=0.3 EXP_OUT=$PWD/docs/experiments/random-10k \
//	    go test -tags bigexperiment -run TestExperimentBig -timeout 3h -v ./testnet/
//
// EXP_TOPOLOGY (random, powerlaw, grid, twotier), EXP_N, EXP_TRANSPORT (mem,
// tcp), EXP_QUERIES, EXP_CHURN, EXP_STRATEGIES (see ParseStrategies),
// EXP_FILES, EXP_RATIO, EXP_REPLICATION, EXP_SEED and EXP_OUT choose the run.
func TestExperimentBig(t *testing.T) {
	env := func(k, d string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return d
	}
	num := func(k, d string) float64 {
		v, err := strconv.ParseFloat(env(k, d), 64)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return v
	}
	n := int(num("EXP_N", "10000"))
	seed := uint64(num("EXP_SEED", "1"))
	topo, err := ParseTopology(env("EXP_TOPOLOGY", "random"), n, num("EXP_DEGREE", "0"))
	if err != nil {
		t.Fatal(err)
	}
	sts, err := ParseStrategies(env("EXP_STRATEGIES", "all"), topo, n, seed)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ExperimentConfig{
		Topology: topo, N: n, Transport: TransportKind(env("EXP_TRANSPORT", "mem")), Seed: seed,
		Files: int(num("EXP_FILES", "100")), Replication: env("EXP_REPLICATION", Uniform),
		ReplicationRatio: num("EXP_RATIO", "0.01"), Queries: int(num("EXP_QUERIES", "100")),
		Strategies: sts, Churn: num("EXP_CHURN", "0"), Timeout: 10 * time.Second,
		FilesOnDisk: env("EXP_DISK", "") != "", Out: env("EXP_OUT", t.TempDir()),
	}
	if _, err := RunExperiment(context.Background(), cfg, os.Stdout); err != nil {
		t.Fatal(err)
	}
}
