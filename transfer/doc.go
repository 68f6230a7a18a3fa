// Package transfer moves files over HTTP the way Gnutella servents do (docs/protocol.md
// §6, §9 "Transfers", §10): HTTP uploads and downloads. It sits below
// servent, which owns the port, the links and the Push routing and hands
// transfer the HTTP connections and the GIV callbacks; and above protocol
// (handshake-style header parsing, GIV, GUIDs, URNs), share (the files it
// serves) and firewall (the address policy, the Dialer and the push-proxy
// request).
//
//   - Server (upload.go, serve.go, uploadqueue.go): answers GET and HEAD for
//     /get/<index>/<name> and /uri-res/N2R?urn:sha1:... (and / for Browse
//     Host), with a PARQ queue,
//     partial files (Partials) and the download mesh's headers, and the
//     push-proxy request for the leaves the servent proxies (pushproxy.go).
//   - Downloader (download.go, swarm.go, partial.go, persist.go): fetches
//     files from the sources QueryHits name and the Mesh (dmesh.go) learns.
//     A download by urn:sha1 swarms: up to MaxSources sources at once, each
//     on one kept-alive connection, one chunk (ChunkSize) per range request,
//     directly or through a Push. Each source takes a random free chunk of
//     those it has (X-Available-Ranges), so that leechers of one file hold
//     different parts; in the endgame an idle source takes half of the
//     biggest request in flight, or the same bytes when few are left. Bytes
//     are written only inside the range asked for and the announced size;
//     bytes already had are compared. A download without a SHA-1 uses one
//     source at a time, by /get/<index>/<name>.
//   - Checking: there is no well-kept Go Tiger-tree implementation that
//     reads gtk-gnutella's THEX, so chunks are not checked as they come.
//     The whole file's SHA-1 is checked before it takes its final name; on
//     a mismatch each source's bytes are fetched again from another source
//     and compared, the source whose bytes disagree with a confirmed source
//     (or with two others) is banned for the file and reported to the Mesh
//     (Bad), and its bytes are fetched again.
//   - Control: every download has an ID (Get, Pause, Resume, Cancel,
//     Remove, SetPriority); the queue, with what each partial file holds,
//     survives a restart (persist.go, StateFile).
//   - PARQ, both sides (parq.go): the Downloader sends X-Queue, keeps its
//     place (X-Queued) and comes back at the Retry-After, never sooner.
//   - The download mesh (dmesh.go): Mesh keeps, per SHA-1, the alternate
//     locations learnt from hits and from X-Alt, X-NAlt and X-Falt, good
//     and bad, bounded and expiring, and writes them into both sides'
//     heads. It never dials: only a download the user started uses them.
//   - The GIV callback, both sides (giv.go): Server.ServeCallback after a
//     Push to us, Callbacks pairing incoming GIVs with waiting downloads.
//   - RequestPushProxy (pushproxy.go): asking a push proxy for a Push.
//   - Browse Host, both sides (browse.go): Server answers GET / with the
//     QueryHits of the whole library (Server.Browse, built by the servent)
//     or an HTML list; Browser fetches another host's under a deadline,
//     byte, message and record caps.
//
// Both sides parse HTTP with the handshake limits of package protocol
// (1024-byte lines, 128 header lines, 16 KiB per block), never net/http, so
// a hostile peer cannot make either side read or allocate more than that.
// The defaults are in defaults.go.
package transfer
