package servent

import (
	"bufio"
	"net"
	"sync"
	"time"

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

// hitSpeed is Node's Config.HitSpeed, the speed our QueryHits announce in
// kbit/s: the cap on uploads when there is one (--upload-rate), else the
// fastest our uploads have gone over a speedWindow so far, else 0 (not
// known: the servent announces its default).
func (n *Node) hitSpeed() uint32 {
	if n.cfg.UploadRate > 0 {
		return kbits(float64(n.cfg.UploadRate))
	}
	return kbits(n.speed.sample(time.Now(), n.Uploads.Stats().BytesSent))
}

// kbits turns bytes per second into the kbit/s of a QueryHit (0 stays 0).
func kbits(bytesPerSec float64) uint32 {
	if bytesPerSec <= 0 {
		return 0
	}
	return uint32(max(min(bytesPerSec*8/1000, 1<<31), 1))
}

// speedWindow is how long uploads are watched for one measure of their
// speed: long enough that a burst into socket buffers does not count.
const speedWindow = 10 * time.Second

// An uploadSpeed measures the fastest rate of our uploads, from the count
// of bytes sent, sampled when a hit is built (no goroutine of its own).
type uploadSpeed struct {
	mu   sync.Mutex
	at   time.Time // start of the window
	sent int64     // bytes sent at its start
	peak float64   // bytes/s, the fastest window so far
}

// sample notes that sent bytes were sent by now and returns the peak rate.
func (u *uploadSpeed) sample(now time.Time, sent int64) float64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch d := now.Sub(u.at); {
	case u.at.IsZero() || d < 0:
		u.at, u.sent = now, sent
	case d >= speedWindow:
		u.peak = max(u.peak, float64(sent-u.sent)/d.Seconds())
		u.at, u.sent = now, sent
	}
	return u.peak
}
