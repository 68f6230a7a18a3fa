package routing

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"gnutella/protocol"
)

// GUESS (docs/protocol.md §11 "GUESS"; [GUESS] 0.2 in gtk-gnutella's
// doc/gnutella/GUESS) is iterative unicast: the query goes at TTL 1 to our
// own links over TCP, then over UDP to GUESS ultrapeers we are not linked
// to, a few at a time, each answering from its library and its leaves'
// QRP tables, until the search has enough results, the hosts run out, or
// MaxHosts were probed or the time is up. A host is queried only with its
// query key, fetched first when we have none.

// GUESS is the strategy.
type GUESS struct {
	// MaxHosts bounds the ultrapeers probed over UDP (DefaultGUESSHosts).
	MaxHosts int
	// Parallel is how many hosts one round probes at once (gtk's
	// GUESS_ALPHA is 5; DefaultGUESSParallel).
	Parallel int
	// Wait is how long each round waits for hits before the next one.
	Wait time.Duration
}

// Defaults of the GUESS strategy.
const (
	DefaultGUESSHosts    = 50
	DefaultGUESSParallel = 3
	DefaultGUESSWait     = time.Second
	// MaxGUESSHosts is the most hosts one search may probe.
	MaxGUESSHosts = 500
)

// GUESSNetwork is a Network with a UDP side that can run GUESS probes.
type GUESSNetwork interface {
	Network
	// GUESSLinks hands the query under id to the hosts we hold links to,
	// as GUESS has them take it, and returns how many copies went out: an
	// ultrapeer sends it at TTL 1 to its links and its matching leaves; a
	// leaf sends nothing (its ultrapeers would run a leaf's query as a
	// dynamic query: they are probed by UDP like any GUESS host).
	GUESSLinks(id protocol.GUID, q *protocol.Query) int
	// GUESSHosts returns up to n GUESS ultrapeers to probe, best first,
	// none that skip refuses and none that GUESSLinks reached.
	GUESSHosts(n int, skip func(netip.AddrPort) bool) []netip.AddrPort
	// GUESSProbe sends the search's query under id to host over UDP, first
	// asking host for a query key when we hold none (waiting for it until
	// ctx ends or the key request times out). It reports whether the query
	// went out.
	GUESSProbe(ctx context.Context, id protocol.GUID, s *Search, host netip.AddrPort) bool
}

// Name implements Strategy.
func (g GUESS) Name() string {
	hosts, par, _ := g.params()
	return fmt.Sprintf("guess(hosts=%d,parallel=%d)", hosts, par)
}

func (g GUESS) params() (hosts, parallel int, wait time.Duration) {
	hosts, parallel, wait = g.MaxHosts, g.Parallel, g.Wait
	if hosts <= 0 {
		hosts = DefaultGUESSHosts
	}
	hosts = min(hosts, MaxGUESSHosts)
	if parallel <= 0 {
		parallel = DefaultGUESSParallel
	}
	if wait <= 0 {
		wait = DefaultGUESSWait
	}
	return hosts, parallel, wait
}

// Run implements Strategy.
func (g GUESS) Run(ctx context.Context, s *Search, n Network) {
	maxHosts, parallel, wait := g.params()
	s.addGUID(s.ID)
	gn, ok := n.(GUESSNetwork)
	if !ok {
		// no UDP: our own links at TTL 1 is all GUESS can do
		s.addSent(n.SendQuery(s.ID, s.Query, 1, nil))
		return
	}
	// Our own links first, over TCP, at TTL 1: they answer and hand it to
	// their leaves by QRP, as a GUESS ultrapeer does with a UDP query.
	s.addSent(gn.GUESSLinks(s.ID, s.Query))
	tried := make(map[netip.AddrPort]bool)
	for len(tried) < maxHosts && !s.Enough() && ctx.Err() == nil {
		hosts := gn.GUESSHosts(min(parallel, maxHosts-len(tried)), func(a netip.AddrPort) bool { return tried[a] })
		if len(hosts) == 0 {
			return // exhausted (acks of this round already added the hosts they listed)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		sent := 0
		for _, h := range hosts {
			tried[h] = true
			wg.Go(func() {
				if gn.GUESSProbe(ctx, s.ID, s, h) {
					mu.Lock()
					sent++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		s.addSent(sent)
		if sent > 0 && waitHits(ctx, s, wait) {
			return
		}
	}
}
