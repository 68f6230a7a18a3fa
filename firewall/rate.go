package firewall

import (
	"time"
)

// rateTable is a sliding-window rate limit per key with bounded memory:
// at most perKey events per key within window, at most maxKeys keys. When
// every remembered key is still within its window, new keys are refused
// until entries expire: evicting live entries instead would let a flood of
// events for many keys reset the limit of the one being attacked. It is
// not safe for concurrent use (its owner holds a lock).
type rateTable[K comparable] struct {
	perKey    int
	window    time.Duration
	maxKeys   int
	m         map[K]*rateEntry
	nextPrune time.Time
	lastFull  time.Time // last prune forced by a full table
}

// rateEntry holds the times of the recent events of one key, oldest
// first, at most perKey of them.
type rateEntry struct {
	times []time.Time
}

func newRateTable[K comparable](perKey int, window time.Duration, maxKeys int) *rateTable[K] {
	return &rateTable[K]{perKey: perKey, window: window, maxKeys: maxKeys, m: make(map[K]*rateEntry)}
}

// rateVerdict is why rateTable.allow refused an event.
type rateVerdict uint8

const (
	rateOK      rateVerdict = iota
	rateTooMany             // perKey events of that key within the window
	rateFull                // maxKeys keys within their window: no room for a new one
)

// allow records an event of k at now and returns rateOK, or refuses it
// (not recorded). count is how many events k had within the window.
func (t *rateTable[K]) allow(k K, now time.Time) (v rateVerdict, count int) {
	t.maybePrune(now)
	e := t.m[k]
	if e == nil {
		if len(t.m) >= t.maxKeys {
			if now.Sub(t.lastFull) >= time.Second || now.Before(t.lastFull) {
				t.lastFull = now
				t.prune(now)
			}
			if len(t.m) >= t.maxKeys {
				return rateFull, 0
			}
		}
		e = &rateEntry{times: make([]time.Time, 0, t.perKey)}
		t.m[k] = e
	}
	e.expire(now, t.window)
	if len(e.times) >= t.perKey {
		return rateTooMany, len(e.times)
	}
	e.times = append(e.times, now)
	return rateOK, len(e.times)
}

// expire drops the times at least window before now.
func (e *rateEntry) expire(now time.Time, window time.Duration) {
	n := 0
	for n < len(e.times) && now.Sub(e.times[n]) >= window {
		n++
	}
	if n > 0 {
		e.times = append(e.times[:0], e.times[n:]...)
	}
}

// maybePrune prunes once per window.
func (t *rateTable[K]) maybePrune(now time.Time) {
	if now.Before(t.nextPrune) && t.nextPrune.Sub(now) <= t.window {
		return
	}
	t.nextPrune = now.Add(t.window)
	t.prune(now)
}

// prune forgets the keys without an event in the last window.
func (t *rateTable[K]) prune(now time.Time) {
	for k, e := range t.m {
		e.expire(now, t.window)
		if len(e.times) == 0 {
			delete(t.m, k)
		}
	}
}
