package protocol

// PLACEHOLDER until the real decoder lands (owned by a helper).

type QueryHit struct{ Raw }

func DecodeQueryHit(b []byte) (*QueryHit, error) {
	return &QueryHit{Raw{Kind: TypeQueryHit, Data: b}}, nil
}
