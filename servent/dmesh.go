package servent

import (
	"net/netip"

	"gnutella/protocol"
	"gnutella/transfer"
)

// The download mesh of a Node (docs/protocol.md "The download mesh"): every
// QueryHit that comes back for one of our own searches feeds Node.Mesh with
// its sources by URN, so that hits for the same file arriving after a
// download started still reach that download, and the upload and download
// sides pass the locations on as X-Alt. The mesh never dials anything: its
// locations are used only by downloads the user started.

// meshHit gives the mesh the sources of a QueryHit for one of our searches:
// for each result that carries a urn:sha1, the responder and the record's
// GGEP "ALT" locations. It runs on a link's reader and
// takes only the mesh's lock.
func (n *Node) meshHit(hit *protocol.QueryHit) {
	if n.Mesh == nil {
		return
	}
	flags, valid := hit.Flags()
	var proxies []netip.AddrPort
	for i := range hit.Results {
		r := &hit.Results[i]
		u := r.URNs()
		if len(u) == 0 {
			continue
		}
		if proxies == nil {
			proxies = hit.PushProxies()
		}
		n.Mesh.Add(u[0], transfer.Source{Addr: hit.AddrPort(), Index: r.Index, Name: string(r.Name),
			ServentID: hit.ServentID, Push: valid.Push && flags.Push, PushProxies: proxies})
		n.Mesh.AddAlt(u[0], r.AltLocs())
	}
}

// advertise is the mesh's MeshConfig.Advertise: while we share what we
// have of a file (pfsp.go), our address goes first in the X-Alt of our
// download requests for it, so that the source tells the file's other
// downloaders about us (partial file sharing); firewalled, our servent ID
// and push proxies go first in X-Falt instead, as gtk-gnutella does, when
// we have proxies.
func (n *Node) advertise(sha1 protocol.SHA1) (transfer.AltLoc, bool) {
	if n.Servent == nil {
		return transfer.AltLoc{}, false
	}
	if _, ok := n.sharedPartial(sha1); !ok {
		return transfer.AltLoc{}, false
	}
	if n.firewalled() {
		proxies := n.ourPushProxies()
		if len(proxies) == 0 {
			return transfer.AltLoc{}, false
		}
		return transfer.AltLoc{GUID: n.ID(), Proxies: proxies}, true
	}
	return transfer.AltLoc{Addr: n.Addr()}, true
}
