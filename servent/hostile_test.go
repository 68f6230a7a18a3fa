package servent

import (
	"bytes"
	"net/netip"
	"testing"

	"gnutella/protocol"
)

// GGEP inflate bombs (hostile.go) over real TCP: the bombing link is closed
// with Bye 400 and reported, an unrelated link carries on, a copy of a bomb
// is dropped before it is decoded, and a bomb that is only relayed through
// us costs nothing.

// bombQuery is a 197-byte Query whose two deflated GGEP blocks inflate to
// 65,000 bytes each (the previous tester's CPU amplifier).
func bombQuery(t *testing.T) []byte {
	t.Helper()
	q := protocol.NewQuery("kangaroo", protocol.QueryFlagMark)
	for _, id := range []string{"Z1", "Z2"} {
		q.Extensions = append(q.Extensions, protocol.GGEPItem(protocol.GGEP{{ID: id, Data: make([]byte, 65000), Deflate: true}}))
	}
	b, err := q.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > queryForwardSize {
		t.Fatalf("bomb of %d bytes would be dropped for its size alone", len(b))
	}
	return b
}

// bombHit is a QueryHit of 10 records whose deflated GGEP each inflates to
// 60,000 bytes.
func bombHit(t *testing.T) []byte {
	t.Helper()
	res := make([]protocol.Result, 10)
	for i := range res {
		res[i] = protocol.Result{Index: uint32(i), Size: 100, Name: []byte("kangaroo.mp3"),
			Extensions: protocol.ExtensionArea{protocol.GGEPItem(protocol.GGEP{{ID: "Z", Data: make([]byte, 60000), Deflate: true}})}}
	}
	b, err := protocol.NewQueryHit([4]byte{192, 0, 2, 1}, 6346, 100, res, protocol.HitTrailer{Vendor: protocol.VendorGTKG}, protocol.NewGUID()).AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hostileBed is a bed whose servent under test reports hostile peers on a
// channel.
func hostileBed(t *testing.T) (*bed, chan netip.Addr) {
	hostile := make(chan netip.Addr, 8)
	b := newBed(t, func(c *Config) {
		c.OnHostile = func(addr netip.Addr, reason string) { hostile <- addr }
	})
	return b, hostile
}

func TestGGEPBombQueryDropsItsLink(t *testing.T) {
	b, hostile := hostileBed(t)
	r := b.peer(t)
	r.sync()
	r.send(protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypeQuery, TTL: 3}, bombQuery(t))
	bye := r.expectBye(protocol.ByeMessageTooLarge)
	t.Logf("bomb answered with %v", bye)
	select {
	case a := <-hostile:
		if want := netip.MustParseAddr("127.0.0.1"); a != want {
			t.Errorf("OnHostile got %v, want %v", a, want)
		}
	default:
		t.Error("OnHostile was not called before the link closed")
	}
	st := b.s.Stats()
	if st.DropInflateBomb != 1 || st.AbuseDisconnect != 1 {
		t.Errorf("stats %v: want one inflate bomb and one abuse Bye", st)
	}
	b.linkAlive(t)
}

func TestDuplicateGGEPBombIsDroppedBeforeDecoding(t *testing.T) {
	b, hostile := hostileBed(t)
	first, second := b.peer(t), b.peer(t)
	first.sync()
	second.sync()
	id, bomb := protocol.NewGUID(), bombQuery(t)
	first.send(protocol.Header{ID: id, Type: protocol.TypeQuery, TTL: 3}, bomb)
	first.expectBye(protocol.ByeMessageTooLarge)
	<-hostile
	dups := b.s.Stats().Duplicates
	// The same bomb again from another link: a duplicate, never decoded,
	// so neither counted as a bomb nor punished.
	second.send(protocol.Header{ID: id, Type: protocol.TypeQuery, TTL: 3}, bomb)
	second.sync()
	st := b.s.Stats()
	if st.DropInflateBomb != 1 || st.Duplicates != dups+1 {
		t.Errorf("stats %v: want the copy counted as a duplicate (was %d) and still one bomb", st, dups)
	}
	select {
	case a := <-hostile:
		t.Errorf("the duplicate's sender %v was reported hostile", a)
	default:
	}
	b.linkAlive(t)
}

// A bomb that a neighbour relays (hops > 0) is dropped, but the neighbour,
// which may have relayed it unknowingly, keeps its link.
func TestRelayedGGEPBombIsDroppedOnly(t *testing.T) {
	b, hostile := hostileBed(t)
	r := b.peer(t)
	r.sync()
	routed := b.s.Stats().Routed
	r.send(protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypeQuery, TTL: 3, Hops: 2}, bombQuery(t))
	r.sync()
	st := b.s.Stats()
	if st.DropInflateBomb != 1 || st.AbuseDisconnect != 0 || st.Routed != routed {
		t.Errorf("stats %v: want one bomb dropped, nothing routed (was %d), nobody cut off", st, routed)
	}
	select {
	case a := <-hostile:
		t.Errorf("relaying neighbour %v reported hostile", a)
	default:
	}
}

func TestGGEPBombHitForOurSearchDropsItsLink(t *testing.T) {
	b, hostile := hostileBed(t)
	r := b.peer(t)
	r.sync()
	id := protocol.NewGUID()
	if n := b.s.OriginateQuery(id, protocol.NewQuery("kangaroo", 0), 2, []*Link{r.linkOf(b.s)}); n != 1 {
		t.Fatalf("query queued on %d links", n)
	}
	r.send(protocol.Header{ID: id, Type: protocol.TypeQueryHit, TTL: 3}, bombHit(t))
	r.expectBye(protocol.ByeMessageTooLarge)
	if a := <-hostile; !a.IsLoopback() {
		t.Errorf("OnHostile got %v", a)
	}
	if st := b.s.Stats(); st.DropInflateBomb != 1 {
		t.Errorf("stats %v: want one inflate bomb", st)
	}
	b.linkAlive(t)
}

// A bomb hit for someone else's query is routed back as bytes: we never
// decode it, so it is neither refused nor punished here.
func TestGGEPBombHitRoutedWithoutDecoding(t *testing.T) {
	b, hostile := hostileBed(t)
	asker, responder := b.peer(t), b.peer(t)
	asker.sync()
	responder.sync()
	id := protocol.NewGUID()
	asker.sendQuery(id, 2, 0, "kangaroo")
	asker.sync()
	hit := bombHit(t)
	responder.send(protocol.Header{ID: id, Type: protocol.TypeQueryHit, TTL: 3}, hit)
	responder.sync()
	for {
		h, p := asker.next()
		if h.Type == protocol.TypeQueryHit && h.ID == id {
			if len(p) != len(hit) {
				t.Errorf("routed hit of %d bytes, sent %d", len(p), len(hit))
			}
			break
		}
	}
	if st := b.s.Stats(); st.DropInflateBomb != 0 || st.AbuseDisconnect != 0 {
		t.Errorf("stats %v: a routed hit was decoded or punished", st)
	}
	select {
	case a := <-hostile:
		t.Errorf("%v reported hostile for a hit we only routed", a)
	default:
	}
}

// BenchmarkQueryPlain and BenchmarkQueryBomb: one Query handled by the
// router from one link with three others, the plain one routed to them,
// the bomb refused. Both are about 200 bytes with the same layout: two
// GGEP blocks, plain values in one, deflated ones inflating to 65,000
// bytes each in the other. The bomb comes relayed (hops 1) so that its
// link stays up and every iteration pays for the decode.
func BenchmarkQueryPlain(b *testing.B) { benchHandleQuery(b, false) }
func BenchmarkQueryBomb(b *testing.B)  { benchHandleQuery(b, true) }

func benchHandleQuery(b *testing.B, bomb bool) {
	s, links := benchLinks(b, 4)
	q := protocol.NewQuery("kangaroo", protocol.QueryFlagMark)
	for _, id := range []string{"Z1", "Z2"} {
		e := protocol.Extension{ID: id, Data: make([]byte, 65000), Deflate: true}
		if !bomb {
			e = protocol.Extension{ID: id, Data: bytes.Repeat([]byte{'a'}, 82)}
		}
		q.Extensions = append(q.Extensions, protocol.GGEPItem(protocol.GGEP{e}))
	}
	payload, err := q.AppendTo(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(payload)), "payload-bytes")
	src := links[0]
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		id := protocol.NewGUID()
		s.handle(src, protocol.Header{ID: id, Type: protocol.TypeQuery, TTL: 3, Hops: 1, Length: uint32(len(payload))}, payload)
		if i&31 == 0 {
			for _, l := range links {
				for {
					if _, ok := l.q.pop(); !ok {
						break
					}
				}
			}
		}
	}
	st := s.Stats()
	if bomb != (st.DropInflateBomb > 0) || bomb == (st.Routed > 0) {
		b.Fatalf("bomb %v: %v", bomb, st)
	}
}
