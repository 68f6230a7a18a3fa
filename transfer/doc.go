// Package transfer moves files over HTTP the way Gnutella servents do (docs/protocol.md
// §6, §9 "Transfers", §10): HTTP uploads and downloads. It sits below
// servent, which owns the port, the links and the Push routing and hands
// transfer the HTTP connections and the GIV callbacks; and above protocol
// (handshake-style header parsing, GIV, GUIDs, URNs), share (the files it
// serves) and firewall (the address policy, the Dialer and the push-proxy
// request).
//
//   - Server (upload.go, serve.go): answers GET and HEAD for
//     /get/<index>/<name> and /uri-res/N2R?urn:sha1:..., and the push-proxy
//     request for the leaves the servent proxies (pushproxy.go).
//   - Downloader (download.go, persist.go): fetches files from the sources
//     QueryHits name, directly or through a Push, resumes with a 512-byte
//     overlap and verifies the SHA-1 before a file takes its final name.
//   - The GIV callback, both sides (giv.go): Server.ServeCallback after a
//     Push to us, Callbacks pairing incoming GIVs with waiting downloads.
//   - RequestPushProxy (pushproxy.go): asking a push proxy for a Push.
//
// Both sides parse HTTP with the handshake limits of package protocol
// (1024-byte lines, 128 header lines, 16 KiB per block), never net/http, so
// a hostile peer cannot make either side read or allocate more than that.
// The defaults are in defaults.go.
package transfer
