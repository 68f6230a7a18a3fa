package servent

import (
	"errors"
	"strconv"

	"gnutella/protocol"
)

// Hostile input: what a link sends that no honest servent would, and what
// we do about it. Today that is a GGEP inflate bomb (docs/protocol.md
// §1.10): a Query or QueryHit whose deflated GGEP data inflates past
// protocol.MaxInflatedPerMessage. Its link is closed with Bye 400 and its
// address is reported to Config.OnHostile, which may refuse it for a while.

// dropHostile reports the peer's address to Config.OnHostile, then closes
// l with Bye 400 and counts it; reporting first means the address is
// refused before the peer can see the Bye and dial again. A link without
// an IP address (an in-memory transport) is closed but not reported.
func (s *Servent) dropHostile(l *Link, reason string) {
	if a := l.Remote.Addr().Unmap(); s.cfg.OnHostile != nil && a.IsValid() {
		s.cfg.OnHostile(a, reason)
	}
	s.router.stats.AbuseDisconnect.Add(1)
	l.Bye(protocol.ByeMessageTooLarge, reason)
}

// undecodable counts a Query or QueryHit that did not decode. An inflate
// bomb from the peer itself (hops 0) gets its link dropped (dropHostile);
// one it relayed (hops > 0) is only dropped, since an honest servent that
// inflates no GGEP it does not read (gtk-gnutella) relays bombs unknowingly,
// and closing its link would let a distant attacker cut us off from honest
// neighbours. Whoever sends it, a bomb costs us at most the budget.
func (r *router) undecodable(l *Link, h protocol.Header, err error) {
	if !errors.Is(err, protocol.ErrInflateBudget) {
		r.stats.DropOther.Add(1)
		return
	}
	r.stats.DropInflateBomb.Add(1)
	if h.Hops == 0 {
		r.s.dropHostile(l, "GGEP inflates past "+strconv.Itoa(protocol.MaxInflatedPerMessage)+" bytes")
	}
}
