package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"

	"gnutella/firewall"
	"gnutella/servent"
)

// peerHint says why --peer p cannot be used and what to do about it.
func peerHint(p string, err error) string {
	var ae *firewall.AddrError
	var he *servent.HandshakeError
	switch {
	case errors.As(err, &ae) && ae.Class == firewall.AddrLoopback:
		return fmt.Sprintf("%s is a loopback address: add --allow-private to join a local testnet", ae.Addr.Addr())
	case errors.As(err, &ae) && (ae.Class == firewall.AddrPrivate || ae.Class == firewall.AddrLinkLocal || ae.Class == firewall.AddrBogon):
		return fmt.Sprintf("%s is a %s address: add --allow-private to join a local network", ae.Addr.Addr(), ae.Class)
	case errors.As(err, &ae):
		return fmt.Sprintf("%s: %v", p, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return p + ": connection refused — is a servent listening there?"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return p + ": no answer in time — check the address and that its port is open"
	case errors.As(err, &he):
		return fmt.Sprintf("%s refused the link (%d %s): try another --peer", p, he.Code, he.Reason)
	}
	return fmt.Sprintf("%s: %v", p, err)
}

// linkPeers checks and dials every peer from the started servent n at
// once and returns how many links came up and, for each peer that did not
// link, why and what to do (peerHint).
func linkPeers(ctx context.Context, n *servent.Node, peers []string) (linked int, problems []string) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range peers {
		ap, err := n.CheckPeer(p)
		if err != nil {
			problems = append(problems, peerHint(p, err))
			continue
		}
		wg.Add(1)
		go func(p string, ap netip.AddrPort) {
			defer wg.Done()
			_, err := n.Connect(ctx, ap)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				problems = append(problems, peerHint(p, err))
				return
			}
			linked++
		}(p, ap)
	}
	wg.Wait()
	return linked, problems
}

// warnRefusedPeers prints on stderr each --peer that n's address policy
// will not dial, with the flag that allows it.
func warnRefusedPeers(n *servent.Node, peers []string) {
	for _, p := range peers {
		if _, err := n.CheckPeer(p); err != nil {
			fmt.Fprintf(os.Stderr, "gnutella: not dialling --peer %s: %s\n", p, peerHint(p, err))
		}
	}
}

func indent(lines []string) string { return "  " + strings.Join(lines, "\n  ") }
