package testnet

import (
	"context"
	"fmt"
	"time"
)

// WaitQuiet returns once nothing is in flight: every message any servent
// queued has been read and handled by its peer (the network-wide message
// balance is even, and stays even across two looks). Alive pings keep
// flowing, so call it within a few seconds of the traffic it waits for.
func (n *Network) WaitQuiet(ctx context.Context) error {
	last := int64(-1)
	for {
		var sent, handled int64
		for _, s := range n.Servents {
			a, b := s.MessageBalance()
			sent += a
			handled += b
		}
		if sent == handled {
			if sent == last {
				return nil
			}
			last = sent
		} else {
			last = -1
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testnet: not quiet (sent %d, handled %d): %w", sent, handled, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}
