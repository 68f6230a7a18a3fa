package servent

import (
	"testing"

	"gnutella/protocol"
	"gnutella/routing"
)

// A walker is one message per step, so the steps it claims to have left are
// what its sender buys with one query: a walker claiming 65,535 is passed on
// with at most routing.MaxWalkBudget.
func TestWalkerClaimingAHugeBudgetIsCutDown(t *testing.T) {
	s := startServent(t, testConfig())
	from, to := dialRaw(t, s), dialRaw(t, s)
	from.handshake(peerHeaders(protocol.NewGUID(), "X-Random-Walk: 0.1"))
	to.handshake(peerHeaders(protocol.NewGUID(), "X-Random-Walk: 0.1"))
	from.sync()
	to.sync()
	q := routing.WithWalker(protocol.NewQuery("wombat", protocol.QueryFlagMark),
		routing.Walker{Num: 1, Left: 65535, Steps: 1})
	payload, err := q.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	id := protocol.NewGUID()
	from.send(protocol.Header{ID: id, Type: protocol.TypeQuery, TTL: 1}, payload)
	for {
		h, b := to.next()
		if h.Type != protocol.TypeQuery || h.ID != id {
			continue
		}
		fq, err := protocol.DecodeQuery(b)
		if err != nil {
			t.Fatal(err)
		}
		w, ok := routing.WalkerOf(fq)
		if !ok {
			t.Fatal("the walker came out without its GNUT.RW extension")
		}
		if w.Left >= routing.MaxWalkBudget || w.Steps != 2 {
			t.Fatalf("walker passed on with %d steps left, %d taken; want fewer than %d left and 2 taken",
				w.Left, w.Steps, routing.MaxWalkBudget)
		}
		return
	}
}
