package protocol

// PLACEHOLDER until the real decoder lands (owned by a helper).

type Bye struct{ Raw }

func DecodeBye(b []byte) (*Bye, error) { return &Bye{Raw{Kind: TypeBye, Data: b}}, nil }
