package protocol

// Payload is the decoded body of a descriptor. Every payload encodes back to
// the bytes it was decoded from.
type Payload interface {
	// Type is the payload type byte this body travels under.
	Type() Type
	// AppendTo appends the wire encoding of the payload to b.
	AppendTo(b []byte) ([]byte, error)
}

// Message is a whole descriptor.
type Message struct {
	Header  Header
	Payload Payload
}

// AppendTo appends the header and payload to b, setting the header's Type
// and Length from the payload.
func (m *Message) AppendTo(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, make([]byte, HeaderLen)...)
	b, err := m.Payload.AppendTo(b)
	if err != nil {
		return b[:start], err
	}
	h := m.Header
	h.Type = m.Payload.Type()
	h.Length = uint32(len(b) - start - HeaderLen)
	h.Put(b[start:])
	return b, nil
}

// Raw is a payload this package does not interpret (HSEP, RUDP, DHT, any
// unknown type). It can be skipped or relayed as it is.
type Raw struct {
	Kind Type
	Data []byte
}

// Type implements Payload.
func (r *Raw) Type() Type { return r.Kind }

// AppendTo implements Payload.
func (r *Raw) AppendTo(b []byte) ([]byte, error) { return append(b, r.Data...), nil }

// DecodePayload decodes the payload of a descriptor of type t. Unknown types
// become *Raw. The result may alias b.
func DecodePayload(t Type, b []byte) (Payload, error) {
	switch t {
	case TypePing:
		return payloadOrNil(DecodePing(b))
	case TypePong:
		return payloadOrNil(DecodePong(b))
	case TypeBye:
		return payloadOrNil(DecodeBye(b))
	case TypeRouteTable:
		return DecodeRouteTableUpdate(b)
	case TypeVendor, TypeStdVendor:
		return payloadOrNil(DecodeVendor(t, b))
	case TypePush:
		return payloadOrNil(DecodePush(b))
	case TypeQuery:
		return payloadOrNil(DecodeQuery(b))
	case TypeQueryHit:
		return payloadOrNil(DecodeQueryHit(b))
	}
	return &Raw{Kind: t, Data: b}, nil
}

// payloadOrNil keeps a typed nil pointer from becoming a non-nil Payload.
func payloadOrNil[P Payload](p P, err error) (Payload, error) {
	if err != nil {
		return nil, err
	}
	return p, nil
}
