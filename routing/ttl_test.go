package routing

import (
	"bytes"
	"os"
	"testing"

	"gnutella/protocol"
)

func hdr(ttl, hops uint8) protocol.Header {
	return protocol.Header{ID: guidN(1), Type: protocol.TypeQuery, TTL: ttl, Hops: hops, Length: 5}
}

func TestDefaultTTLPolicyIsGtkGnutellas(t *testing.T) {
	if p := DefaultTTLPolicy(); p.MaxTTL != 4 || p.HardLimit != 15 {
		t.Fatalf("DefaultTTLPolicy = %+v, want {4 15}", p)
	}
}

func TestTTLPolicyCheck(t *testing.T) {
	p := DefaultTTLPolicy()
	tests := []struct {
		ttl, hops uint8
		want      Verdict
	}{
		{1, 0, Accept},
		{4, 0, Accept},
		{7, 0, Accept}, // over MaxTTL is clamped when relayed, not dropped
		{15, 0, Accept},
		{10, 5, Accept}, // exactly at the hard limit
		{11, 5, DropHardLimit},
		{16, 0, DropHardLimit},
		{1, 15, DropHardLimit},
		{0, 15, DropTTLZero}, // at the limit, TTL 0
		{0, 0, DropTTLZero},
		{0, 3, DropTTLZero},
		{255, 255, DropHardLimit}, // gtk checks the hard limit first
		{0, 255, DropHardLimit},
	}
	for _, tc := range tests {
		h := hdr(tc.ttl, tc.hops)
		if got := p.Check(&h); got != tc.want {
			t.Errorf("Check(ttl=%d hops=%d) = %v, want %v", tc.ttl, tc.hops, got, tc.want)
		}
	}
	// With the hard limit out of the way, hops 255 is caught on its own.
	open := TTLPolicy{MaxTTL: 4, HardLimit: 255}
	for _, tc := range []struct {
		ttl, hops uint8
		want      Verdict
	}{{0, 255, DropHops255}, {0, 254, DropTTLZero}, {1, 254, Accept}} {
		h := hdr(tc.ttl, tc.hops)
		if got := open.Check(&h); got != tc.want {
			t.Errorf("HardLimit 255: Check(ttl=%d hops=%d) = %v, want %v", tc.ttl, tc.hops, got, tc.want)
		}
	}
}

func TestTTLPolicyCheckReplyIgnoresHardLimit(t *testing.T) {
	p := DefaultTTLPolicy()
	tests := []struct {
		ttl, hops uint8
		want      Verdict
	}{
		{20, 3, Accept},
		{255, 0, Accept},
		{0, 2, DropTTLZero},
		{3, 255, DropHops255},
	}
	for _, tc := range tests {
		h := hdr(tc.ttl, tc.hops)
		if got := p.CheckReply(&h); got != tc.want {
			t.Errorf("CheckReply(ttl=%d hops=%d) = %v, want %v", tc.ttl, tc.hops, got, tc.want)
		}
	}
}

func TestTTLPolicyForwardClamps(t *testing.T) {
	type row struct {
		ttl, hops       uint8
		outTTL, outHops uint8
		ok              bool
	}
	tests := []struct {
		name string
		p    TTLPolicy
		rows []row
	}{
		{"gtk max_ttl 4", DefaultTTLPolicy(), []row{
			{2, 0, 1, 1, true},
			{3, 0, 2, 1, true},
			{4, 0, 3, 1, true},
			{7, 0, 3, 1, true}, // clamped to 4 first
			{15, 0, 3, 1, true},
			{3, 1, 2, 2, true}, // hops+TTL = 4: untouched
			{4, 1, 2, 2, true}, // 5 > 4: TTL = 4-1 = 3
			{2, 2, 1, 3, true},
			{3, 2, 1, 3, true},  // TTL = 4-2 = 2
			{2, 3, 0, 0, false}, // TTL = max(4-3, 1) = 1: expires here
			{5, 5, 0, 0, false}, // TTL = max(-1, 1) = 1
			{1, 0, 0, 0, false}, // new TTL would be 0
			{1, 3, 0, 0, false},
			{0, 0, 0, 0, false},
			{3, 255, 0, 0, false},
		}},
		{"0.4-style max_ttl 7", TTLPolicy{MaxTTL: 7, HardLimit: 15}, []row{
			{7, 0, 6, 1, true},
			{10, 0, 6, 1, true},
			{3, 3, 2, 4, true},
			{5, 3, 3, 4, true}, // 8 > 7: TTL = 4
			{1, 6, 0, 0, false},
			{2, 6, 0, 0, false}, // 8 > 7: TTL = 1
			{2, 5, 1, 6, true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range tc.rows {
				in := hdr(r.ttl, r.hops)
				out, ok := tc.p.Forward(in)
				if ok != r.ok {
					t.Fatalf("Forward(ttl=%d hops=%d) ok = %v, want %v", r.ttl, r.hops, ok, r.ok)
				}
				if !ok {
					if out != in {
						t.Fatalf("Forward(ttl=%d hops=%d) not ok but changed the header: %+v", r.ttl, r.hops, out)
					}
					continue
				}
				if out.TTL != r.outTTL || out.Hops != r.outHops {
					t.Fatalf("Forward(ttl=%d hops=%d) = ttl %d hops %d, want %d %d",
						r.ttl, r.hops, out.TTL, out.Hops, r.outTTL, r.outHops)
				}
				if out.ID != in.ID || out.Type != in.Type || out.Length != in.Length {
					t.Fatalf("Forward changed fields other than TTL and hops: %+v", out)
				}
			}
		})
	}
}

// TestTTLPolicyForwardInvariants checks every TTL/hops pair against the rule
// stated in docs/protocol.md §3.1 and §3.3: a relayed message has TTL >= 1, hops+1, and never
// more reach than MaxTTL allows (or than it had).
func TestTTLPolicyForwardInvariants(t *testing.T) {
	for _, p := range []TTLPolicy{DefaultTTLPolicy(), {MaxTTL: 7, HardLimit: 15}, {MaxTTL: 0, HardLimit: 15}} {
		for ttl := range 256 {
			for hops := range 256 {
				in := hdr(uint8(ttl), uint8(hops))
				out, ok := p.Forward(in)
				eff := ttl
				if hops+ttl > int(p.MaxTTL) {
					eff = max(int(p.MaxTTL)-hops, 1)
				}
				want := ttl > 0 && hops < 255 && eff > 1
				if ok != want {
					t.Fatalf("%+v ttl=%d hops=%d: ok = %v, want %v", p, ttl, hops, ok, want)
				}
				if int(p.ForwardTTL(in)) != eff && ttl > 0 {
					t.Fatalf("%+v ttl=%d hops=%d: ForwardTTL = %d, want %d", p, ttl, hops, p.ForwardTTL(in), eff)
				}
				if !ok {
					continue
				}
				if out.TTL == 0 || int(out.Hops) != hops+1 || int(out.TTL) != eff-1 || out.TTL >= uint8(ttl) {
					t.Fatalf("%+v ttl=%d hops=%d: out ttl=%d hops=%d", p, ttl, hops, out.TTL, out.Hops)
				}
				if int(out.TTL)+int(out.Hops) > max(int(p.MaxTTL), hops+2) {
					t.Fatalf("%+v ttl=%d hops=%d: out reach %d over MaxTTL", p, ttl, hops, int(out.TTL)+int(out.Hops))
				}
			}
		}
	}
}

func TestTTLPolicyForwardReply(t *testing.T) {
	p := DefaultTTLPolicy()
	tests := []struct {
		ttl, hops       uint8
		toLeaf          bool
		outTTL, outHops uint8
		ok              bool
	}{
		{5, 1, false, 4, 2, true},
		{16, 0, false, 15, 1, true},  // at HardLimit+1: kept
		{20, 3, false, 15, 4, true},  // trimmed to 16, never dropped
		{255, 3, false, 15, 4, true}, // trimmed
		{2, 3, false, 1, 4, true},
		{1, 3, false, 0, 0, false}, // expires here
		{1, 3, true, 1, 4, true},   // bumped to 2 for a leaf
		{0, 3, true, 1, 4, true},
		{0, 3, false, 0, 0, false},
		{5, 255, true, 0, 0, false},
	}
	for _, tc := range tests {
		out, ok := p.ForwardReply(hdr(tc.ttl, tc.hops), tc.toLeaf)
		if ok != tc.ok || (ok && (out.TTL != tc.outTTL || out.Hops != tc.outHops)) {
			t.Errorf("ForwardReply(ttl=%d hops=%d leaf=%v) = ttl %d hops %d %v, want %d %d %v",
				tc.ttl, tc.hops, tc.toLeaf, out.TTL, out.Hops, ok, tc.outTTL, tc.outHops, tc.ok)
		}
	}
}

func TestTTLPolicyReplyTTL(t *testing.T) {
	tests := []struct {
		p    TTLPolicy
		hops uint8
		want uint8
	}{
		{DefaultTTLPolicy(), 0, 6}, // hops after our increment 1, + 5
		{DefaultTTLPolicy(), 1, 7},
		{DefaultTTLPolicy(), 3, 9},
		{DefaultTTLPolicy(), 9, 15},
		{DefaultTTLPolicy(), 10, 15}, // trimmed to the hard limit
		{DefaultTTLPolicy(), 255, 15},
		{TTLPolicy{MaxTTL: 4, HardLimit: 7}, 0, 6},
		{TTLPolicy{MaxTTL: 4, HardLimit: 7}, 1, 7},
		{TTLPolicy{MaxTTL: 4, HardLimit: 7}, 2, 7},
		{TTLPolicy{MaxTTL: 4, HardLimit: 0}, 2, 1}, // never 0
	}
	for _, tc := range tests {
		if got := tc.p.ReplyTTL(tc.hops); got != tc.want {
			t.Errorf("%+v ReplyTTL(%d) = %d, want %d", tc.p, tc.hops, got, tc.want)
		}
	}
}

func TestTTLPolicyPongTTL(t *testing.T) {
	tests := []struct {
		p    TTLPolicy
		hops uint8
		want uint8
	}{
		{DefaultTTLPolicy(), 0, 1},
		{DefaultTTLPolicy(), 2, 3},
		{DefaultTTLPolicy(), 3, 4},
		{DefaultTTLPolicy(), 4, 4},
		{DefaultTTLPolicy(), 255, 4},
		{TTLPolicy{MaxTTL: 7, HardLimit: 15}, 6, 7},
		{TTLPolicy{MaxTTL: 7, HardLimit: 15}, 7, 7},
		{TTLPolicy{MaxTTL: 0, HardLimit: 15}, 3, 1}, // never 0
	}
	for _, tc := range tests {
		if got := tc.p.PongTTL(tc.hops); got != tc.want {
			t.Errorf("%+v PongTTL(%d) = %d, want %d", tc.p, tc.hops, got, tc.want)
		}
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[Verdict]string{
		Accept: "accept", DropTTLZero: "drop: TTL 0", DropHops255: "drop: hops 255",
		DropHardLimit: "drop: hard TTL limit", Verdict(9): "Verdict(9)",
	} {
		if got := v.String(); got != want {
			t.Errorf("Verdict(%d).String() = %q, want %q", uint8(v), got, want)
		}
	}
}

// recordedHeaders returns the descriptor headers of a gtk-gnutella recording,
// skipping its handshake blocks.
func recordedHeaders(t *testing.T, name string, blocks int) []protocol.Header {
	t.Helper()
	b, err := os.ReadFile("../protocol/testdata/gtk-gnutella/" + name)
	if err != nil {
		t.Fatal(err)
	}
	for range blocks {
		i := bytes.Index(b, []byte("\r\n\r\n"))
		if i < 0 {
			t.Fatalf("%s: handshake block not found", name)
		}
		b = b[i+4:]
	}
	var hs []protocol.Header
	for len(b) > 0 {
		h, err := protocol.ParseHeader(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if int(h.Length) > len(b)-protocol.HeaderLen {
			t.Fatalf("%s: truncated descriptor %+v", name, h)
		}
		hs = append(hs, h)
		b = b[protocol.HeaderLen+int(h.Length):]
	}
	return hs
}

// TestRecordedGtkGnutellaTrafficPassesTheRules feeds every descriptor gtk-
// gnutella 1.2.3 sent through the arrival checks: its traffic must be
// accepted, the dup cache must see each (GUID, Type) key the second time the
// stream is replayed, and relaying must keep within MaxTTL.
func TestRecordedGtkGnutellaTrafficPassesTheRules(t *testing.T) {
	p := DefaultTTLPolicy()
	for _, f := range []struct {
		name   string
		blocks int
	}{
		{"leaf-to-ultrapeer.bin", 2},
		{"ultrapeer-to-leaf.bin", 1},
		{"ultrapeer-to-other-leaf-1.bin", 1},
		{"ultrapeer-to-other-leaf-2.bin", 1},
	} {
		t.Run(f.name, func(t *testing.T) {
			hs := recordedHeaders(t, f.name, f.blocks)
			if len(hs) == 0 {
				t.Fatal("no descriptors found")
			}
			t.Logf("%d descriptors", len(hs))
			d := NewDupCache(1000)
			for _, h := range hs {
				v := p.Check(&h)
				if h.Type == protocol.TypePong || h.Type == protocol.TypeQueryHit {
					v = p.CheckReply(&h)
				}
				if v != Accept {
					t.Errorf("%v ttl=%d hops=%d: %v", h.Type, h.TTL, h.Hops, v)
				}
				d.Check(h.ID, h.Type, h.TTL)
				if out, ok := p.Forward(h); ok && int(out.TTL)+int(out.Hops) > int(p.MaxTTL) {
					t.Errorf("%v relayed with ttl=%d hops=%d over MaxTTL", h.Type, out.TTL, out.Hops)
				}
			}
			for _, h := range hs {
				if dup, _ := d.Check(h.ID, h.Type, h.TTL); !dup {
					t.Errorf("%v %v not a duplicate on replay", h.Type, h.ID)
				}
			}
		})
	}
}
