package routing

import (
	"strconv"
	"testing"

	"gnutella/protocol"
)

func TestLinkAbuseDuplicateThresholds(t *testing.T) {
	tests := []struct {
		name   string
		rx     int
		kickAt uint64 // the duplicate that returns 401
		reason string
	}{
		// More than 5 dups are needed whatever the ratio.
		{"no traffic counted", 0, 6, "Sent 6 dups (0.0% of RX)"},
		{"100 received: the 6th dup", 100, 6, "Sent 6 dups (6.0% of RX)"},
		{"333 received: 1.5% = 4.995, still the 6th", 333, 6, "Sent 6 dups (1.8% of RX)"},
		{"400 received: 1.5% = 6, so the 7th", 400, 7, "Sent 7 dups (1.8% of RX)"},
		{"1000 received: 1.5% = 15, so the 16th", 1000, 16, "Sent 16 dups (1.6% of RX)"},
		{"1066 received: 1.5% = 15.99, the 16th", 1066, 16, "Sent 16 dups (1.5% of RX)"},
		{"1067 received: 1.5% = 16.005, the 17th", 1067, 17, "Sent 17 dups (1.6% of RX)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := NewLinkAbuse(DefaultAbuseLimits())
			for range tc.rx {
				a.Received()
			}
			for n := uint64(1); n <= tc.kickAt; n++ {
				code, reason := a.Duplicate(false)
				if n < tc.kickAt && code != 0 {
					t.Fatalf("dup %d: kicked early with %d %q", n, code, reason)
				}
				if n == tc.kickAt && (code != protocol.ByeTooManyDuplicates || reason != tc.reason) {
					t.Fatalf("dup %d: got %d %q, want 401 %q", n, code, reason, tc.reason)
				}
			}
			if code, _ := a.Duplicate(false); code != protocol.ByeTooManyDuplicates {
				t.Fatal("a further duplicate does not kick again")
			}
		})
	}
}

func TestLinkAbuseHigherTTLDuplicatesAreNotCounted(t *testing.T) {
	a := NewLinkAbuse(DefaultAbuseLimits())
	for range 100 {
		if code, _ := a.Duplicate(true); code != 0 {
			t.Fatalf("higher-TTL duplicate kicked with %d", code)
		}
	}
	if _, dups, _ := a.Counts(); dups != 0 {
		t.Fatalf("higher-TTL duplicates counted: %d", dups)
	}
	for n := 1; n <= 5; n++ {
		if code, _ := a.Duplicate(false); code != 0 {
			t.Fatalf("plain dup %d kicked after higher-TTL ones", n)
		}
	}
}

func TestLinkAbuseInterleavedTrafficKeepsRatio(t *testing.T) {
	// A link whose every 50th message is a same-link duplicate sends 2 %
	// duplicates: over 1.5 %, so it is kicked once it has sent 6.
	a := NewLinkAbuse(DefaultAbuseLimits())
	kicked := 0
	for i := 1; i <= 400 && kicked == 0; i++ {
		a.Received()
		if i%50 == 0 {
			if code, _ := a.Duplicate(false); code == protocol.ByeTooManyDuplicates {
				kicked = i
			}
		}
	}
	if kicked != 300 {
		t.Fatalf("kicked at message %d, want 300 (the 6th duplicate)", kicked)
	}
	// One duplicate per 100 messages (1 %) is tolerated.
	b := NewLinkAbuse(DefaultAbuseLimits())
	for i := 1; i <= 5000; i++ {
		b.Received()
		if i%100 == 0 {
			if code, reason := b.Duplicate(false); code != 0 {
				t.Fatalf("1%% duplicates kicked at message %d: %s", i, reason)
			}
		}
	}
}

func TestLinkAbuseHighTTLThresholds(t *testing.T) {
	type step struct {
		typ  protocol.Type
		hops uint8
		code protocol.ByeCode
	}
	q := protocol.TypeQuery
	ten := func(typ protocol.Type, hops uint8) []step {
		s := make([]step, 10)
		for i := range s {
			s[i] = step{typ, hops, 0}
		}
		return s
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"11th nearby query kicks", append(ten(q, 0), step{q, 0, protocol.ByeHighTTL})},
		{"hops 2 is within the radius", append(ten(q, 2), step{q, 2, protocol.ByeHighTTL})},
		{"hops 3 is outside the radius", append(ten(q, 3), step{q, 3, 0}, step{q, 3, 0}, step{q, 1, protocol.ByeHighTTL})},
		{"other types count but do not kick", append(ten(protocol.TypePush, 0),
			step{protocol.TypePing, 0, 0}, step{protocol.TypePush, 1, 0}, step{q, 0, protocol.ByeHighTTL})},
		{"ten offences are tolerated", ten(q, 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := NewLinkAbuse(DefaultAbuseLimits())
			for i, s := range tc.steps {
				code, reason := a.HighTTL(s.typ, s.hops)
				if code != s.code {
					t.Fatalf("offence %d (%v hops %d): code %d %q, want %d", i+1, s.typ, s.hops, code, reason, s.code)
				}
				if code != 0 && reason != "Relayed "+strconv.Itoa(i+1)+" high TTL (>10) messages" {
					t.Fatalf("reason %q", reason)
				}
			}
			if _, _, n := a.Counts(); n != uint64(len(tc.steps)) {
				t.Fatalf("Counts highTTL = %d, want %d", n, len(tc.steps))
			}
		})
	}
}

func TestLinkAbuseCustomLimits(t *testing.T) {
	a := NewLinkAbuse(AbuseLimits{MinDups: 0, DupRatio: 10000, MaxHighTTL: 0, HighTTLRadius: 0})
	a.Received()
	a.Received()
	// 100 %: dups must exceed the received count.
	if code, _ := a.Duplicate(false); code != 0 {
		t.Fatal("1 dup of 2 received kicked at a 100% ratio")
	}
	if code, _ := a.Duplicate(false); code != 0 {
		t.Fatal("2 dups of 2 received kicked at a 100% ratio")
	}
	if code, _ := a.Duplicate(false); code != protocol.ByeTooManyDuplicates {
		t.Fatal("3 dups of 2 received did not kick")
	}
	if code, _ := a.HighTTL(protocol.TypeQuery, 1); code != 0 {
		t.Fatal("radius 0: a query at hops 1 kicked")
	}
	if code, _ := a.HighTTL(protocol.TypeQuery, 0); code != protocol.ByeHighTTL {
		t.Fatal("MaxHighTTL 0: the first nearby query did not kick")
	}
}
