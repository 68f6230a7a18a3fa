// Package protocol is the Gnutella wire format and nothing else: the 23-byte
// descriptor header and GUIDs, every payload (Ping, Pong, Bye, Push, Query,
// QueryHit, vendor messages, QRP's route-table updates), GGEP blocks, HUGE
// URNs, the 0.4/0.6 handshake blocks, GIV lines, and a bounded stream Reader
// that checks each type's size cap before it allocates. It sits at the bottom
// of the project and imports nothing of ours: every other package speaks
// through it, and none of its functions does I/O policy (timeouts, bans,
// routing), which belongs to servent, routing and firewall above it.
//
// Every decoder returns a *Error (What, Offset, Kind) that works with
// errors.Is against the Err* kinds; every payload encodes back to the bytes
// it was decoded from. The facts it relies on are in docs/protocol.md §1 and
// §2, with the public specification each comes from.
package protocol
