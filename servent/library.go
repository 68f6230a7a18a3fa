package servent

import (
	"gnutella/protocol"
	"gnutella/share"
	"gnutella/transfer"
	"gnutella/ultrapeer"
)

// qrpTable is Hooks.QRPTable: the library's table, rebuilt when the
// library changed (names split as the library splits them, every prefix of
// 3 bytes or more, and the URNs).
func (n *Node) qrpTable() *ultrapeer.Table {
	if n.Library == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	v := n.Library.Version()
	if n.table != nil && n.tableOf == v {
		return n.table
	}
	files := n.Library.Files()
	names := make([][]string, len(files))
	var urns []protocol.SHA1
	for i, f := range files {
		names[i] = share.Keywords(f.Name)
		if !f.SHA1.IsZero() {
			urns = append(urns, f.SHA1)
		}
	}
	n.table, n.tableOf = ultrapeer.BuildTable(qrpBits, names, urns), v
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

// answer is Hooks.Answer: the library's matches as QueryHit records, with
// the URN in the form the query asked for.
func (n *Node) answer(q *protocol.Query, h protocol.Header) []protocol.Result {
	if n.Library == nil {
		return nil
	}
	files := n.Library.Match(q)
	if len(files) == 0 {
		return nil
	}
	ggepH := q.Flags.Has(protocol.QueryFlagMark) && q.Flags.Has(protocol.QueryFlagGGEPH)
	out := make([]protocol.Result, 0, len(files))
	for _, f := range files {
		r := protocol.Result{Index: f.Index, Name: []byte(f.Name)}
		var extra protocol.GGEP
		if f.Size >= protocol.LargeFileSize {
			r.Size = protocol.LargeFileSize
			extra = protocol.GGEP{{ID: "LF", Data: protocol.AppendVarint(nil, uint64(f.Size))}}
		} else {
			r.Size = uint32(f.Size)
		}
		if !f.SHA1.IsZero() {
			r.Extensions = protocol.ResultExtensions(f.SHA1, ggepH, extra)
		} else if extra != nil {
			r.Extensions = protocol.ExtensionArea{protocol.GGEPItem(extra)}
		}
		out = append(out, r)
	}
	return out
}

func (n *Node) shareStats() (uint32, uint32) {
	if n.Library == nil {
		return 0, 0
	}
	return n.Library.Stats()
}
