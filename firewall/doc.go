// Package firewall decides whether this servent is reachable from outside,
// which addresses it may talk to, and handles the pieces of the Push
// machinery that follow from them (docs/protocol.md §1.6, §1.7, §6.4–§6.6, §8.3). It
// sits above protocol (wire formats) and below transfer and servent, which
// use it; it imports nothing else of ours.
//
//   - AddrPolicy: the project's one address policy and bogon list, used by
//     the host cache, the push guard, the push proxy and the downloader.
//   - Detector: are we firewalled? Proof is an inbound TCP connection from
//     an outside host we are not linked to, or a connect-back we asked for;
//     without proof for AssumeFirewalledAfter we go back to firewalled.
//   - Hostiles and AddrSet: the hostile address list (gtk-gnutella's
//     hostiles.txt format) and bounded dynamic bans (§8.6); an AddrPolicy
//     with Hostiles set refuses them.
//   - PushGuard: gtk-gnutella's protections before answering a Push with a
//     connect-back: address policy (hostiles included), 5 callbacks per IP
//     per 30 s, and a 500 s ban on an ip:port after a failed connect-back.
//     It judges every Push; AllowLinked waives only the address class for
//     the real address of a linked peer, never for loopback (§8.3).
//   - ConnectBack: the BEAR/7 TCP connect-back greeting. (The GIV callback
//     after a Push is transfer.Server.ServeCallback.)
//   - Dialer: how firewall and transfer dial (a servent's Transport).
//   - ProxyTable, ParsePushProxyRequest and RelayGuard: the ultrapeer side
//     of push proxies (LIME/21-22 and the HTTP push-proxy request, which
//     transfer.Server answers with them), relays rate-limited per requester
//     and per leaf.
//
// Nothing here starts goroutines or timers: callers pass the current time
// explicitly and drive Detector.Tick themselves (Hostiles, whose Ban and
// Banned take no time, is given its clock by NewHostiles).
package firewall
