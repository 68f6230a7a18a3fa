package protocol

// PLACEHOLDER until the real decoder lands (owned by a helper).

type Pong struct{ Raw }

func DecodePong(b []byte) (*Pong, error) { return &Pong{Raw{Kind: TypePong, Data: b}}, nil }
