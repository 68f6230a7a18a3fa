package firewall

import (
	"time"
)

// RateLimit is a sliding-window rate limit per key with bounded memory:
// at most perKey events per key within window, at most maxKeys keys. When
// every remembered key is still within its window, new keys are refused
// until entries expire: evicting live entries instead would let a flood of
// events for many keys reset the limit of the one being attacked. It is
// not safe for concurrent use (its owner holds a lock).
type RateLimit[K comparable] struct {
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

func NewRateLimit[K comparable](perKey int, window time.Duration, maxKeys int) *RateLimit[K] {
	return &RateLimit[K]{perKey: perKey, window: window, maxKeys: maxKeys, m: make(map[K]*rateEntry)}
}

// RateVerdict is why RateLimit.allow refused an event.
type RateVerdict uint8

const (
	RateOK      RateVerdict = iota
	RateTooMany             // perKey events of that key within the window
	RateFull                // maxKeys keys within their window: no room for a new one
)

// allow records an event of k at now and returns RateOK, or refuses it
// (not recorded). count is how many events k had within the window.
func (t *RateLimit[K]) Allow(k K, now time.Time) (v RateVerdict, count int) {
	t.maybePrune(now)
	e := t.m[k]
	if e == nil {
		if len(t.m) >= t.maxKeys {
			if now.Sub(t.lastFull) >= time.Second || now.Before(t.lastFull) {
				t.lastFull = now
				t.prune(now)
			}
			if len(t.m) >= t.maxKeys {
				return RateFull, 0
			}
		}
		e = &rateEntry{times: make([]time.Time, 0, t.perKey)}
		t.m[k] = e
	}
	e.expire(now, t.window)
	if len(e.times) >= t.perKey {
		return RateTooMany, len(e.times)
	}
	e.times = append(e.times, now)
	return RateOK, len(e.times)
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
func (t *RateLimit[K]) maybePrune(now time.Time) {
	if now.Before(t.nextPrune) && t.nextPrune.Sub(now) <= t.window {
		return
	}
	t.nextPrune = now.Add(t.window)
	t.prune(now)
}

// prune forgets the keys without an event in the last window.
func (t *RateLimit[K]) prune(now time.Time) {
	for k, e := range t.m {
		e.expire(now, t.window)
		if len(e.times) == 0 {
			delete(t.m, k)
		}
	}
}
