package protocol

// Gnutella over UDP (docs/protocol.md, "UDP"): each datagram carries exactly
// one descriptor, header and payload, with the header's length equal to
// what follows it. gtk-gnutella drops a datagram whose length disagrees
// with its header (udp.c udp_is_valid_gnet_split).

// DecodeDatagram checks that b holds exactly one descriptor within the caps
// l (the zero Limits stands for DefaultLimits) and returns its header and
// payload; the payload aliases b. It allocates nothing.
func DecodeDatagram(b []byte, l Limits) (Header, []byte, error) {
	if l == (Limits{}) {
		l = DefaultLimits()
	}
	h, err := ParseHeader(b)
	if err != nil {
		return h, nil, err
	}
	if h.Length > MaxPayloadLength {
		return h, nil, errAt("datagram", 19, ErrTooLarge,
			"%v payload length 0x%08x has bits above 0xFFFF", h.Type, h.Length)
	}
	if limit := l.For(h.Type); h.Length > limit {
		return h, nil, errAt("datagram", 19, ErrTooLarge,
			"%v payload of %d bytes is over the limit of %d", h.Type, h.Length, limit)
	}
	rest := len(b) - HeaderLen
	switch {
	case int(h.Length) > rest:
		return h, nil, errAt("datagram", len(b), ErrTruncated,
			"header says %d payload bytes, the datagram holds %d", h.Length, rest)
	case int(h.Length) < rest:
		return h, nil, errAt("datagram", HeaderLen+int(h.Length), ErrMalformed,
			"%d bytes after the %d-byte %v payload", rest-int(h.Length), h.Length, h.Type)
	}
	return h, b[HeaderLen:], nil
}
