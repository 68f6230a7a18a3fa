package servent

import (
	"bufio"
	"net"

	"gnutella/protocol"
)

// Transfers are the file transfers that share our one port: uploads (GET
// and HEAD), push callbacks (GIV), and whether every upload slot is taken
// (the Busy flag of our QueryHits). Node implements it with the transfer
// package. Without one, GET and HEAD get 404 and a GIV is closed.
type Transfers interface {
	// ServeHTTPConn serves a GET or HEAD request whose first line was
	// already read. It owns conn and must close it. The read deadline the
	// servent set at accept (HandshakeTimeout) bounds the whole head of
	// this first request: an implementation must not restart it before
	// the headers are read (accept.go).
	ServeHTTPConn(conn net.Conn, br *bufio.Reader, requestLine string)
	// ServeGIV takes a push callback (the GIV line and the empty line after
	// it were read). It owns conn.
	ServeGIV(conn net.Conn, br *bufio.Reader, giv protocol.GIV)
	// Busy reports whether every upload slot is taken.
	Busy() bool
}

// ServeHTTPConn is Node's Transfers: the upload server answers GET and HEAD.
func (n *Node) ServeHTTPConn(conn net.Conn, br *bufio.Reader, requestLine string) {
	n.Uploads.ServeConn(conn, br, requestLine)
}

// Busy reports whether every upload slot is taken.
func (n *Node) Busy() bool { return n.Uploads.Busy() }
