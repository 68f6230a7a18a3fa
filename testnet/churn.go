package testnet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"

	"gnutella/servent"
)

// Churn stops and restarts servents of a running network: a chosen fraction
// is down at any time, and at each Turn some of the down servents come back
// (a new servent with the same configuration and, in memory, the same
// address, linked again to its topology neighbours that are up) while as
// many others leave. Call it between searches, never during one: it
// replaces entries of Network.Nodes and Network.Servents.
type Churn struct {
	n    *Network
	rng  *rand.Rand
	down []bool
	nb   [][]int
	// Keep lists servents that never leave (none by default).
	Keep map[int]bool
}

// NewChurn prepares churn on n; nothing stops until SetDown or Turn.
func NewChurn(n *Network, seed uint64) *Churn {
	return &Churn{n: n, rng: rand.New(rand.NewPCG(seed, 0xc4)), down: make([]bool, len(n.Servents)), nb: n.Neighbours()}
}

// Up reports whether servent i is running.
func (c *Churn) Up(i int) bool { return !c.down[i] }

// Down counts the servents that are down.
func (c *Churn) Down() int {
	k := 0
	for _, d := range c.down {
		if d {
			k++
		}
	}
	return k
}

// SetDown brings the network to round(fraction × N) servents down, chosen
// at random: it stops servents that are up, or restarts ones that are down.
func (c *Churn) SetDown(ctx context.Context, fraction float64) error {
	want := int(fraction*float64(len(c.down)) + 0.5)
	have := c.Down()
	switch {
	case want > have:
		return c.stop(c.pick(false, want-have))
	case want < have:
		return c.start(ctx, c.pick(true, have-want))
	}
	return nil
}

// Turn replaces part of the down set: round(turnover × down) servents
// come back and as many others, chosen among those up, leave.
func (c *Churn) Turn(ctx context.Context, turnover float64) error {
	k := int(turnover*float64(c.Down()) + 0.5)
	if k == 0 {
		return nil
	}
	leave := c.pick(false, k)
	back := c.pick(true, k)
	if err := c.stop(leave); err != nil {
		return err
	}
	return c.start(ctx, back)
}

// pick chooses k servents that are down (down true) or up, at random.
func (c *Churn) pick(down bool, k int) []int {
	var cand []int
	for i, d := range c.down {
		if d == down && !c.Keep[i] {
			cand = append(cand, i)
		}
	}
	c.rng.Shuffle(len(cand), func(i, j int) { cand[i], cand[j] = cand[j], cand[i] })
	return cand[:min(k, len(cand))]
}

func (c *Churn) stop(ids []int) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for k, i := range ids {
		c.down[i] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = c.n.Nodes[i].Stop()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// start restarts servents and links each to its neighbours that are up
// (in the topology's direction: A dials B).
func (c *Churn) start(ctx context.Context, ids []int) error {
	n := c.n
	for _, i := range ids {
		cfg := n.nodeConfig(i, n.Servents[i].Addr())
		s, err := servent.NewNode(cfg)
		if err == nil {
			err = s.Start()
		}
		if err != nil {
			return fmt.Errorf("testnet: restarting servent %d: %w", i, err)
		}
		n.Nodes[i] = s
		n.Servents[i] = s.Servent
		c.down[i] = false
	}
	restarted := map[int]bool{}
	for _, i := range ids {
		restarted[i] = true
	}
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, e := range n.Edges {
		if !restarted[e.A] && !restarted[e.B] || c.down[e.A] || c.down[e.B] {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := n.Servents[e.A].Connect(ctx, n.Servents[e.B].Addr()); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("testnet: relink %d→%d: %w", e.A, e.B, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Restore restarts every servent that is down.
func (c *Churn) Restore(ctx context.Context) error { return c.SetDown(ctx, 0) }

// nodeConfig is the config Start gave servent i (same transport host and,
// in memory, the same address; over TCP a new port). Keep it in step with
// Start.
func (n *Network) nodeConfig(i int, was netip.AddrPort) servent.NodeConfig {
	c := BaseNodeConfig()
	if n.Mem != nil {
		ip := was.Addr()
		c.Transport = n.Mem.Host(ip)
		c.ListenAddr = netip.AddrPortFrom(ip, 6346).String()
	}
	if roles, ok := n.opts.Topology.(Roles); ok && roles.Leaf(i) {
		c.Mode = servent.ModeLeaf
	}
	if n.opts.Configure != nil {
		n.opts.Configure(i, &c)
	}
	return c
}
