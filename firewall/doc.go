// Package firewall decides whether this servent is reachable from outside
// and handles the pieces of the Push machinery that follow from it (notes
// §1.6, §1.7, §6.4–§6.6, §8.3):
//
//   - Detector: are we firewalled? Proof is an inbound TCP connection from
//     an outside host we are not linked to, or a connect-back we asked for;
//     without proof for AssumeFirewalledAfter we go back to firewalled.
//   - PushGuard: gtk-gnutella's protections before answering a Push with a
//     connect-back: address policy, 5 callbacks per IP per 30 s, and a 500 s
//     ban on an ip:port after a failed connect-back.
//   - Callback and ConnectBack: the outgoing connections themselves (GIV
//     after a Push; the BEAR/7 TCP connect-back greeting).
//   - ProxyTable and ParsePushProxyRequest: the ultrapeer side of push
//     proxies (LIME/21-22 and the HTTP push-proxy request).
//
// Nothing here starts goroutines or timers: callers pass the current time
// explicitly and drive Detector.Tick themselves.
package firewall
