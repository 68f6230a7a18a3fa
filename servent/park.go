package servent

import (
	"bufio"
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// Parking an idle link's reader (issue 14): a link that has been quiet for
// Config.ParkAfter, with nothing buffered, gives up its reader goroutine
// and its read buffer, and its socket waits in the servent's one poller
// (park_linux.go) instead; the first byte (or the peer's close) starts a new
// reader. A compressed link parks only between bursts, after its peer's
// sync flush, and its inflater parks with it (inflate.go). This only works
// where the poller does (Linux) and on plain TCP links: a TLS connection
// may hold bytes the socket no longer shows, and the in-memory transport
// has no file descriptor. Those links keep their reader goroutine for good.

// readerState is where a link's reader is; under Link.rmu.
type readerState uint8

const (
	readerRunning readerState = iota // a reader goroutine owns the link
	readerParked                     // no reader: the socket is in the poller
	readerClosed                     // the link is over: never park nor wake again
)

// readBufSize is the size of a link's read buffer, the same as the
// handshake's, so that the handshake's buffer goes to the pool too.
const readBufSize = 2048

var readBufPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}

// parkable says whether this link's reader may park.
func (l *Link) parkable() bool {
	if l.s.cfg.ParkAfter <= 0 || !pollerSupported {
		return false
	}
	_, ok := l.conn.(*net.TCPConn)
	return ok
}

// When more than busyInflaters compressed links hold their inflater's
// reader and window (73 KiB each), a compressed link parks after
// busyParkAfter of quiet instead of ParkAfter: thousands of leaves that
// connect at once (an ultrapeer's restart) would otherwise all hold theirs
// for ParkAfter, 300 MB at 5,000 leaves (BENCHMARKS.md). Parking and
// resuming cost a few tens of µs, paid only while that many are busy.
const (
	busyInflaters = 512
	busyParkAfter = 100 * time.Millisecond
)

// waitOrPark waits up to ParkAfter for the next message's first byte. It
// returns parked when the link was quiet and the reader must exit (the link
// is in the poller), or the read error that ends the link.
func (l *Link) waitOrPark() (parked bool, err error) {
	wait := l.s.cfg.ParkAfter
	if l.inf != nil && l.inf.fr != nil && l.s.inflating.Load() > busyInflaters {
		wait = min(wait, busyParkAfter)
	}
	_ = l.conn.SetReadDeadline(l.s.now().Add(wait))
	_, err = l.br.Peek(1)
	_ = l.conn.SetReadDeadline(noDeadline)
	if l.byeSent.Load() {
		// the writer may have set the Bye's grace just before we cleared it
		_ = l.conn.SetReadDeadline(l.s.now().Add(l.s.cfg.ByeGrace))
	}
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false, err
	}
	if l.br.Buffered() != 0 || l.closing.Load() {
		return false, nil
	}
	if l.inf != nil {
		l.inf.park() // before l.park: a new reader may take the link at once
	}
	br := l.br
	l.br = nil
	br.Reset(nil)
	readBufPool.Put(br)
	if l.park() {
		return true, nil
	}
	l.br = readBufPool.Get().(*bufio.Reader)
	l.br.Reset(l.conn)
	if l.inf != nil {
		l.inf.setSource(l.br) // its old source went back to the pool
	}
	return false, nil
}

// park hands the link's socket to the poller. After a true result the
// calling reader must not touch the link again: a new reader may already
// run.
func (l *Link) park() bool {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	if l.rstate != readerRunning || l.closing.Load() {
		return false
	}
	if !l.s.poller.add(l) {
		return false
	}
	l.rstate = readerParked
	return true
}

// wake starts a reader for a parked link: its socket is readable or hung
// up, or the writer sent our Bye and the Bye's grace needs a reader.
func (l *Link) wake() {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	if l.rstate != readerParked {
		return
	}
	l.s.poller.remove(l)
	l.rstate = readerRunning
	l.s.wg.Add(1) // from a goroutine of the servent's, or under a link not yet closed: Stop waits
	go l.readLoop()
}

// closeReader takes a parked link out of the poller before its socket is
// closed, keeps it from parking again, and stops its clock.
func (l *Link) closeReader() {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	if l.rstate == readerParked {
		l.s.poller.remove(l)
	}
	l.rstate = readerClosed
	if l.clock != nil {
		l.clock.Stop()
	}
}

// parked reports whether the link's reader is parked.
func (l *Link) parked() bool {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	return l.rstate == readerParked
}
