package routing

import (
	"strings"
	"sync"
	"testing"
)

func TestCountersCountVerdict(t *testing.T) {
	var c Counters
	for _, v := range []Verdict{Accept, DropTTLZero, DropHops255, DropHops255, DropHardLimit, DropHardLimit, DropHardLimit} {
		c.CountVerdict(v)
	}
	s := c.Snapshot()
	if s.DropTTLZero != 1 || s.DropHops255 != 2 || s.DropHardLimit != 3 {
		t.Fatalf("Snapshot = %+v", s)
	}
	if s.Dropped() != 6 {
		t.Fatalf("Dropped = %d, want 6 (Accept is not a drop)", s.Dropped())
	}
}

func TestCountersSnapshotUnderConcurrentUpdates(t *testing.T) {
	var c Counters
	var wg sync.WaitGroup
	const workers, each = 4, 1000
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				c.Received.Add(1)
				c.NoRoute.Add(1)
				_ = c.Snapshot()
			}
		}()
	}
	wg.Wait()
	s := c.Snapshot()
	if s.Received != workers*each || s.NoRoute != workers*each {
		t.Fatalf("Snapshot = %+v, want %d received and no-route", s, workers*each)
	}
	if !strings.Contains(s.String(), "no-route=4000") || !strings.Contains(s.String(), "rx=4000") {
		t.Fatalf("String = %q", s.String())
	}
}

func TestStatsDroppedSumsEveryDropCounter(t *testing.T) {
	s := Stats{Received: 100, Routed: 50, Handled: 7, DupsHigherTTL: 3, AbuseDisconnect: 1,
		Duplicates: 1, NoRoute: 2, RouteLost: 4, Expired: 8, DropTTLZero: 16, DropHops255: 32,
		DropHardLimit: 64, DropBadType: 128, DropOther: 256}
	if got := s.Dropped(); got != 511 {
		t.Fatalf("Dropped = %d, want 511", got)
	}
}
