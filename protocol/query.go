package protocol

// PLACEHOLDER until the real decoder lands (owned by a helper).

type Query struct{ Raw }

func DecodeQuery(b []byte) (*Query, error) { return &Query{Raw{Kind: TypeQuery, Data: b}}, nil }
