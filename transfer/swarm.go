package transfer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gnutella/protocol"
)

// Swarming: a download by urn:sha1 runs one worker per source, up to
// MaxSources at once. Each worker keeps one connection and asks for one
// chunk per request (HTTP/1.1 keep-alive). The chunk is a random free block
// of the ChunkSize grid that the source has (its X-Available-Ranges), so
// that leechers of one file fetch different parts and can serve each other.
// When no block is free (the endgame) an idle worker takes the second half
// of the biggest request in flight, or, when that is small, asks for the
// same bytes: whichever source is faster writes them, the other compares.
// Bytes are written only inside the claim a request was made for; bytes we
// have already are compared, never written again.
//
// Wrong bytes: there is no well-kept Go Tiger-tree (THEX) implementation,
// so chunks cannot be checked as they come. The whole file's SHA-1 is
// checked at the end; on a mismatch each source's bytes are fetched again
// from another source and compared (check spans). A source whose bytes
// disagree with those of a source that was confirmed by a third, or with
// two others, is the liar: it is banned for the file (Mesh.Bad) and its
// bytes are fetched again.

// claim is a request in flight: the worker of src may write [start, end);
// pos is the next byte it expects. end shrinks when an idle worker takes
// the second half (endgame).
type claim struct {
	src        *source
	start, end int64
	pos        int64
	dup        bool       // asks for bytes another claim also asks for
	duped      bool       // a dup claim copies this one
	check      *checkSpan // compares a check span, writes nothing
	compared   int64      // bytes of the check span found equal
}

// checkSpan is written bytes to compare with another source after a bad
// hash.
type checkSpan struct {
	Span
	writer  *source
	against []*source // sources that disagreed with writer here
	busy    bool
}

type srcPair struct{ a, b *source }

// endgameMinSplit: an in-flight request with less than twice this left is
// duplicated rather than split.
const endgameMinSplit = 32 << 10

// run works on x until it is done, failed, has to wait for its sources, is
// paused or cancelled, or the Downloader closes.
func (d *Downloader) run(ctx context.Context, x *Download) {
	defer d.wg.Done()
	defer func() {
		d.mu.Lock()
		x.running = false
		if x.stop != nil {
			x.stop()
			x.stop = nil
		}
		d.active--
		switch x.state {
		case StateCancelled:
			x.removePartial()
		case StatePaused, StateWaiting, StateDone, StateFailed:
		default:
			x.state = StateQueued
		}
		for _, s := range x.sources {
			s.active = false
		}
		d.mu.Unlock()
		_ = d.save()
		d.poke()
	}()
	f, err := openPartial(x.partial)
	if err != nil {
		d.failNow(x, &localError{"cannot open the partial file: " + err.Error()})
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > x.size {
		// Someone wrote past the end: the bytes past the size are never
		// ours to keep (no upload reads a file this long).
		if err := f.Truncate(x.size); err != nil {
			d.failNow(x, &localError{"cannot truncate the partial file: " + err.Error()})
			return
		}
	}
	x.mu.Lock()
	x.have = x.have.Intersect(Ranges{{0, x.size}})
	x.haveN.Store(x.have.Covered())
	if x.changed == nil {
		x.changed = make(chan struct{})
	}
	x.mu.Unlock()

	// The workers' context: renewed when the workers of a complete file
	// were stopped and more work comes (a bad hash).
	var w struct {
		ctx    context.Context
		cancel context.CancelFunc
	}
	w.ctx, w.cancel = context.WithCancel(ctx)
	defer func() { w.cancel() }()
	results := make(chan workerResult, len(x.sourcesSnapshot())+d.MaxSources+1)
	running := 0
	drain := func() {
		w.cancel()
		for ; running > 0; running-- {
			r := <-results
			d.judge(x, r.src, r.progressed, r.err)
		}
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			drain()
			return
		}
		d.syncLiars(x)
		x.mu.Lock()
		complete := x.completeLocked()
		x.mu.Unlock()
		if complete && running > 0 {
			// Every byte is here: the workers left are idle, or wait for
			// an answer we no longer need. They are stopped, not blamed.
			w.cancel()
			for ; running > 0; running-- {
				d.stopped(x, <-results)
			}
			w.ctx, w.cancel = context.WithCancel(ctx)
		}
		if complete && running == 0 {
			ok, got, err := d.verify(x, f)
			if err != nil {
				d.failNow(x, fmt.Errorf("verifying: %w", err))
				return
			}
			if ok {
				d.provenGood(x)
				f.Close()
				d.place(x)
				return
			}
			if !d.badHash(x, got) {
				return
			}
			continue
		}
		if !complete {
			running += d.startWorkers(w.ctx, x, f, results)
		}
		if running == 0 {
			wait, usable := d.nextSourceTry(x)
			d.mu.Lock()
			if !usable {
				if !x.terminal() && x.state != StatePaused {
					x.state = StateFailed
					x.err = ErrNoSources
					if x.lastErr != "" {
						x.err = fmt.Errorf("%w (last error: %s)", ErrNoSources, x.lastErr)
					}
					if x.badHashes > 0 {
						// Every source sent wrong bytes: nothing of it is kept.
						x.err = fmt.Errorf("%w, and %w", ErrHashMismatch, ErrNoSources)
						x.removePartial()
					}
					close(x.done)
				}
				d.mu.Unlock()
				return
			}
			if !wait.After(time.Now()) {
				d.mu.Unlock()
				continue
			}
			if x.state != StatePaused && !x.terminal() {
				x.state = StateWaiting
				x.retryAt = wait
			}
			d.mu.Unlock()
			return
		}
		wait := time.Hour
		if next, _ := d.nextSourceTry(x); !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case r := <-results:
			running--
			var local *localError
			if errors.As(r.err, &local) {
				drain()
				d.failNow(x, r.err)
				return
			}
			d.judge(x, r.src, r.progressed, r.err)
			d.saveSoon()
		case <-timer.C:
		case <-x.kickCh():
		case <-ctx.Done():
		}
	}
}

// stopped ends the worker of r, stopped because the file was complete.
func (d *Downloader) stopped(x *Download, r workerResult) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r.src.active = false
	if r.err == nil {
		return // it was idle
	}
	// It was stopped in a request (or connecting).
	switch rate := r.src.rate.rate(time.Now()); {
	case r.src.got.Load() == 0:
		r.src.reason = "had sent nothing when the file was complete"
	case rate < float64(d.MinRate):
		r.src.reason = fmt.Sprintf("too slow: %.0f B/s (below %d) while the others completed the file", rate, d.MinRate)
		r.src.nextTry = time.Now().Add(sourceBackoffMax)
	}
}

type workerResult struct {
	src        *source
	progressed bool
	err        error
}

func (x *Download) sourcesSnapshot() []*source {
	x.d.mu.Lock()
	defer x.d.mu.Unlock()
	return slices.Clone(x.sources)
}

// kickCh is signalled when sources are added to a running download.
func (x *Download) kickCh() chan struct{} {
	x.d.mu.Lock()
	defer x.d.mu.Unlock()
	if x.kick == nil {
		x.kick = make(chan struct{}, 1)
	}
	return x.kick
}

// startWorkers starts a worker for each source whose time has come, up to
// MaxSources busy at once (one without a SHA-1), and returns how many.
func (d *Downloader) startWorkers(ctx context.Context, x *Download, f *os.File, results chan<- workerResult) int {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	limit := d.MaxSources
	if x.sha1.IsZero() {
		limit = 1
	}
	busy := 0
	for _, s := range x.sources {
		if s.active {
			busy++
		}
	}
	if busy < limit {
		d.meshSourcesLocked(x) // it wants more sources
	}
	started := 0
	for _, s := range x.sources {
		if busy >= limit {
			break
		}
		if s.dropped || s.active || s.nextTry.After(now) {
			continue
		}
		if d.needsPush(s.Source) && (d.Push == nil || s.ServentID.IsZero()) {
			s.dropped = true
			s.lastErr = "firewalled source and no way to send a Push"
			if d.Push != nil {
				s.lastErr = "firewalled source without a servent ID"
			}
			s.reason = s.lastErr
			x.lastErr = s.lastErr
			continue
		}
		s.active = true
		busy++
		started++
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			before := s.got.Load()
			err := d.work(ctx, x, s, f)
			results <- workerResult{s, s.got.Load() > before, err}
		}()
	}
	return started
}

// nextSourceTry returns the earliest time a usable source that is not busy
// may be tried, and whether any usable source is left.
func (d *Downloader) nextSourceTry(x *Download) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var wait time.Time
	usable := false
	for _, s := range x.sources {
		if s.dropped {
			continue
		}
		usable = true
		if s.active {
			continue
		}
		if wait.IsZero() || s.nextTry.Before(wait) {
			wait = s.nextTry
		}
	}
	return wait, usable
}

// work is one source's worker: it claims chunks and fetches them over one
// kept-alive connection until nothing is left for it, or an error.
func (d *Downloader) work(ctx context.Context, x *Download, src *source, f *os.File) error {
	var conn net.Conn
	var br *bufio.Reader
	var stopClose func() bool
	closeConn := func() {
		if conn != nil {
			stopClose()
			conn.Close()
			conn = nil
		}
	}
	defer closeConn()
	fresh := false
	retried416 := 0
	// What a partial source had when we last asked is stale by now (it
	// downloads too): it is asked afresh, and its answer says what it has.
	x.mu.Lock()
	src.avail = nil
	x.mu.Unlock()
	for {
		c, err := x.next(ctx, src)
		if c == nil {
			return err
		}
		if conn == nil {
			d.setState(x, StateConnecting, src)
			conn, br, err = d.connect(ctx, src)
			if err != nil {
				conn = nil
				x.release(c)
				return err
			}
			cc := conn
			stopClose = context.AfterFunc(ctx, func() { _ = cc.Close() })
			fresh = true
		}
		keep, err := d.fetchChunk(ctx, x, src, conn, br, f, c, !fresh)
		x.release(c)
		if err != nil {
			var stale *staleError
			if errors.As(err, &stale) && !fresh && ctx.Err() == nil {
				// The kept-alive connection was closed while idle: a new one.
				closeConn()
				continue
			}
			var ra *rangesError
			if errors.As(err, &ra) && retried416 < 2 && ctx.Err() == nil {
				// A 416 with X-Available-Ranges: ask at once for a part it has.
				retried416++
				closeConn()
				continue
			}
			return err
		}
		retried416 = 0
		fresh = false
		if !keep {
			closeConn()
		}
		d.saveSoon()
	}
}

// staleError: a kept-alive connection failed before the answer began.
type staleError struct{ err error }

func (e *staleError) Error() string { return "connection closed: " + e.err.Error() }
func (e *staleError) Unwrap() error { return e.err }

// rangesError: 416 from a partial source, with the ranges it has.
type rangesError struct{ msg string }

func (e *rangesError) Error() string { return e.msg }

// next claims the next bytes for src: a check span, a random free chunk it
// has, or, in the endgame, part of another request. It waits while there
// is nothing for it now but work in flight; it returns nil when the file
// is complete, ctx is done, or the source has nothing we need (an error).
func (x *Download) next(ctx context.Context, src *source) (*claim, error) {
	for {
		x.mu.Lock()
		if src.liar != "" {
			x.mu.Unlock()
			return nil, &permanentError{msg: src.liar}
		}
		if x.completeLocked() {
			x.mu.Unlock()
			return nil, nil
		}
		c, useless := x.claimLocked(src)
		if c != nil {
			x.mu.Unlock()
			return c, nil
		}
		if useless {
			has := src.avail.FormatAvailable()
			x.mu.Unlock()
			return nil, &busyError{min(x.d.RetryAfter, partialRecheck), "has none of the bytes we still need (it has " + strings.TrimPrefix(has, "bytes ") + ")"}
		}
		if len(x.claims) == 0 && len(x.checks) > 0 {
			// Nothing in flight and no check this source may make: the
			// checks no source can make are given up; their bytes are
			// fetched again.
			x.dropChecksLocked()
			x.mu.Unlock()
			continue
		}
		ch := x.changed
		x.idle++
		x.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		x.mu.Lock()
		x.idle--
		x.mu.Unlock()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// completeLocked: every byte is had and no check is pending.
func (x *Download) completeLocked() bool {
	return len(x.checks) == 0 && x.have.Contains(0, x.size)
}

// claimLocked picks src's next claim (see next). useless reports that src
// has none of the bytes still missing.
func (x *Download) claimLocked(src *source) (*claim, bool) {
	for _, cs := range x.checks {
		if cs.busy || cs.writer == src || slices.Contains(cs.against, src) {
			continue
		}
		if src.avail != nil && !src.avail.Contains(cs.Start, cs.End) {
			continue
		}
		cs.busy = true
		c := &claim{src: src, start: cs.Start, end: cs.End, pos: cs.Start, check: cs}
		x.claims = append(x.claims, c)
		return c, false
	}
	missing := x.have.Missing(x.size)
	free := missing
	for _, c := range x.claims {
		if c.check == nil {
			free = free.Remove(c.pos, c.end)
		}
	}
	mine := free
	if src.avail != nil {
		mine = free.Intersect(src.avail)
	}
	if len(mine) > 0 {
		now := time.Now()
		a, b := pickChunk(mine, x.d.ChunkSize, src.after, func(a, b int64) int { return x.holdersLocked(src, a, b, now) })
		src.after = b
		c := &claim{src: src, start: a, end: b, pos: a}
		x.claims = append(x.claims, c)
		return c, false
	}
	// Endgame: help the request with the most left.
	var best *claim
	for _, c := range x.claims {
		if c.src == src || c.check != nil || c.dup || c.pos >= c.end {
			continue
		}
		if best == nil || c.end-c.pos > best.end-best.pos {
			best = c
		}
	}
	if best != nil {
		rem := best.end - best.pos
		mid := best.pos + rem/2
		if rem >= 2*endgameMinSplit && (src.avail == nil || src.avail.Contains(mid, best.end)) {
			c := &claim{src: src, start: mid, end: best.end, pos: mid}
			best.end = mid
			x.claims = append(x.claims, c)
			return c, false
		}
		if rem < 2*endgameMinSplit && !best.duped && (src.avail == nil || src.avail.Contains(best.pos, best.end)) {
			best.duped = true
			c := &claim{src: src, start: best.pos, end: best.end, pos: best.pos, dup: true}
			x.claims = append(x.claims, c)
			return c, false
		}
	}
	useless := src.avail != nil && len(missing.Intersect(src.avail)) == 0
	return nil, useless
}

// pickChunk returns the next block for a source, of the size-chunk grid,
// cut to free: [a, b). Only the rarest blocks are candidates: holders(a, b)
// says how many other sources have bytes of them. Rarest first is what
// lets leechers finish from each other when the only full source leaves:
// what one fetches from it is what the others do not have.
//
// Among the candidates it goes on from after (where the source's last
// request ended) when it can, so that each source runs through a stretch
// of the file; a source that cannot starts in the middle of the longest
// stretch of candidates, as far as it can be from the stretches other
// sources, and other downloaders, are running through (they are seen only
// as often as they are asked, so guessing where they go next matters). The
// very first block, with nothing held anywhere, is random: two downloaders
// starting together do not start at the same place.
func pickChunk(free Ranges, chunk, after int64, holders func(a, b int64) int) (a, b int64) {
	var best [][2]int64
	fewest := -1
	for _, s := range free {
		for blk := s.Start / chunk; blk <= (s.End-1)/chunk; blk++ {
			ba, bb := max(s.Start, blk*chunk), min(s.End, (blk+1)*chunk)
			n := holders(ba, bb)
			switch {
			case fewest < 0 || n < fewest:
				fewest, best = n, append(best[:0], [2]int64{ba, bb})
			case n == fewest:
				best = append(best, [2]int64{ba, bb})
			}
		}
	}
	for _, k := range best {
		if after > 0 && k[0] <= after && after < k[1] {
			return k[0], k[1]
		}
	}
	// The longest run of adjacent candidates (the first of equal ones).
	runStart, runLen, bestStart, bestLen := 0, 0, 0, 0
	for i := range best {
		if i == 0 || best[i-1][1] != best[i][0] {
			runStart, runLen = i, 0
		}
		runLen++
		if runLen > bestLen {
			bestStart, bestLen = runStart, runLen
		}
	}
	if bestLen == len(best) && len(free) == 1 && fewest == 0 {
		// Nothing of the file is had or claimed by anyone we know of.
		k := best[rand.IntN(len(best))]
		return k[0], k[1]
	}
	k := best[bestStart+bestLen/2]
	return k[0], k[1]
}

// holdersLocked counts the partial sources other than src that have, or
// likely have by now, bytes of [a, b): one with part of a block is likely
// fetching the rest of it. What a partial source has is known only as of
// its last answer; it has gone on downloading since, at about the rate it
// grew between its last two answers, and most likely at the ends of the
// stretches it had (downloaders, this one too, run through stretches):
// those are counted as held, so that we do not fetch from a full source
// what another leecher is fetching from it. Sources without
// X-Available-Ranges have all of the file: they count for every block
// alike, so they are left out.
func (x *Download) holdersLocked(src *source, a, b int64, now time.Time) int {
	n := 0
	for _, p := range x.partials {
		if p == src || p.liar != "" || len(p.avail) == 0 {
			continue
		}
		grown := int64(p.availRate * now.Sub(p.availAt).Seconds())
		for _, r := range p.avail {
			if r.Start < b && min(r.End+grown, x.size) > a {
				n++
				break
			}
		}
	}
	return n
}

// seen notes that a partial source had covered bytes at now, for the rate
// at which it grows (holdersLocked).
func (s *source) seen(covered int64, now time.Time) {
	if !s.availAt.IsZero() {
		if dt := now.Sub(s.availAt).Seconds(); dt > 0.05 {
			s.availRate = max(0, float64(covered-s.availCovered)/dt)
		}
	}
	s.availAt, s.availCovered = now, covered
}

// release ends c: its unfinished bytes are free again.
func (x *Download) release(c *claim) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.claims = slices.DeleteFunc(x.claims, func(o *claim) bool { return o == c })
	if c.check != nil {
		c.check.busy = false
	}
	for _, o := range x.claims {
		if o.duped && o.start <= c.start && c.dup {
			o.duped = false
		}
	}
	x.changedLocked()
}

// changedLocked wakes the idle workers.
func (x *Download) changedLocked() {
	if x.changed != nil {
		close(x.changed)
	}
	x.changed = make(chan struct{})
}

// fetchChunk asks src for c (and the Overlap bytes before it when they are
// ours from an earlier run or from src) and takes in the answer. keep
// reports that the connection may carry the next request.
func (d *Downloader) fetchChunk(ctx context.Context, x *Download, src *source, conn net.Conn, br *bufio.Reader, f *os.File, c *claim, reused bool) (keep bool, err error) {
	x.mu.Lock()
	askStart, askEnd := c.start, c.end
	if c.check == nil && !c.dup && c.start >= Overlap && x.have.Contains(c.start-Overlap, c.start) &&
		x.ownBytesLocked(src, c.start-Overlap, c.start) && (src.avail == nil || src.avail.Contains(c.start-Overlap, c.start)) {
		askStart = c.start - Overlap
	}
	x.mu.Unlock()

	d.mu.Lock()
	sum := x.sha1
	queued := src.queued
	d.mu.Unlock()
	var target string
	if !sum.IsZero() {
		target = "/uri-res/N2R?" + sum.String()
	} else {
		target = "/get/" + strconv.FormatUint(uint64(src.Index), 10) + "/" + url.PathEscape(src.Name)
	}
	var host string
	if ra := addrPortOf(conn.RemoteAddr()); ra.IsValid() {
		host = ra.String()
	} else if src.Addr.IsValid() {
		host = src.Addr.String()
	}
	var req []byte
	req = append(req, "GET "+target+" HTTP/1.1\r\n"...)
	req = append(req, "User-Agent: "+d.UserAgent+"\r\n"...)
	if host != "" {
		req = append(req, "Host: "+host+"\r\n"...)
	}
	req = append(req, "Range: bytes="+strconv.FormatInt(askStart, 10)+"-"+strconv.FormatInt(askEnd-1, 10)+"\r\n"...)
	if !sum.IsZero() {
		req = append(req, "X-Gnutella-Content-URN: "+sum.String()+"\r\n"...)
	}
	req = append(req, "X-Queue: "+QueueVersion+"\r\n"...)
	if queued != nil {
		req = append(req, "X-Queued: "+queued.FormatRequest()+"\r\n"...)
	}
	x.mu.Lock()
	falt := src.fwalt
	x.mu.Unlock()
	req = d.Mesh.AppendRequestHeaders(req, sum, src.Addr, falt)
	req = append(req, "\r\n"...)
	deadline := time.Now().Add(d.RequestTimeout)
	_ = conn.SetWriteDeadline(earlier(time.Now().Add(d.StallTimeout), deadline))
	if _, err := conn.Write(req); err != nil {
		return false, &staleError{fmt.Errorf("sending the request: %w", err)}
	}

	_ = conn.SetReadDeadline(earlier(time.Now().Add(d.StallTimeout), deadline))
	code, minor, reason, h, err := readResponseHead(br)
	if err != nil {
		var pe *protoError
		var ne net.Error
		switch {
		case (errors.As(err, &pe) || protocol.IsHandshakeLimit(err)) && reused:
			// What follows an answer on a kept-alive connection is not an
			// answer: the source sent more than it announced.
			return false, &permanentError{msg: "sent more bytes than its last answer announced (garbage where this answer should begin)", err: ErrBadRange}
		case errors.As(err, &pe) || protocol.IsHandshakeLimit(err):
			return false, &permanentError{msg: "bad response: " + err.Error()}
		case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
			return false, &staleError{fmt.Errorf("closed before answering: %w", err)}
		case errors.As(err, &ne) && ne.Timeout():
			return false, fmt.Errorf("no answer within %s (StallTimeout or RequestTimeout)", d.StallTimeout)
		}
		return false, fmt.Errorf("reading the response: %w", err)
	}
	if known := x.sha1OrZero(); !known.IsZero() {
		d.Mesh.Learn(known, &h, src.Addr)
		if WantsFalt(&h) {
			x.mu.Lock()
			src.fwalt = true
			x.mu.Unlock()
		}
		if d.Mesh != nil && (h.Get("X-Alt") != "" || h.Get("X-Falt") != "") {
			// The running download takes in the sources it names now,
			// not when its current workers end (a full source's worker
			// may run to the end of the file).
			select {
			case x.kickCh() <- struct{}{}:
			default:
			}
		}
	}
	var avail Ranges
	if v := h.Get("X-Available-Ranges"); v != "" {
		if r, err := ParseAvailableRanges(v, x.size); err == nil {
			avail = r
			x.mu.Lock()
			src.avail = r
			src.seen(r.Covered(), time.Now())
			if !slices.Contains(x.partials, src) {
				x.partials = append(x.partials, src)
			}
			x.changedLocked()
			x.mu.Unlock()
		}
	}
	switch {
	case code == 503:
		after, ok := parseRetryAfter(h.Get("Retry-After"), time.Now())
		if !ok {
			after = d.RetryAfter
		}
		after = max(after, time.Second) // a Retry-After of 0 would make us hammer
		if v := h.Get("X-Queued"); v != "" {
			if q, err := ParseQueued(v); err == nil {
				return false, &queuedError{q, after}
			}
		}
		return false, &busyError{after, fmt.Sprintf("busy (503 %s), retry after %s", reason, after)}
	case code == 416:
		if len(avail) > 0 {
			return false, &rangesError{fmt.Sprintf("416 %s: it has only %s", reason, avail.FormatAvailable())}
		}
		// We asked for bytes of a file of the size the hit gave: the
		// source has less of it (a partial source) or another size.
		return false, &busyError{sourceBackoffMax, "416 " + reason + ": it does not have the bytes asked for"}
	case code == 200 || code == 206:
	case code >= 500:
		return false, fmt.Errorf("%d %s", code, reason)
	default:
		return false, &permanentError{msg: fmt.Sprintf("%d %s", code, reason)}
	}

	// Which bytes are coming: read Content-Range on every 206 (gtk-gnutella
	// answers a range with a 206 of another range).
	var rs, re int64
	if code == 206 {
		a, b, total, ok := parseContentRange(h.Get("Content-Range"))
		if !ok {
			return false, &permanentError{msg: "206 without a valid Content-Range"}
		}
		if total >= 0 && total != x.size {
			return false, &permanentError{msg: fmt.Sprintf("the source's file has %d bytes, not %d", total, x.size)}
		}
		// Never past the announced size, whatever the source says (a
		// "0-999999999999/*" with an endless body must not grow the file).
		if b >= x.size {
			return false, badRange("answered bytes %d-%d for a %d-byte file", a, b, x.size)
		}
		rs, re = a, b
	} else {
		rs, re = 0, x.size-1
	}
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := parseDigits(strings.TrimSpace(cl))
		if err != nil || n != re-rs+1 {
			if code == 200 {
				return false, &permanentError{msg: fmt.Sprintf("the source's file has %s bytes, not %d", cl, x.size), err: ErrBadRange}
			}
			return false, badRange("Content-Length %s disagrees with Content-Range %d-%d", cl, rs, re)
		}
	} else if code == 200 && x.size > 0 {
		return false, badRange("200 without Content-Length")
	}
	if te := h.Get("Transfer-Encoding"); te != "" && !strings.EqualFold(te, "identity") {
		return false, &permanentError{msg: "Transfer-Encoding " + te + " is not spoken here"}
	}
	if urn := firstURN(h); !urn.IsZero() {
		d.mu.Lock()
		known := x.sha1
		if known.IsZero() {
			x.sha1 = urn // verify against what the source says it serves
		}
		d.mu.Unlock()
		if !known.IsZero() && urn != known {
			return false, &permanentError{msg: "the source serves " + urn.String()}
		}
	}
	if rs > c.start || re < c.start {
		// Not the bytes we asked for (within the file): the source has
		// other parts of it. No byte of it is read.
		msg := fmt.Sprintf("offers bytes %d-%d, we asked for %d-%d", rs, re, askStart, askEnd-1)
		if len(avail) > 0 {
			return false, &rangesError{msg}
		}
		return false, &busyError{sourceBackoffMax, msg}
	}
	d.mu.Lock()
	src.queued = nil
	src.reason = "" // it serves us: what made it wait is over
	d.mu.Unlock()
	d.setState(x, StateDownloading, src)
	early, err := d.receive(conn, br, f, x, src, c, rs, re, deadline)
	if err != nil {
		return false, err
	}
	if c.check != nil {
		x.checked(c)
	}
	keep = !early && minor >= 1 && !connection(h.Get("Connection")).close
	if !early {
		// Nothing may follow an answer before our next request: look,
		// without waiting, whether the source sent more than it announced.
		if br.Buffered() > 0 || pending(conn) {
			return false, &permanentError{msg: fmt.Sprintf("sent more bytes than the %d-%d it announced", rs, re), err: ErrBadRange}
		}
	}
	return keep, nil
}

// receive copies the response body, bytes rs..re, into f through absorb
// (bytes had are compared, new bytes inside c written, others skipped). It
// stops early, returning early=true, when c's end is reached before re (an
// endgame split, or an answer longer than asked) or c's bytes are all had.
// It ends at the request's deadline, and when the source is slower than
// MinRate over RateWindow while another source idles or another download
// waits for a slot.
func (d *Downloader) receive(conn net.Conn, br *bufio.Reader, f *os.File, x *Download, src *source, c *claim, rs, re int64, deadline time.Time) (early bool, err error) {
	buf := make([]byte, 64<<10)
	pos := rs
	began := time.Now()
	winStart, winPos := began, pos
	stallAt := began.Add(d.StallTimeout)
	for pos <= re {
		now := time.Now()
		if el := now.Sub(winStart); el >= d.RateWindow {
			rate := float64(pos-winPos) / el.Seconds()
			if rate < float64(d.MinRate) {
				x.mu.Lock()
				idle := x.idle
				x.mu.Unlock()
				if idle > 0 {
					return false, &slowError{fmt.Sprintf("too slow: %.0f B/s for %s (below %d) while %d other source(s) waited", rate, el.Round(time.Millisecond), d.MinRate, idle)}
				}
				if d.othersWaiting(x) {
					return false, &slowError{fmt.Sprintf("too slow: %.0f B/s for %s (below %d) while other downloads waited", rate, el.Round(time.Millisecond), d.MinRate)}
				}
			}
			winStart, winPos = now, pos
		}
		if !now.Before(deadline) {
			return false, fmt.Errorf("request took longer than %s (RequestTimeout), at byte %d of %d-%d", d.RequestTimeout, pos, rs, re)
		}
		x.mu.Lock()
		end := c.end
		had := pos >= c.start && c.check == nil && x.have.Contains(pos, end)
		x.mu.Unlock()
		if had {
			// Another source sent these bytes first (endgame duplicate).
			if el := now.Sub(began); el >= d.RateWindow {
				if rate := float64(pos-rs) / el.Seconds(); rate < float64(d.MinRate) {
					return false, &slowError{fmt.Sprintf("too slow: %.0f B/s for %s (below %d); another source sent its bytes first", rate, el.Round(time.Millisecond), d.MinRate)}
				}
			}
			return pos <= re, nil
		}
		if pos >= end {
			return pos <= re, nil
		}
		// Wake at the end of the rate window too, so that the rate is
		// judged even while a source sends nothing.
		_ = conn.SetReadDeadline(earlier(earlier(stallAt, deadline), winStart.Add(d.RateWindow)))
		n, err := br.Read(buf[:min(int64(len(buf)), min(re+1, end)-pos)])
		if n > 0 {
			stallAt = time.Now().Add(d.StallTimeout)
			if aerr := x.absorb(f, src, c, pos, buf[:n]); aerr != nil {
				return false, aerr
			}
			pos += int64(n)
			src.got.Add(int64(n))
			src.rate.add(n, time.Now())
		}
		if err != nil {
			if pos > re {
				break
			}
			if err == io.EOF {
				return false, fmt.Errorf("connection closed at byte %d of %d-%d", pos, rs, re)
			}
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				if now := time.Now(); now.Before(deadline) && now.Before(stallAt) {
					continue // the rate window's end
				}
				if !time.Now().Before(deadline) {
					return false, fmt.Errorf("request took longer than %s (RequestTimeout), at byte %d of %d-%d", d.RequestTimeout, pos, rs, re)
				}
				return false, fmt.Errorf("no bytes for %s (StallTimeout), at byte %d of %d-%d", d.StallTimeout, pos, rs, re)
			}
			return false, err
		}
	}
	return false, nil
}

// meter is a recent rate: an exponentially decaying average of bytes/s.
type meter struct {
	mu   sync.Mutex
	r    float64
	last time.Time
}

const meterTau = 2 * time.Second

func (m *meter) add(n int, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.last.IsZero() {
		m.r *= math.Exp(-float64(now.Sub(m.last)) / float64(meterTau))
	}
	m.r += float64(n) / meterTau.Seconds()
	m.last = now
}

func (m *meter) rate(now time.Time) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last.IsZero() {
		return 0
	}
	return m.r * math.Exp(-float64(now.Sub(m.last))/float64(meterTau))
}

// badHash handles a complete file whose SHA-1 is wrong: it finds the liar
// (checks), or gives up after three bad hashes or when the sources agree
// on a file with another hash. It returns false when x failed.
func (d *Downloader) badHash(x *Download, got protocol.SHA1) bool {
	d.mu.Lock()
	x.badHashes++
	x.lastErr = fmt.Sprintf("%v: got %s", ErrHashMismatch, got)
	tries := x.badHashes
	d.mu.Unlock()
	d.Logger.Warn().Str("file", x.name).Str("got", got.String()).Msg("finished download has a bad hash; looking for the source that lied")

	x.mu.Lock()
	var known Ranges
	var writers []*source
	for _, s := range x.writers {
		if len(s.wrote) > 0 && s.liar == "" {
			writers = append(writers, s)
			for _, sp := range s.wrote {
				known = known.Add(sp.Start, sp.End)
			}
		}
	}
	agreed := x.agreedRound
	x.agreedRound = false
	// Bytes of an earlier run (no known writer) are fetched again.
	x.have = x.have.Intersect(known)
	giveUp := tries >= 3 || agreed
	switch {
	case giveUp:
	case len(writers) == 1:
		x.markLiarLocked(writers[0], "sent bytes that did not match the file's SHA-1")
	case len(writers) > 1:
		for _, w := range writers {
			for _, sp := range w.wrote {
				for a := sp.Start; a < sp.End; a += d.ChunkSize {
					x.checks = append(x.checks, &checkSpan{Span: Span{a, min(sp.End, a+d.ChunkSize)}, writer: w})
				}
			}
		}
		rand.Shuffle(len(x.checks), func(i, j int) { x.checks[i], x.checks[j] = x.checks[j], x.checks[i] })
		x.agreedRound = true // cleared when a check disagrees
	}
	x.haveN.Store(x.have.Covered())
	x.changedLocked()
	x.mu.Unlock()
	d.syncLiars(x)
	if giveUp {
		// Never keep a complete-looking file with a bad hash; the sources
		// that sent it are not asked again.
		d.mu.Lock()
		for _, w := range writers {
			w.dropped = true
			w.reason = "sent a file whose SHA-1 does not match (the other sources agreed with it)"
		}
		d.mu.Unlock()
		x.removePartial()
		d.failNow(x, ErrHashMismatch)
		return false
	}
	return true
}

// markLiarLocked bans s for this file: its bytes go, pending checks end.
func (x *Download) markLiarLocked(s *source, why string) {
	if s.liar != "" {
		return
	}
	s.liar = why
	for _, sp := range s.wrote {
		x.have = x.have.Remove(sp.Start, sp.End)
	}
	s.wrote = nil
	x.checks = nil // the liar is found: fetch its bytes and hash again
	x.agreedRound = false
	x.haveN.Store(x.have.Covered())
	x.changedLocked()
}

// checked records that c, a check span, was compared whole without a
// difference: its writer and c's source agree.
func (x *Download) checked(c *claim) {
	x.mu.Lock()
	defer x.mu.Unlock()
	cs := c.check
	if c.compared < cs.Len() || !slices.Contains(x.checks, cs) {
		// Not compared whole (its bytes went meanwhile, a liar's), or the
		// checks were ended: no agreement to record.
		return
	}
	x.checks = slices.DeleteFunc(x.checks, func(o *checkSpan) bool { return o == cs })
	if x.agrees == nil {
		x.agrees = map[*source]bool{}
	}
	x.agrees[cs.writer], x.agrees[c.src] = true, true
	x.judgeLiarsLocked()
	x.changedLocked()
}

// disagreeLocked records that a and b sent different bytes for one place.
func (x *Download) disagreeLocked(a, b *source) {
	x.agreedRound = false
	x.against = append(x.against, srcPair{a, b})
	x.judgeLiarsLocked()
}

// judgeLiarsLocked names the liar of each disagreement it can decide: the
// one that disagreed with a source another confirmed, or with two sources.
func (x *Download) judgeLiarsLocked() {
	partners := map[*source]map[*source]bool{}
	for _, p := range x.against {
		switch {
		case x.agrees[p.a] && !x.agrees[p.b]:
			x.markLiarLocked(p.b, "sent bytes that did not match other sources")
		case x.agrees[p.b] && !x.agrees[p.a]:
			x.markLiarLocked(p.a, "sent bytes that did not match other sources")
		}
		for _, s := range []*source{p.a, p.b} {
			if partners[s] == nil {
				partners[s] = map[*source]bool{}
			}
		}
		partners[p.a][p.b], partners[p.b][p.a] = true, true
	}
	for s, ps := range partners {
		if len(ps) >= 2 && !x.agrees[s] {
			x.markLiarLocked(s, "sent bytes that did not match two other sources")
		}
	}
}

// dropChecksLocked gives up the checks left: their bytes are fetched again.
func (x *Download) dropChecksLocked() {
	for _, cs := range x.checks {
		x.have = x.have.Remove(cs.Start, cs.End)
		cs.writer.wrote = cs.writer.wrote.Remove(cs.Start, cs.End)
	}
	x.checks = nil
	x.haveN.Store(x.have.Covered())
	x.changedLocked()
}

// syncLiars bans, on the Downloader's side, the sources found lying.
func (d *Downloader) syncLiars(x *Download) {
	x.mu.Lock()
	liars := map[*source]string{}
	for _, s := range x.writers {
		if s.liar != "" {
			liars[s] = s.liar
		}
	}
	x.mu.Unlock()
	if len(liars) == 0 {
		return
	}
	d.mu.Lock()
	sum := x.sha1
	var newly []Source
	for s, why := range liars {
		if !s.banned {
			s.banned, s.dropped, s.reason = true, true, why
			newly = append(newly, s.Source)
		}
	}
	for _, s := range x.sources {
		if !s.banned && s.reason == disagreeReason {
			// It disagreed with the liar: it was right.
			s.reason, s.lastErr, s.nextTry = "", "", time.Time{}
		}
	}
	d.mu.Unlock()
	for _, s := range newly {
		d.Mesh.Bad(sum, s)
		d.Logger.Warn().Str("file", x.name).Str("source", s.String()).Msg("source sent wrong bytes; banned for this file")
	}
}

// provenGood tells the mesh about the sources that wrote bytes of a file
// whose hash was right.
func (d *Downloader) provenGood(x *Download) {
	x.mu.Lock()
	var good []Source
	for _, s := range x.writers {
		if len(s.wrote) > 0 && s.liar == "" {
			good = append(good, s.Source)
		}
	}
	x.mu.Unlock()
	sum := x.sha1OrZero()
	for _, s := range good {
		d.Mesh.Good(sum, s)
	}
}

func (x *Download) sha1OrZero() protocol.SHA1 {
	x.d.mu.Lock()
	defer x.d.mu.Unlock()
	return x.sha1
}

// meshSources adds the mesh's sources of x (a download by SHA-1) and
// returns how many were new. d.mu held.
func (d *Downloader) meshSourcesLocked(x *Download) int {
	if d.Mesh == nil || x.sha1.IsZero() {
		return 0
	}
	// The mesh names its sources again and again: one we dropped stays
	// dropped (a 404 is not asked every pass).
	return x.mergeSources(d.Mesh.Sources(x.sha1), false)
}
