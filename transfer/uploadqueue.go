package transfer

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// The PARQ queue of the upload side (docs/protocol.md §6.2; the X-Queued
// value itself is in parq.go). When no slot is free, a downloader that
// sent X-Queue gets a place and "503 Queued"; it comes back after
// Retry-After (with X-Queued carrying the place's ID, or from the same
// address for the same file) and gets a slot once every eligible place
// before it has been served: slots go in queue order. The times follow
// gtk-gnutella's parq.c, scaled by Server.QueueRetry (30 s by default):
//
//   - Retry-After of place p: QueueRetry + (p-1)*QueueRetry/2, at most
//     maxQueueRetry;
//   - lifetime (how long the place waits for its owner, as announced):
//     Retry-After + 2*QueueRetry (gtk's MIN_LIFE_TIME, 60 s); the place
//     is kept QueueRetry*4/3 (gtk's PARQ_RETRY_SAFETY, 40 s) longer;
//   - a request more than QueueRetry/3 (gtk's PARQ_MIN_POLL, 10 s) before
//     its Retry-After is early: it gets 503 Queued again, and the
//     queueMaxEarly-th early one in a row loses the place.
//
// A place whose address already holds all the slots it may (PerIP) waits
// without blocking the places behind it. Places are bounded in number
// (QueueSize) and per address (QueuePerIP), loopback included, and expire
// when their lifetime passes; nothing runs in the background: expiry is
// checked on each request.

// place is one downloader waiting for a slot.
type place struct {
	id     string
	ip     netip.Addr
	key    string    // the file (its URN, or its path without one)
	retry  time.Time // not before this (less the slack)
	expire time.Time // dropped after this
	early  int       // requests that came too early, less those in time
}

// uploadQueue is the queue's state, guarded by Server.mu.
type uploadQueue struct {
	places []*place // in order: places[0] is position 1
	byID   map[string]*place
	perIP  map[netip.Addr]int
}

func (q *uploadQueue) init() {
	q.byID = make(map[string]*place)
	q.perIP = make(map[netip.Addr]int)
}

func (q *uploadQueue) add(p *place) {
	q.places = append(q.places, p)
	q.byID[p.id] = p
	q.perIP[p.ip]++
}

func (q *uploadQueue) remove(p *place) {
	i := slices.Index(q.places, p)
	if i < 0 {
		return
	}
	q.places = slices.Delete(q.places, i, i+1)
	delete(q.byID, p.id)
	if q.perIP[p.ip]--; q.perIP[p.ip] <= 0 {
		delete(q.perIP, p.ip)
	}
}

// expire drops the places whose owner did not come back in time.
func (q *uploadQueue) expire(now time.Time) {
	for _, p := range slices.Clone(q.places) {
		if now.After(p.expire) {
			q.remove(p)
		}
	}
}

// find is the place of a request: by the ID it sent back (only from the
// address it was given to), else by its address and file.
func (q *uploadQueue) find(ip netip.Addr, key, xqueued string) *place {
	if xqueued != "" {
		if qd, err := ParseQueued(xqueued); err == nil {
			if p := q.byID[qd.ID]; p != nil && p.ip == ip {
				return p
			}
		}
	}
	for _, p := range q.places {
		if p.ip == ip && p.key == key {
			return p
		}
	}
	return nil
}

// position is p's 1-based place in the queue.
func (q *uploadQueue) position(p *place) int {
	return slices.Index(q.places, p) + 1
}

func (s *Server) queueSize() int {
	switch {
	case s.QueueSize == 0:
		return DefaultQueueSize
	case s.QueueSize < 0:
		return 0
	}
	return s.QueueSize
}

func (s *Server) queuePerIP() int {
	if s.QueuePerIP == 0 {
		return DefaultQueuePerIP
	}
	return s.QueuePerIP
}

func (s *Server) queueRetry() time.Duration {
	if s.QueueRetry <= 0 {
		return DefaultQueueRetry
	}
	return s.QueueRetry
}

// queueDelay is the Retry-After of position pos, in whole seconds.
func (s *Server) queueDelay(pos int) time.Duration {
	r := s.queueRetry()
	d := min(r+time.Duration(pos-1)*(r/2), maxQueueRetry)
	return (d + time.Second - 1).Truncate(time.Second)
}

// eligibleAheadLocked counts the places before p (all of them when p is
// nil) whose address may still take a slot: those are served first.
func (s *Server) eligibleAheadLocked(p *place) int {
	n := 0
	for _, o := range s.queue.places {
		if o == p {
			break
		}
		if !s.ipFullLocked(o.ip) {
			n++
		}
	}
	return n
}

// admit decides whether the GET of r for the file key gets an upload
// slot. If it does, it reports true and r's connection holds the slot. If
// not, it has answered (503 Queued with the place, or 503 without one)
// and reports whether the connection stays open. extra are headers every
// answer about this file carries.
func (s *Server) admit(conn net.Conn, r *request, key string, extra []string) (granted, open bool) {
	now := time.Now()
	ip := r.remote.Addr()
	cs := r.cs
	s.mu.Lock()
	if cs.slot && cs.slotKey == key {
		s.mu.Unlock()
		return true, true // the next chunk of the file it is fetching
	}
	s.releaseSlotLocked(cs) // another file: it competes again
	q := &s.queue
	q.expire(now)
	xq := r.h.Get("X-Queued")
	p := q.find(ip, key, xq)
	parq := s.queueSize() > 0 && (r.h.Has("X-Queue") || xq != "")
	slack := s.queueRetry() / 3
	if p != nil {
		if now.Before(p.retry.Add(-slack)) {
			p.early++
			if p.early >= queueMaxEarly {
				q.remove(p)
				s.mu.Unlock()
				s.refused.Add(1)
				s.Logger.Debug().Str("remote", r.remote.String()).Str("id", p.id).Msg("upload queue place lost: requests too early")
				s.refuse(conn, r, 503, "Too Early, Queue Place Lost", false,
					append([]string{"Retry-After", seconds(p.retry.Sub(now))}, extra...)...)
				return false, false
			}
			qd := Queued{ID: p.id, Position: q.position(p), Length: len(q.places),
				ETA: p.retry.Sub(now), Lifetime: p.expire.Sub(now) - s.queueRetry()*4/3}
			wait := p.retry.Sub(now)
			s.mu.Unlock()
			return false, s.answerQueued(conn, r, qd, wait, extra)
		}
		if p.early > 0 {
			p.early--
		}
	}
	free := s.slots() - s.active
	if !s.ipFullLocked(ip) && free > s.eligibleAheadLocked(p) {
		if p != nil {
			q.remove(p)
		}
		s.takeSlotLocked(cs, ip, key)
		s.mu.Unlock()
		return true, true
	}
	var reason string
	switch {
	case p != nil:
	case !parq:
		reason = "Busy"
	case len(q.places) >= s.queueSize():
		reason = "Queue Full"
	case s.queuePerIP() > 0 && q.perIP[ip] >= s.queuePerIP():
		reason = "Too Many Queued From Your Address"
	default:
		var id [16]byte
		_, _ = rand.Read(id[:])
		p = &place{id: hex.EncodeToString(id[:]), ip: ip, key: key}
		q.add(p)
	}
	if p == nil {
		s.mu.Unlock()
		s.refused.Add(1)
		s.refuse(conn, r, 503, reason, false,
			append([]string{"Retry-After", seconds(s.retryAfter())}, extra...)...)
		return false, false
	}
	pos := q.position(p)
	delay := s.queueDelay(pos)
	lifetime := delay + 2*s.queueRetry()
	p.retry = now.Add(delay)
	p.expire = now.Add(lifetime + s.queueRetry()*4/3)
	qd := Queued{ID: p.id, Position: pos, Length: len(q.places), ETA: delay, Lifetime: lifetime}
	s.mu.Unlock()
	return false, s.answerQueued(conn, r, qd, delay, extra)
}

// answerQueued sends 503 Queued with the place qd and Retry-After wait
// (also for clients that do not read X-Queued). For the first
// queueKeepAlive places the connection stays open for the next request
// until the place's lifetime ends (gtk-gnutella's "active queueing").
func (s *Server) answerQueued(conn net.Conn, r *request, qd Queued, wait time.Duration, extra []string) bool {
	s.queued.Add(1)
	if qd.Position > queueKeepAlive {
		// Far back: it comes back on a new connection rather than hold one
		// (and a pending-connection place in the servent) all that time.
		r.keepAlive = false
	}
	r.cs.wait = max(qd.Lifetime, wait)
	s.Logger.Debug().Str("remote", r.remote.String()).Str("id", qd.ID).Int("position", qd.Position).Int("length", qd.Length).Msg("upload queued")
	// X-Queue says which PARQ we speak: without it gtk-gnutella assumes 1.0.
	return s.reply(conn, r, 503, "Queued", false,
		append([]string{"Retry-After", seconds(wait), "X-Queue", QueueVersion, "X-Queued", qd.Format()}, extra...)...)
}

// seconds is d in whole seconds, rounded up, at least 1: a Retry-After.
func seconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}
