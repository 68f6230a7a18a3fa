package protocol

// Ping (0x00), docs/protocol.md §1.3. In Gnutella 0.4 the payload is empty; in 0.6 it may
// carry one GGEP block and nothing else. gtk-gnutella drops a ping whose
// extra data is not a pure GGEP block or exceeds MaxGGEPPayload bytes.

// MaxGGEPPayload is the largest GGEP tail gtk-gnutella accepts in a Ping,
// Pong or Push (its MAX_GGEP_PAYLOAD).
const MaxGGEPPayload = 1536

// Ping is the payload of a Ping descriptor.
type Ping struct {
	// GGEP is the optional extension block; nil for a plain 0.4 ping.
	GGEP GGEP
}

// DecodePing decodes a Ping payload: empty, or exactly one GGEP block.
// The GGEP block aliases b (see DecodeGGEP).
func DecodePing(b []byte) (*Ping, error) {
	g, err := decodeGGEPTail("ping", b, 0)
	if err != nil {
		return nil, err
	}
	return &Ping{GGEP: g}, nil
}

// Type implements Payload.
func (p *Ping) Type() Type { return TypePing }

// AppendTo implements Payload. A ping without extensions has an empty
// payload.
func (p *Ping) AppendTo(b []byte) ([]byte, error) {
	return appendGGEPTail("ping", b, p.GGEP)
}

// String summarises the ping.
func (p *Ping) String() string {
	if len(p.GGEP) == 0 {
		return "Ping"
	}
	return "Ping " + p.GGEP.String()
}

// decodeGGEPTail decodes the optional tail after the fixed part of a Ping,
// Pong or Push: b is the tail and base its offset in the payload, so that
// errors report payload offsets. The tail must be empty or exactly one GGEP
// block of at most MaxGGEPPayload bytes, which is what gtk-gnutella accepts.
func decodeGGEPTail(what string, b []byte, base int) (GGEP, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) > MaxGGEPPayload {
		return nil, errAt(what, base+MaxGGEPPayload, ErrTooLarge,
			"%d bytes after the fixed part, limit %d", len(b), MaxGGEPPayload)
	}
	if b[0] != GGEPMagic {
		return nil, errAt(what, base, ErrMalformed,
			"extra data starts with 0x%02x, not a GGEP block", b[0])
	}
	g, n, err := DecodeGGEP(b)
	if err != nil {
		return nil, shiftOffset(err, base)
	}
	if n != len(b) {
		return nil, errAt(what, base+n, ErrMalformed,
			"%d bytes after the GGEP block", len(b)-n)
	}
	return g, nil
}

// appendGGEPTail appends g (nothing when it is empty) and refuses a block
// that decodeGGEPTail would reject as too large.
func appendGGEPTail(what string, b []byte, g GGEP) ([]byte, error) {
	if len(g) == 0 {
		return b, nil
	}
	start := len(b)
	b, err := g.AppendTo(b)
	if err != nil {
		return b[:start], err
	}
	if n := len(b) - start; n > MaxGGEPPayload {
		return b[:start], errAt(what, -1, ErrTooLarge,
			"GGEP block of %d bytes, limit %d", n, MaxGGEPPayload)
	}
	return b, nil
}

// GGEP IDs of pings and pongs sent over UDP (docs/protocol.md, "UDP").
const (
	// GGEPHostsRequest ("SCP") in a ping asks for packed ultrapeer
	// addresses ("IPP") in the pong: the ping of a UDP host cache client.
	GGEPHostsRequest = "SCP"
	// GGEPPackedHosts ("IPP") in a pong: N × 6 bytes of IPv4 and port.
	GGEPPackedHosts = "IPP"
	// GGEPPackedDHTHosts ("DHTIPP"): the same for DHT contacts; asked for
	// by a ping carrying it.
	GGEPPackedDHTHosts = "DHTIPP"
	// GGEPUDPHostCache ("UDPHC") in a pong says its sender is a UDP host
	// cache; its data, if any, is the cache's host name.
	GGEPUDPHostCache = "UDPHC"
	// GGEPGUESS ("GUE") carries the GUESS version; in a ping it asks for
	// GUESS hosts in IPP.
	GGEPGUESS = "GUE"
	// GGEPQueryKey ("QK"): empty in a UDP ping, a request for a GUESS query
	// key; in the pong that answers it and in a GUESS query, the key.
	GGEPQueryKey = "QK"
	// GGEPDeflateUDP ("Z") in a GUESS query: the querier can read deflated
	// hits.
	GGEPDeflateUDP = "Z"
)

// SCP flags (gtk-gnutella's pcache.h): what kind of hosts the pinger wants.
const (
	SCPUltrapeer = 1 << 0 // the pinger is an ultrapeer (wants ultrapeers)
	SCPTLS       = 1 << 1 // the pinger supports TLS
	SCPIPv6      = 1 << 2 // also IPv6 addresses
	SCPNoIPv4    = 1 << 3 // no IPv4 addresses
)

// NewHostsRequest is the ping of a UDP host cache client: GGEP "SCP" with
// its flags byte (SCPUltrapeer when the pinger is an ultrapeer) and the
// pinger's vendor code ("VC"), as gtk-gnutella sends it.
func NewHostsRequest(flags byte, v VendorVersion) *Ping {
	return &Ping{GGEP: GGEP{{ID: GGEPHostsRequest, Data: []byte{flags}}, v.Extension()}}
}

// HostsRequest reports whether the ping asks for packed hosts (GGEP "SCP")
// and with which flags; an SCP without data reads as flags 0.
func (p *Ping) HostsRequest() (flags byte, ok bool) {
	d, ok := p.GGEP.Get(GGEPHostsRequest)
	if ok && len(d) > 0 {
		flags = d[0]
	}
	return flags, ok
}
