package servent

import (
	"slices"

	"gnutella/protocol"
	"gnutella/share"
	"gnutella/transfer"
	"gnutella/ultrapeer"
)

// The Library seam: what we share, as the router needs it. Node implements
// it with a share.Library; StaticLibrary is one held in memory.

// Library answers queries from what we share.
type Library interface {
	// Answer returns the results we hold for a query (nil: none).
	Answer(q *protocol.Query, h protocol.Header) []protocol.Result
	// QRPTable is the QRP table of what we share (nil: empty). It is asked
	// every connector tick: return a cached table while nothing changed.
	QRPTable() *ultrapeer.Table
	// ShareStats counts the files and KiB we share (for our Pong).
	ShareStats() (files, kb uint32)
}

// StaticLibrary is a Library held in memory (tests and testnets): Results
// answers queries (nil: no results), Table is its QRP table (nil: empty),
// and it counts no shared files.
type StaticLibrary struct {
	Results func(q *protocol.Query, h protocol.Header) []protocol.Result
	Table   *ultrapeer.Table
}

// Answer calls Results.
func (l StaticLibrary) Answer(q *protocol.Query, h protocol.Header) []protocol.Result {
	if l.Results == nil {
		return nil
	}
	return l.Results(q, h)
}

// QRPTable returns Table.
func (l StaticLibrary) QRPTable() *ultrapeer.Table { return l.Table }

// ShareStats is zero: the results are not files on disk.
func (StaticLibrary) ShareStats() (files, kb uint32) { return 0, 0 }

// QRPTable is Node's: the library's table, rebuilt when the library or the
// set of shared partial files changed (names split as the library splits
// them, every prefix of 3 bytes or more, the URNs, and the URNs of the
// partial files). A node that shares nothing uses the configured
// Library's (a testnet answering from memory).
func (n *Node) QRPTable() *ultrapeer.Table {
	partials := n.partialURNs() // pfsp.go
	if n.Library == nil {
		if user := n.cfg.Library; user != nil {
			return user.QRPTable()
		}
		if len(partials) == 0 {
			return nil
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var v uint64
	if n.Library != nil {
		v = n.Library.Version()
	}
	if n.table != nil && n.tableOf == v && slices.Equal(n.tablePartials, partials) {
		return n.table
	}
	var files []share.File
	if n.Library != nil {
		files = n.Library.Files()
	}
	names := make([][]string, len(files))
	var urns []protocol.SHA1
	for i, f := range files {
		names[i] = share.Keywords(f.Name)
		if !f.SHA1.IsZero() {
			urns = append(urns, f.SHA1)
		}
	}
	urns = append(urns, partials...)
	n.table, n.tableOf, n.tablePartials = ultrapeer.BuildTable(qrpBits, names, urns), v, partials
	return n.table
}

// library is the Library as the upload server sees it (an empty one when
// we share nothing).
func (n *Node) library() transfer.Library {
	if n.Library == nil {
		return emptyLibrary{}
	}
	return n.Library
}

type emptyLibrary struct{}

func (emptyLibrary) ByIndex(uint32) (share.File, bool)       { return share.File{}, false }
func (emptyLibrary) BySHA1(protocol.SHA1) (share.File, bool) { return share.File{}, false }

// Answer is Node's: the library's matches as QueryHit records, with the URN
// in the form the query asked for, then the partial files that match
// (pfsp.go). A node that shares nothing answers with the configured Library
// (a testnet answering from memory).
func (n *Node) Answer(q *protocol.Query, h protocol.Header) []protocol.Result {
	return n.answerPartials(q, n.answerLibrary(q, h)) // pfsp.go
}

func (n *Node) answerLibrary(q *protocol.Query, h protocol.Header) []protocol.Result {
	if n.Library == nil {
		if user := n.cfg.Library; user != nil {
			return user.Answer(q, h)
		}
		return nil
	}
	files := n.Library.Match(q)
	if len(files) == 0 {
		return nil
	}
	ggepH := q.Flags.Has(protocol.QueryFlagMark) && q.Flags.Has(protocol.QueryFlagGGEPH)
	out := make([]protocol.Result, 0, len(files))
	for _, f := range files {
		out = append(out, fileResult(f.Index, f.Name, f.Size, f.SHA1, ggepH, nil))
	}
	return out
}

// fileResult is the QueryHit record of a file: its size (in GGEP "LF"
// when it does not fit in 32 bits), its URN in the form the query asked
// for (ggepH), and the extensions of extra.
func fileResult(index uint32, name string, size int64, sha1 protocol.SHA1, ggepH bool, extra protocol.GGEP) protocol.Result {
	r := protocol.Result{Index: index, Name: []byte(name)}
	if size >= protocol.LargeFileSize {
		r.Size = protocol.LargeFileSize
		extra = append(protocol.GGEP{{ID: "LF", Data: protocol.AppendVarint(nil, uint64(size))}}, extra...)
	} else {
		r.Size = uint32(size)
	}
	if !sha1.IsZero() {
		r.Extensions = protocol.ResultExtensions(sha1, ggepH, extra)
	} else if extra != nil {
		r.Extensions = protocol.ExtensionArea{protocol.GGEPItem(extra)}
	}
	return r
}

// ShareStats is Node's: the files and KiB the library shares.
func (n *Node) ShareStats() (files, kb uint32) {
	if n.Library == nil {
		if user := n.cfg.Library; user != nil {
			return user.ShareStats()
		}
		return 0, 0
	}
	return n.Library.Stats()
}
