package protocol

// PLACEHOLDER until the real decoder lands (owned by a helper).

type Push struct{ Raw }

func DecodePush(b []byte) (*Push, error) { return &Push{Raw{Kind: TypePush, Data: b}}, nil }
