package servent

import (
	"bufio"
	"net"

	"gnutella/protocol"
)

// GIV (docs/protocol.md §6.4): a servent we sent a Push to connects to our port and says
// "GIV index:servent-id/name" and an empty line; the download that asked
// for the Push takes the connection (Transfers.ServeGIV, which Node
// answers with transfer.Callbacks). Answering a Push ourselves, we are
// the one who says GIV (Node.HandlePush, push.go).

// serveGIV reads the rest of a GIV (its first line was read) and hands the
// connection to Transfers; without Transfers, or for a bad GIV, it closes.
func (s *Servent) serveGIV(conn net.Conn, br *bufio.Reader, line string) {
	giv, err := protocol.ParseGIV(line)
	if err != nil || s.cfg.Transfers == nil {
		conn.Close()
		return
	}
	// the empty line after the GIV
	if l2, err := protocol.ReadLine(br); err != nil || l2 != "" {
		conn.Close()
		return
	}
	s.cfg.Transfers.ServeGIV(conn, br, giv)
}

// ServeGIV hands a push callback to the download that asked for it.
func (n *Node) ServeGIV(conn net.Conn, br *bufio.Reader, giv protocol.GIV) {
	if !n.callbacks.Deliver(conn, br, giv) {
		conn.Close() // a GIV for a download we never asked for
	}
}
