package servent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/transfer"
)

// Browse Host (docs/protocol.md §6.7): another servent fetches our whole
// library with GET / on our port (transfer.Server.Browse, fed by
// browseHits), and we fetch another's (Node.Browse). Our QueryHits say we
// can be browsed with GGEP "BH" (ourHits), our handshakes with X-Features.

// browseScanAhead is how many files are turned into hits at a time
// (gtk-gnutella's BH_SCAN_AHEAD): the library is not held as hits all at
// once however big it is.
const browseScanAhead = 100

// browseServer is what a Transfers implements when GET / is served: our
// hits then carry "BH".
type browseServer interface{ servesBrowse() bool }

func (s *Servent) servesBrowse() bool {
	b, ok := s.cfg.Transfers.(browseServer)
	return ok && b.servesBrowse()
}

func (n *Node) servesBrowse() bool { return n.Uploads.Browse != nil }

// browseHits is the Server's Browse: every shared file, in index order, as
// the payloads of the hits we answer queries with (ourHits), the URN as
// text (urn:sha1:...), which every servent reads.
func (n *Node) browseHits(yield func(hit []byte) bool) {
	if n.Library == nil {
		return
	}
	files := n.Library.Files()
	results := make([]protocol.Result, 0, browseScanAhead)
	var buf []byte
	for start := 0; start < len(files); start += browseScanAhead {
		results = results[:0]
		for _, f := range files[start:min(start+browseScanAhead, len(files))] {
			results = append(results, fileResult(f.Index, f.Name, f.Size, f.SHA1, false, nil))
		}
		more := true
		n.ourHits(results, func(hit *protocol.QueryHit) bool {
			var err error
			if buf, err = hit.AppendTo(buf[:0]); err != nil {
				return true // a record that cannot be encoded: skip its hit
			}
			more = yield(buf)
			return more
		})
		if !more {
			return
		}
	}
}

// BrowseStrategy is the Strategy name of the searches Browse makes.
const BrowseStrategy = "browse"

// BrowseHost fetches the library of the servent at host with b and returns
// it as a finished search, so that its hits are numbered and downloaded
// like any search's. The hits' address is host, where we reached it (what
// the hits say may be an address it cannot be reached on), and they are
// not marked firewalled: we reached it without a Push. The browse is
// bounded as b bounds it; when it stops early the records read so far
// are returned with the error.
func BrowseHost(ctx context.Context, b *transfer.Browser, host netip.AddrPort) (*routing.Search, error) {
	search := newBrowseSearch(host)
	defer search.Finish()
	_, err := b.Browse(ctx, host, func(h *protocol.QueryHit) {
		if a := host.Addr().Unmap(); a.Is4() {
			h.IP, h.Port = a.As4(), host.Port()
			h.ClearPush()
		}
		search.AddQueryHit(h, 0, time.Now())
	})
	return search, err
}

func newBrowseSearch(host netip.AddrPort) *routing.Search {
	return routing.NewSearch(protocol.NewQuery("browse "+host.String(), protocol.QueryFlagMark), BrowseStrategy, 0)
}

// Browse is BrowseHost through our transport. When host cannot be reached
// and serventID is not zero, a Push asks the servent to connect back (a
// GIV), and the browse runs on that connection, as the Browse Host
// proposal has it; the hits then keep their own address.
func (n *Node) Browse(ctx context.Context, host netip.AddrPort, serventID protocol.GUID) (*routing.Search, error) {
	if n.ctx == nil {
		search := newBrowseSearch(host)
		search.Finish()
		return search, errors.New("browse: the servent is not started")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(n.ctx, cancel) // Stop ends a browse under way
	defer stop()
	b := &transfer.Browser{Dial: n.transport, UserAgent: userAgent()}
	search, err := BrowseHost(ctx, b, host)
	if serventID.IsZero() || !errors.Is(err, transfer.ErrBrowseUnreachable) || ctx.Err() != nil {
		return search, err
	}
	search = newBrowseSearch(host)
	defer search.Finish()
	src := transfer.Source{Addr: host, ServentID: serventID}
	pctx, pcancel := context.WithTimeout(ctx, transfer.DefaultPushTimeout)
	conn, br, perr := n.callbacks.Push(pctx, src, n.sendPush)
	pcancel()
	if perr != nil {
		return search, fmt.Errorf("%w; push: %w", err, perr)
	}
	defer conn.Close()
	_, err = b.BrowseConn(ctx, conn, br, host.String(), func(h *protocol.QueryHit) {
		search.AddQueryHit(h, 0, time.Now())
	})
	return search, err
}
