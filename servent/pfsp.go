package servent

import (
	"bytes"
	"encoding/binary"
	"os"
	"slices"
	"strings"
	"time"

	"gnutella/protocol"
	"gnutella/share"
	"gnutella/transfer"
)

// Partial file sharing, the query side (docs/protocol.md "Partial file
// sharing"): a file we are downloading, while Node.Partials shares it, is
// answered in our QueryHits like a shared file, marked partial with GGEP
// "PRU", and its URN is in our QRP table, so that other downloaders of the
// same file find us and fetch the ranges we have. The upload server serves
// it by URN (transfer.Server.Partials is the Node).

// partialIndex is the file index of a partial file in our hits. No /get/
// path serves it: it is fetched by URN (/uri-res/N2R), as every servent
// that reads the hit's URN does.
const partialIndex = ^uint32(0)

// maxPartialResults bounds the partial files one query is answered with.
const maxPartialResults = 10

// PartialFile is Node's transfer.Partials, for the upload server: what
// Node.Partials says, read at each call so that a Partials set after NewNode
// is seen.
func (n *Node) PartialFile(sha1 protocol.SHA1) (transfer.PartialFile, bool) {
	if n.Partials == nil {
		return transfer.PartialFile{}, false
	}
	return n.Partials.PartialFile(sha1)
}

// sharedPartial is the partial file of sha1 if it is shared and has bytes
// to serve.
func (n *Node) sharedPartial(sha1 protocol.SHA1) (transfer.PartialFile, bool) {
	if sha1.IsZero() {
		return transfer.PartialFile{}, false
	}
	pf, ok := n.PartialFile(sha1)
	return pf, ok && pf.Have.Covered() > 0
}

// partialURNs lists, sorted, the URNs of the downloads whose partial file
// is shared now: they go into our QRP table.
func (n *Node) partialURNs() []protocol.SHA1 {
	if n.Partials == nil || n.Downloads == nil {
		return nil
	}
	var out []protocol.SHA1
	for _, st := range n.Downloads.List() {
		if _, ok := n.sharedPartial(st.SHA1); ok {
			out = append(out, st.SHA1)
		}
	}
	slices.SortFunc(out, func(a, b protocol.SHA1) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(out)
}

// answerPartials adds to out (the library's results) the shared partial
// files q asks for, at most maxPartialResults: by URN always, and by
// keywords only when q carries GGEP "PR" (the querier takes partial
// results), as gtk-gnutella does, since an older servent would take a
// partial result for a whole file. A URN the library answered is not
// answered again.
func (n *Node) answerPartials(q *protocol.Query, out []protocol.Result) []protocol.Result {
	if n.Partials == nil {
		return out
	}
	answered := make(map[protocol.SHA1]bool)
	for i := range out {
		for _, u := range out[i].URNs() {
			answered[u] = true
		}
	}
	ggepH := q.Flags.Has(protocol.QueryFlagMark) && q.Flags.Has(protocol.QueryFlagGGEPH)
	added := 0
	add := func(sha1 protocol.SHA1, name string) {
		if added == maxPartialResults || answered[sha1] {
			return
		}
		pf, ok := n.sharedPartial(sha1)
		if !ok {
			return
		}
		if pf.Name != "" {
			name = pf.Name
		}
		answered[sha1] = true
		added++
		out = append(out, fileResult(partialIndex, name, pf.Size, sha1, ggepH, protocol.GGEP{{ID: "PRU", Data: pruData(pf)}}))
	}
	for _, u := range q.URNs() {
		add(u, "")
	}
	if n.Downloads == nil || !q.Extensions.GGEP().Has("PR") {
		return out
	}
	words := share.Keywords(string(q.Search))
	if len(words) == 0 {
		return out
	}
	for _, st := range n.Downloads.List() {
		if !st.SHA1.IsZero() && nameMatches(words, share.Keywords(st.Name)) {
			add(st.SHA1, st.Name)
		}
	}
	return out
}

// nameMatches applies the library's rule to a partial file's name: every
// query word is the prefix of one of the name's words.
func nameMatches(query, name []string) bool {
	for _, q := range query {
		if !slices.ContainsFunc(name, func(w string) bool { return strings.HasPrefix(w, q) }) {
			return false
		}
	}
	return true
}

// pruData is the payload of GGEP "PRU" (gtk-gnutella's
// doc/public/GGEP/PRU): when bytes last came for the file, 4 bytes
// big-endian Unix time, then how many bytes we have, as a GGEP varint.
func pruData(pf transfer.PartialFile) []byte {
	at := time.Now()
	if fi, err := os.Stat(pf.Path); err == nil {
		at = fi.ModTime()
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(at.Unix()))
	return protocol.AppendVarint(b, uint64(pf.Have.Covered()))
}
