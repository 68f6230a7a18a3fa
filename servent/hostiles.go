package servent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"

	"gnutella/firewall"
	"gnutella/protocol"
)

// Hostile addresses (docs/protocol.md §8.6): the servent's one
// firewall.Hostiles, Config.Hostiles or else the lists of the data folder
// (hostilesFile and bansFile, gtk-gnutella's hostiles.txt format) plus the
// dynamic bans other defences add (Servent.Ban, which also closes the
// links from the address; Hostiles().Ban only records). It is checked
// on inbound connections (refused, below), on every dial (hostileGate, so
// that no code path dials a hostile), in the host cache's address policy
// (pongs, X-Try, the saved cache), by the push guard and the push proxy
// (push.go, pushproxy.go), by connect-back (connectback.go) and by the
// downloader's policy (node.go).

const (
	hostilesFile = "hostiles.txt" // the static list, as shipped
	bansFile     = "bans.txt"     // the user's own list, same format
)

// initHostiles sets s.hostiles: the configured one, or one loaded from the
// data folder. Bad lines and unreadable files are logged, never fatal.
func (s *Servent) initHostiles() {
	if s.cfg.Hostiles != nil {
		s.hostiles = s.cfg.Hostiles
		return
	}
	s.hostiles = firewall.NewHostiles(0, nil)
	if s.cfg.DataDir == "" {
		return
	}
	set := &firewall.AddrSet{}
	for _, name := range []string{hostilesFile, bansFile} {
		path := filepath.Join(s.cfg.DataDir, name)
		one, rep, err := firewall.LoadHostiles(path)
		if err != nil {
			s.log.Warn().Err(err).Msg("hostile addresses not loaded")
		}
		if rep.Bad > 0 || rep.Truncated {
			ev := s.log.Warn().Str("file", path).Int("bad_lines", rep.Bad).Bool("truncated", rep.Truncated)
			if len(rep.FirstBad) > 0 {
				b := rep.FirstBad[0]
				ev = ev.Str("first_bad", fmt.Sprintf("line %d: %s: %s", b.Line, b.Text, b.Err))
			}
			ev.Msg("hostile addresses: lines skipped")
		}
		if rep.Entries > 0 {
			s.log.Info().Str("file", path).Int("entries", rep.Entries).Msg("hostile addresses loaded")
		}
		set = set.Union(one)
	}
	s.hostiles.SetStatic(set, "hostile address list")
}

// Hostiles is the servent's hostile list and ban set: other defences ban
// addresses with Ban(addr, duration, reason).
func (s *Servent) Hostiles() *firewall.Hostiles { return s.hostiles }

// refused closes an inbound connection from a hostile or banned address
// and reports whether it did (accept.go).
func (s *Servent) refused(conn net.Conn) bool {
	a := addrPortOf(conn.RemoteAddr()).Addr()
	reason, bad := s.hostiles.Banned(a)
	if !bad {
		return false
	}
	s.log.Debug().Stringer("remote", a).Str("reason", reason).Msg("inbound connection refused: hostile")
	conn.Close()
	return true
}

// errHostile is the error of a dial to a hostile or banned address.
var errHostile = errors.New("hostile address: not dialled")

// hostileGate is the servent's Transport: it refuses to dial a hostile or
// banned address, whoever asks (connector, push callback, connect-back,
// push proxy, downloads).
type hostileGate struct {
	Transport
	hostiles *firewall.Hostiles
}

func (g hostileGate) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		if reason, bad := g.hostiles.Banned(ap.Addr()); bad {
			return nil, fmt.Errorf("dial %s: %w (%s)", addr, errHostile, reason)
		}
	}
	return g.Transport.Dial(ctx, addr)
}

// byeHostile is gtk-gnutella's Bye to a hostile peer (docs/protocol.md §8.6).
const byeHostile protocol.ByeCode = 415

// Ban bans addr for d (Hostiles().Ban) and closes the links from it with
// Bye 415 "Hostile Peer": the call for a defence that caught a peer.
func (s *Servent) Ban(addr netip.Addr, d time.Duration, reason string) {
	s.hostiles.Ban(addr, d, reason)
	if d <= 0 {
		return
	}
	addr = addr.Unmap()
	for _, l := range s.Links() {
		if l.Remote.Addr().Unmap() == addr {
			l.Bye(byeHostile, "Hostile Peer")
		}
	}
}

// Banned says whether addr is hostile or banned, and why (Hostiles().Banned).
func (s *Servent) Banned(addr netip.Addr) (reason string, ok bool) {
	return s.hostiles.Banned(addr)
}

// Hostile input: what a link sends that no honest servent would, and what
// we do about it. Today that is a GGEP inflate bomb (docs/protocol.md
// §1.10): a Query or QueryHit whose deflated GGEP data inflates past
// protocol.MaxInflatedPerMessage. Its link is closed with Bye 400 and its
// address banned for Config.HostileBan (refused at accept and never dialled;
// loopback only with RateLimitLoopback, so that a local testnet is never
// cut off from itself), and reported to Config.OnHostile.

// dropHostile bans the peer's address and reports it to Config.OnHostile,
// then closes l with Bye 400 and counts it; banning first means the address
// is refused before the peer can see the Bye and dial again. Other links
// from the address stay up (they may be other, honest servents behind the
// same address). A link without an IP address (an in-memory transport) is
// closed but neither banned nor reported.
func (s *Servent) dropHostile(l *Link, reason string) {
	if a := l.Remote.Addr().Unmap(); a.IsValid() {
		if s.cfg.HostileBan > 0 && (!a.IsLoopback() || s.cfg.RateLimitLoopback) {
			s.hostiles.Ban(a, s.cfg.HostileBan, reason)
		}
		if s.cfg.OnHostile != nil {
			s.cfg.OnHostile(a, reason)
		}
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
