package protocol

// PLACEHOLDER until the real decoder lands (owned by a helper).

type Ping struct{ Raw }

func DecodePing(b []byte) (*Ping, error) { return &Ping{Raw{Kind: TypePing, Data: b}}, nil }
