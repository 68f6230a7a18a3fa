//go:build linux

package servent

import (
	"net"
	"sync"

	"golang.org/x/sys/unix"
)

// pollerSupported: on Linux an idle link's socket waits in an epoll set of
// our own (park.go).
const pollerSupported = true

// poller is the servent's one waiter for parked links: an epoll set of
// their sockets, beside Go's own netpoller (a socket may be in both: they
// are separate sets), and one goroutine, started at the first park, blocked
// in epoll_wait. Each socket is registered one-shot, keyed by its link's ID,
// and taken out again (EPOLL_CTL_DEL) before a reader takes the link back
// or its socket is closed. An eventfd (key 0, no link has ID 0) stops the
// goroutine.
type poller struct {
	mu      sync.Mutex
	started bool
	stopped bool // Stop was called: no more parking
	epfd    int
	evfd    int
	links   map[uint32]*Link
}

// add registers l's socket; false when it cannot (the servent is stopping,
// the socket is closed, epoll failed): the reader then keeps reading.
func (p *poller) add(l *Link) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || !p.startLocked(l.s) {
		return false
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(l.ID)}
	if err := p.ctlLocked(l, unix.EPOLL_CTL_ADD, &ev); err != nil {
		return false
	}
	p.links[uint32(l.ID)] = l
	return true
}

// remove takes l's socket out of the set.
func (p *poller) remove(l *Link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.links, uint32(l.ID))
	if p.started {
		_ = p.ctlLocked(l, unix.EPOLL_CTL_DEL, nil)
	}
}

// ctlLocked runs epoll_ctl on l's socket while Go holds the descriptor, so
// that the number cannot be closed and reused by another socket meanwhile.
func (p *poller) ctlLocked(l *Link, op int, ev *unix.EpollEvent) error {
	tc, ok := l.conn.(*net.TCPConn)
	if !ok {
		return net.ErrClosed
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	var ctlErr error
	if err := rc.Control(func(fd uintptr) { ctlErr = unix.EpollCtl(p.epfd, op, int(fd), ev) }); err != nil {
		return err
	}
	return ctlErr
}

// startLocked creates the epoll set and starts the waiter, once.
func (p *poller) startLocked(s *Servent) bool {
	if p.started {
		return true
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return false
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return false
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: 0}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return false
	}
	p.epfd, p.evfd, p.started = epfd, evfd, true
	p.links = make(map[uint32]*Link)
	s.wg.Add(1) // called from a reader, a goroutine of the servent's
	go p.wait(s)
	return true
}

// wait wakes the links whose sockets turn readable or hang up, until stop.
func (p *poller) wait(s *Servent) {
	defer s.wg.Done()
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			s.log.Error().Err(err).Msg("epoll_wait failed: parked links are woken no more")
			p.close()
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == 0 {
				p.close()
				return
			}
			p.mu.Lock()
			l := p.links[uint32(ev.Fd)]
			p.mu.Unlock()
			if l != nil {
				l.wake()
			}
		}
	}
}

// close releases the epoll set, after which nothing parks.
func (p *poller) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped, p.started = true, false
	unix.Close(p.epfd)
	unix.Close(p.evfd)
	p.links = nil
}

// stop ends the waiter; Servent.Stop calls it once every link is closed.
func (p *poller) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.started {
		var one = [8]byte{1}
		_, _ = unix.Write(p.evfd, one[:])
	}
}
