package testnet

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"

	"gnutella/routing"
)

// GUESS in an experiment: the in-memory network has no UDP, so GUESS runs
// only over TCP transport (loopback, where each servent has its UDP socket
// on its port). Before the GUESS runs every ultrapeer is introduced to up
// to guessIntroductions others it is not linked to, by asking each for a
// query key, as a GUESS servent would learn hosts from a UDP host cache:
// without it a servent knows no GUESS host but its neighbours (the
// experiment turns pong caching off).

// guessIntroductions is how many ultrapeers each one asks for a key.
const guessIntroductions = 16

// errGUESSMemory refuses GUESS on the in-memory network.
var errGUESSMemory = errors.New("testnet: guess needs UDP: run it with --transport tcp (the in-memory network has none)")

func hasGUESS(sts []routing.Strategy) bool {
	for _, st := range sts {
		if _, ok := st.(routing.GUESS); ok {
			return true
		}
	}
	return false
}

// introduceGUESS has every ultrapeer ask up to guessIntroductions random
// other ultrapeers for a query key, a few servents at a time.
func (x *experiment) introduceGUESS(ctx context.Context) {
	var ups []int
	for i, leaf := range x.leaves {
		if !leaf {
			ups = append(ups, i)
		}
	}
	rng := rand.New(rand.NewPCG(x.cfg.Seed, 500))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, i := range ups {
		s := x.net.Servents[i]
		targets := make([]int, 0, guessIntroductions)
		for _, k := range rng.Perm(len(ups)) {
			if len(targets) == guessIntroductions {
				break
			}
			if ups[k] != i {
				targets = append(targets, ups[k])
			}
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			for _, t := range targets {
				s.AskQueryKey(ctx, x.net.Servents[t].UDPAddr())
			}
		})
	}
	wg.Wait()
}
