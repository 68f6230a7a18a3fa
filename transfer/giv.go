package transfer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"gnutella/protocol"
)

// The GIV callback after a Push (docs/protocol.md §6.4), both sides: the uploader
// behind a firewall dials the downloader and writes a GIV line
// (Server.ServeCallback), and the downloader hands the connections that
// arrive with a GIV to the downloads waiting for them (Callbacks). The GIV
// line itself is protocol.GIV.

// Callbacks pairs the GIV connections that arrive on the servent's port
// (servent's Transfers.ServeGIV) with the downloads waiting for them (docs/protocol.md §6.4). It
// is the usual body of Downloader.Push:
//
//	d.Push = func(ctx context.Context, src transfer.Source) (net.Conn, *bufio.Reader, error) {
//		return callbacks.Push(ctx, src, sendPushMessage)
//	}
//	hooks.GIV = func(c net.Conn, br *bufio.Reader, g protocol.GIV) {
//		if !callbacks.Deliver(c, br, g) { c.Close() }
//	}
//
// The zero value is ready to use.
type Callbacks struct {
	mu      sync.Mutex
	waiters map[protocol.GUID][]*givWaiter
}

type givWaiter struct {
	index uint32
	ch    chan givConn // buffered, 1
}

type givConn struct {
	conn net.Conn
	br   *bufio.Reader
}

// ErrNoCallback is returned by Callbacks.Push when no GIV came in time.
var ErrNoCallback = errors.New("transfer: no GIV after the Push")

// Push registers a waiter for src's servent, calls send (which routes a
// Push message, or asks push proxies), and waits for the GIV until ctx
// ends. The connection comes back with its reader positioned after the
// GIV's empty line.
func (c *Callbacks) Push(ctx context.Context, src Source, send func(Source) error) (net.Conn, *bufio.Reader, error) {
	w := &givWaiter{index: src.Index, ch: make(chan givConn, 1)}
	c.mu.Lock()
	if c.waiters == nil {
		c.waiters = make(map[protocol.GUID][]*givWaiter)
	}
	c.waiters[src.ServentID] = append(c.waiters[src.ServentID], w)
	c.mu.Unlock()
	defer c.remove(src.ServentID, w)
	if err := send(src); err != nil {
		return nil, nil, err
	}
	select {
	case g := <-w.ch:
		return g.conn, g.br, nil
	case <-ctx.Done():
		// Deliver sends while holding c.mu: once we are off the list, a GIV
		// is either in the channel or will go to someone else.
		c.remove(src.ServentID, w)
		select {
		case g := <-w.ch:
			return g.conn, g.br, nil
		default:
		}
		return nil, nil, fmt.Errorf("%w (servent %s): %w", ErrNoCallback, src.ServentID, ctx.Err())
	}
}

func (c *Callbacks) remove(id protocol.GUID, w *givWaiter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ws := c.waiters[id]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(c.waiters, id)
	} else {
		c.waiters[id] = ws
	}
}

// Deliver hands a GIV connection to a download waiting for that servent
// (one asking for the same file index first, else the oldest; gtk-gnutella
// always says index 0). It returns false when nobody waits: the caller then
// closes the connection.
func (c *Callbacks) Deliver(conn net.Conn, br *bufio.Reader, giv protocol.GIV) bool {
	c.mu.Lock()
	ws := c.waiters[giv.ServentID]
	var w *givWaiter
	for _, x := range ws {
		if x.index == giv.Index {
			w = x
			break
		}
	}
	if w == nil && len(ws) > 0 {
		w = ws[0]
	}
	if w != nil {
		// Taken off the list here, so that a second GIV goes elsewhere.
		for i, x := range ws {
			if x == w {
				ws = append(ws[:i:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(c.waiters, giv.ServentID)
		} else {
			c.waiters[giv.ServentID] = ws
		}
	}
	if w != nil {
		w.ch <- givConn{conn, br} // buffered, and each waiter gets one
	}
	c.mu.Unlock()
	return w != nil
}

// ServeCallback serves a connection we opened to a downloader after a Push
// (docs/protocol.md §6.4): it sends "GIV <index>:<servent ID>/<name>\n\n", reads the
// request that comes back on the same socket and serves it as ServeConn.
func (s *Server) ServeCallback(conn net.Conn, giv protocol.GIV) {
	_ = conn.SetWriteDeadline(time.Now().Add(s.idle()))
	if _, err := conn.Write(giv.AppendTo(nil)); err != nil {
		conn.Close()
		return
	}
	_ = conn.SetWriteDeadline(time.Time{})
	s.Serve(conn)
}
