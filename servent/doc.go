// Package servent is the Gnutella node: one listening port, the links to
// other servents, the routing of descriptors between them, the pong and host
// caches, and the connector that keeps the links at their configured count.
// A Node (node.go) is a whole servent: the core plus a library, transfers and
// firewall detection; package control serves its API.
//
// # Where things live
//
// Each protocol word has one file: bye.go, ping.go, pong.go (with
// pongcache.go), query.go, queryhit.go, push.go, giv.go, walker.go,
// gossip.go, hopsflow.go (Hops-Flow: saying, hearing and obeying it),
// qrp.go, dq.go (dynamic queries for leaves), vendor.go (the one dispatch
// of vendor messages), connectback.go (BEAR/7, both sides), pushproxy.go
// (LIME/21, LIME/22 and GET /gnutella/push-proxy, both sides),
// hostiles.go (the hostile list and bans, checked at accept and on every
// dial, docs/protocol.md §8.6), roles.go
// (auto mode) and firewall.go (reachability). route.go dispatches each
// descriptor to its file's handler; router.go is the router's state and
// primitives (arrival checks, duplicates, flooding, reply routing).
// servent.go, link.go, queue.go, deflate.go, handshake.go, accept.go and
// connector.go are the machinery of links; admission.go decides, before
// anything is read, whether an inbound connection may stay (caps on
// pending connections, the descriptor budget, the handshake rate); node.go
// wires a Node; dmesh.go feeds its download mesh with our searches' hits and
// pfsp.go answers queries for the files it is downloading (partial file
// sharing).
//
// # Seams
//
// The packages above servent take part through small interfaces in Config
// (a nil one has a safe default): Library (library.go: answers, our QRP
// table, share counts), Transfers (transfers.go: GET, HEAD and GIV on our
// port, upload slots), Firewall (firewall.go: reachability), PushHandler
// (push.go: Pushes addressed to us), and Trace (route.go: every descriptor
// the router sees, for tests). Node implements all four interfaces itself.
//
// # Concurrency
//
// Goroutines per servent: the accept loop (accept.go) and one goroutine
// per inbound connection until its first line is handled (then it becomes
// that connection's handshake, HTTP or GIV handler); the connector
// (connector.go), which owns its clock: role promotion, pong-cache
// refresh, the QRP tick, dialling and saving the host cache; one goroutine
// per dial in flight (at most maxDialing), per GWebCache round, per
// dynamic query we run for a leaf (dq.go), per walker check (walker.go,
// bounded by router.checking), per connect-back dial (connectback.go,
// bounded by connectBacks.slots), per Push we answer (push.go, bounded by
// Node.pushCallbacks) and per search.
// A Node adds its firewall clock (firewall.go's firewallLoop); the control
// API (package control) runs its own server beside it. Every goroutine is
// counted in Servent.wg; Stop cancels
// Servent.ctx and waits for them all.
//
// Goroutines per link: a reader (link.go readLoop), which decodes and
// handles every descriptor the peer sends, so all handlers run on the
// reader of the link the descriptor came from, concurrently across links;
// and a writer (writeLoop), the only one to write to the connection, which
// drains the link's send queue. Both exist only while needed: the writer
// from the first message queued to an empty queue, the reader of a quiet
// plain TCP link parks (park.go). The link's clock (alive pings, idle and
// flow-control timeouts) is a timer (Link.tick).
//
// Ownership. The reader owns Link.lastPing and Link.abuse (a link's QRP
// receiver lives in qrpState.recv, under its own mutex, so that the link's
// close can free it);
// the connector owns Link.qrpSent, the QRP aggregate (qrpState's unlocked
// fields) and leafHopsFlow; a dynamic query's strategy goroutine owns its
// status-request clock. Fields set before a link starts (ID, Kind, Caps,
// Remote, Listen, PeerID, DeflateIn/Out) are read-only afterwards. Every
// other shared field is an atomic (a link's closing, byeSent, byeCode,
// lastRx, aliveSent, aliveID, flowSince, hopsFlow, vendorIDs, qrt and
// counters; the servent's self, snapshot, state, mode, message balance and
// walk checks; the router's QRP counters) or sits under one of the
// mutexes below.
//
// Mutexes, and the order in which they may be held together (a lock may
// only be taken while holding locks listed before it):
//
//  1. Servent.proxies.mu (pushproxy.go) and Servent.connectBacks.mu
//     (connectback.go): held while looking links up and sending to them.
//  2. Servent.mu (servent.go): the link table, dials in flight and the
//     change channel; nothing is sent while holding it.
//  3. Node.mu (node.go): the cached QRP table of the library (it calls into
//     share.Library's own locks).
//  4. qrpRecv.mu (qrp.go): one link's QRP receiver, held by the link's
//     reader while it applies a route-table message (completing a table
//     takes qrpState.mu) and by forgetLink while it frees the receiver.
//  5. leaf mutexes, under which no other lock of this package is taken:
//     qrpState.mu (the leaves' QRP index), roleState.mu (the last role
//     switch), pongCache.mu, router.rngMu, searchTable.mu, the dynamic
//     queries' table (ultrapeer.LeafQueries), admissions.mu (pending
//     connections and handshake rates), the routing package's caches and
//     tables, the host cache's mutex and, under it, the firewall.Hostiles
//     ban set's (hostiles.go).
//  6. sendQueue.mu (queue.go), the innermost: Link.send takes it, so any
//     lock above may be held while sending.
//
// Calls into the seams (Library, Transfers, Firewall, PushHandler, Trace)
// are made with no lock of this package held.
package servent
