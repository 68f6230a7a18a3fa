package protocol

// PLACEHOLDER until the real decoder lands (owned by a helper).

type Vendor struct{ Raw }

func DecodeVendor(t Type, b []byte) (*Vendor, error) { return &Vendor{Raw{Kind: t, Data: b}}, nil }
