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
	"gnutella/servent/hostcache"
)

// peerHint says why --peer p cannot be used and what to do about it.
func peerHint(p string, err error) string {
	var ae *firewall.AddrError
	var he *servent.HandshakeError
	switch {
	case errors.As(err, &ae) && ae.Class == firewall.AddrLoopback:
		return fmt.Sprintf("%s is a loopback address: add --allow-private to join a local testnet", ae.Addr.Addr())
	case errors.As(err, &ae) && (ae.Class == firewall.AddrPrivate || ae.Class == firewall.AddrLinkLocal || ae.Class == firewall.AddrBogon):
		return fmt.Sprintf("%s is a %s: add --allow-private to join a local network", ae.Addr.Addr(), ae.Class)
	case errors.As(err, &ae):
		return fmt.Sprintf("%s: %v", p, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return p + ": connection refused: nothing listens there (check the address and port, or start the servent there first)"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return p + ": no answer in time — check the address and that its port is open"
	case errors.As(err, &he):
		return fmt.Sprintf("%s refused the link (%d %s): try another --peer", p, he.Code, he.Reason)
	}
	return fmt.Sprintf("%s: %v", p, err)
}

// linkPeers checks and dials every peer from the started servent n at
// once (a loopback or private one too, as serve does) and returns how many links came up and, for each peer that did not
// link, why and what to do (peerHint).
func linkPeers(ctx context.Context, n *servent.Node, peers []string) (linked int, problems []string) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range peers {
		ap, err := n.CheckPeer(p)
		if err != nil && !hostcache.Waivable(err) {
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
// refuses: a hostile one is not dialled; a loopback or private one is, but
// the hosts on such addresses that it names are not, unless --allow-private.
func warnRefusedPeers(n *servent.Node, peers []string) {
	for _, p := range peers {
		_, err := n.CheckPeer(p)
		switch {
		case err == nil:
		case hostcache.Waivable(err):
			fmt.Fprintf(os.Stderr, "gnutella: dialling --peer %s as given, but %s\n", p,
				strings.Replace(peerHint(p, err), "add --allow-private", "without --allow-private the hosts it names on such addresses are not; add it", 1))
		default:
			fmt.Fprintf(os.Stderr, "gnutella: not dialling --peer %s: %s\n", p, peerHint(p, err))
		}
	}
}

// A peerReport prints on stderr why a --peer of serve did not link, with
// what to do (peerHint), and when it links: each peer's outcome once until
// it changes, as the servent keeps trying with back-off. Its dialled
// method is the servent's OnDial hook; learn names the peers before the
// servent starts dialling.
type peerReport struct {
	mu    sync.Mutex
	named map[netip.AddrPort]string
	last  map[netip.AddrPort]string
}

// learn resolves the --peer values with n, as n's Start does.
func (r *peerReport) learn(n *servent.Node, peers []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.named, r.last = map[netip.AddrPort]string{}, map[netip.AddrPort]string{}
	for _, p := range peers {
		if ap, _ := n.CheckPeer(p); ap.IsValid() {
			r.named[ap] = p
		}
	}
}

func (r *peerReport) dialled(ap netip.AddrPort, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.named[ap]
	if !ok {
		return
	}
	msg := "gnutella: linked to --peer " + p
	if err != nil {
		msg = "gnutella: cannot link to --peer " + peerHint(p, err) + "; trying again later"
	}
	if r.last[ap] != msg {
		r.last[ap] = msg
		fmt.Fprintln(os.Stderr, msg)
	}
}

func indent(lines []string) string { return "  " + strings.Join(lines, "\n  ") }
