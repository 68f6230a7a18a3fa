package servent

import (
	"gnutella/protocol"
)

// The vendor messages we understand and announce in Messages-Supported.
var ourVendorMessages = []protocol.VendorMessageID{
	protocol.HopsFlowID,
	protocol.TCPConnectBackID,
	protocol.QueryStatusRequestID,
	protocol.QueryStatusResponseID,
	protocol.PushProxyRequestID,
	protocol.PushProxyAckID,
	{Vendor: protocol.VendorLIME, Selector: 11, Version: 3}, // OOB ack (oob.go), v2 and v3
	{Vendor: protocol.VendorLIME, Selector: 12, Version: 3}, // OOB reply number, v1 to v3
	protocol.OOBProxyVetoID,                                 // a leaf's "do not OOB-proxy my queries" (oobproxy.go)
}

func supportedVendorMessages() *protocol.Vendor {
	return protocol.NewMessagesSupported(ourVendorMessages)
}

// handleVendor is the one dispatch of vendor messages: each one we
// understand goes to the file of its feature.
func (r *router) handleVendor(l *Link, h protocol.Header, payload []byte) {
	r.trace(l, h, false)
	if h.Hops != 0 || h.TTL > 1 {
		r.stats.DropOther.Add(1) // vendor messages are never routed (docs/protocol.md §1.6)
		return
	}
	v, err := protocol.DecodeVendor(h.Type, payload)
	if err != nil {
		r.stats.DropOther.Add(1)
		return
	}
	r.stats.Handled.Add(1)
	switch {
	case v.Is(protocol.MessagesSupportedID):
		if ids, err := v.MessagesSupported(); err == nil {
			l.vendorIDs.Store(&ids)
		}
	case v.Is(protocol.HopsFlowID):
		l.receiveHopsFlow(v)
	case v.Is(protocol.QueryStatusRequestID), v.Is(protocol.QueryStatusResponseID):
		r.s.queryStatus(l, h, v) // dq.go
	case v.Is(protocol.TCPConnectBackID):
		r.s.connectBackRequest(l, v) // connectback.go
	case v.Is(protocol.PushProxyRequestID):
		r.s.pushProxyRequest(l, h, v) // pushproxy.go
	case v.Is(protocol.PushProxyAckID):
		r.s.pushProxyAck(l, h, v)
	case v.Is(protocol.OOBProxyVetoID):
		r.s.oobProxyVeto(l, v) // oobproxy.go
	}
}

// Supports reports whether the peer announced the vendor message id.
func (l *Link) Supports(id protocol.VendorMessageID) bool {
	p := l.vendorIDs.Load()
	if p == nil {
		return false
	}
	for _, x := range *p {
		if x.Vendor == id.Vendor && x.Selector == id.Selector {
			return true
		}
	}
	return false
}
