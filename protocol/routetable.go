package protocol

// PLACEHOLDER until the real decoder lands (owned by a helper).

func DecodeRouteTableUpdate(b []byte) (Payload, error) {
	return &Raw{Kind: TypeRouteTable, Data: b}, nil
}
