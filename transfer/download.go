package transfer

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"gnutella/firewall"
	"gnutella/protocol"
)

// Source is one place a file can be fetched from, as a QueryHit names it.
type Source struct {
	Addr        netip.AddrPort
	Index       uint32
	Name        string
	ServentID   protocol.GUID
	Push        bool // the hit said push (firewalled)
	PushProxies []netip.AddrPort
}

func (s Source) String() string {
	if s.Push || !s.Addr.IsValid() {
		return "push:" + s.ServentID.String()
	}
	return s.Addr.String()
}

// Request asks for one file. SHA1 may be zero when the hit had no URN: the
// file is then fetched by /get/<index>/<name> and checked by size only,
// unless a source announces its URN (X-Gnutella-Content-URN), which is then
// verified.
type Request struct {
	Name    string
	Size    int64
	SHA1    protocol.SHA1
	Sources []Source
}

// State is where a download stands.
type State string

const (
	StateQueued      State = "queued"      // waiting for a free download slot
	StateConnecting  State = "connecting"  // dialling or waiting for a GIV
	StateDownloading State = "downloading" // bytes are flowing
	StateWaiting     State = "waiting"     // every source is busy or failed lately; RetryAt says until when
	StateVerifying   State = "verifying"   // hashing the complete partial file
	StateDone        State = "done"        // verified and renamed into Dir (Path)
	StateFailed      State = "failed"      // given up (Error)
)

// Status is a snapshot of a download for lists and the control API.
type Status struct {
	Name    string        `json:"name"`
	Size    int64         `json:"size"`
	SHA1    protocol.SHA1 `json:"-"`
	URN     string        `json:"urn,omitempty"`
	Have    int64         `json:"have"`
	State   State         `json:"state"`
	Source  string        `json:"source,omitempty"`  // the source being used, or last used
	Sources int           `json:"sources"`           // usable sources left
	Error   string        `json:"error,omitempty"`   // the last error, or why it failed
	RetryAt time.Time     `json:"retry_at,omitzero"` // when waiting: the next attempt
	Path    string        `json:"path,omitempty"`    // when done: the finished file
	// SourceStates is every source of the download: where it stands and
	// why, for lists and the control API.
	SourceStates []SourceStatus `json:"source_states,omitempty"`
}

// SourceState is where one source of a download stands.
type SourceState string

const (
	SourceReady   SourceState = "ready"   // may be tried now
	SourceActive  SourceState = "active"  // the download is using it
	SourceWaiting SourceState = "waiting" // busy, too slow or failed lately; RetryAt says until when
	SourceDropped SourceState = "dropped" // not tried again (Error says why) unless a new Add names it
)

// SourceStatus is one source in a Status.
type SourceStatus struct {
	Addr    string      `json:"addr"` // Source.String(): ip:port, or push:<servent id>
	State   SourceState `json:"state"`
	Error   string      `json:"error,omitempty"` // its last error
	RetryAt time.Time   `json:"retry_at,omitzero"`
}

// Errors a download can end with (Download.Wait).
var (
	ErrClosed       = errors.New("transfer: downloader closed")
	ErrHashMismatch = errors.New("transfer: SHA-1 of the finished file does not match")
	ErrNoSources    = errors.New("transfer: no usable source left")
	// ErrBadRange is what a source that answers outside the rules of a
	// range request fails with (errors.Is on its error): a Content-Range
	// that is not the range asked for (or a sub-range starting where asked),
	// that ends past the announced size, or a Content-Length that disagrees.
	ErrBadRange = errors.New("transfer: source answered outside the range asked for")
)

// Downloader fetches files into Dir, several at once, from the sources of
// their Requests. Set the fields, call Start, Add requests, and Close.
type Downloader struct {
	// Dir is the download folder: finished files go here, partial files as
	// ".gnutella-partial-<sha1>". Nothing is ever written outside it.
	Dir string
	// Dial opens the connections to sources; a servent passes its
	// Transport. nil means firewall.TCPDialer.
	Dial firewall.Dialer
	// Push asks the servent to send a Push for src and returns the
	// connection a GIV arrived on, with its reader positioned after the
	// GIV's empty line. nil: push sources are skipped.
	Push func(ctx context.Context, src Source) (net.Conn, *bufio.Reader, error)
	// UserAgent is sent in every request ("gnutella/<version>"; default
	// DefaultUserAgent).
	UserAgent string
	// StateFile keeps the queue (JSON) so that it survives a restart; ""
	// means nothing is persisted.
	StateFile string
	// MaxActive is how many downloads run at once (DefaultMaxActive).
	MaxActive int
	// AddrPolicy says which source addresses are dialled directly; the
	// others are reached through a Push, since on the Internet a private
	// address means the source is behind a NAT. The zero value is the
	// Internet's; a testnet or a LAN allows loopback and private addresses.
	// A source whose address is in its Hostiles is dropped.
	AddrPolicy firewall.AddrPolicy
	// RetryAfter is the wait after a 503 without Retry-After
	// (DefaultRetryAfter). A Retry-After is always obeyed, never retried
	// sooner.
	RetryAfter time.Duration
	// ConnectTimeout bounds a direct connect (DefaultConnectTimeout);
	// PushTimeout bounds waiting for a GIV (DefaultPushTimeout);
	// StallTimeout bounds waiting for the response head or for the next
	// body bytes (DefaultStallTimeout).
	ConnectTimeout time.Duration
	PushTimeout    time.Duration
	StallTimeout   time.Duration
	// RequestTimeout bounds one request, head and body, however steadily a
	// source drips (DefaultRequestTimeout); a request it cuts after some
	// bytes is resumed at once, so a large file takes several.
	RequestTimeout time.Duration
	// MinRate (bytes/s) and RateWindow: while another download waits for
	// a slot, a source that sent less than MinRate on average over
	// RateWindow is left (it waits sourceBackoffMax) and frees the slot
	// (DefaultMinRate, DefaultRateWindow). A lone slow source is kept.
	MinRate    int64
	RateWindow time.Duration
	Logger     zerolog.Logger

	mu      sync.Mutex
	list    []*Download
	byKey   map[string]*Download
	started bool
	closed  bool
	active  int
	cancel  context.CancelFunc
	wake    chan struct{}
	wg      sync.WaitGroup
	saveMu  sync.Mutex
}

// Download is one file in the queue.
type Download struct {
	d       *Downloader
	key     string
	partial string // absolute path of the partial file
	size    int64
	have    atomic.Int64
	done    chan struct{}

	// guarded by d.mu
	name      string
	sha1      protocol.SHA1
	sources   []*source
	state     State
	err       error
	lastErr   string
	retryAt   time.Time
	current   string
	lastSrc   *source
	path      string
	running   bool
	badHashes int
}

// source is a Source with what we learnt about it.
type source struct {
	Source
	nextTry    time.Time
	failures   int // consecutive attempts without progress
	mismatches int // overlap mismatches
	dropped    bool
	lastErr    string
}

const partialPrefix = ".gnutella-partial-"

func (d *Downloader) defaults() {
	if d.MaxActive <= 0 {
		d.MaxActive = DefaultMaxActive
	}
	if d.RetryAfter <= 0 {
		d.RetryAfter = DefaultRetryAfter
	}
	if d.ConnectTimeout <= 0 {
		d.ConnectTimeout = DefaultConnectTimeout
	}
	if d.PushTimeout <= 0 {
		d.PushTimeout = DefaultPushTimeout
	}
	if d.StallTimeout <= 0 {
		d.StallTimeout = DefaultStallTimeout
	}
	if d.RequestTimeout <= 0 {
		d.RequestTimeout = DefaultRequestTimeout
	}
	if d.MinRate <= 0 {
		d.MinRate = DefaultMinRate
	}
	if d.RateWindow <= 0 {
		d.RateWindow = DefaultRateWindow
	}
	if d.UserAgent == "" {
		d.UserAgent = DefaultUserAgent
	}
	if d.byKey == nil {
		d.byKey = make(map[string]*Download)
	}
	if d.wake == nil {
		d.wake = make(chan struct{}, 1)
	}
}

// Start loads the saved queue (StateFile), creates Dir and starts
// downloading. It returns an error when Dir cannot be created or the state
// file cannot be read.
func (d *Downloader) Start(ctx context.Context) error {
	d.mu.Lock()
	if d.started || d.closed {
		d.mu.Unlock()
		return errors.New("transfer: downloader already started or closed")
	}
	d.defaults()
	d.mu.Unlock()
	if d.Dir == "" {
		return errors.New("transfer: Downloader.Dir is empty")
	}
	dir, err := filepath.Abs(d.Dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("transfer: download folder: %w", err)
	}
	d.mu.Lock()
	d.Dir = dir
	for _, x := range d.list { // added before Start
		x.partial = filepath.Join(dir, partialPrefix+x.key)
		x.have.Store(fileSize(x.partial))
	}
	d.mu.Unlock()
	if err := d.load(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	d.mu.Lock()
	d.started = true
	d.cancel = cancel
	d.wg.Add(1)
	d.mu.Unlock()
	go d.schedule(ctx)
	return nil
}

// Close stops every download (partial files stay for the next Start),
// saves the queue and returns when no goroutine of the Downloader is left.
func (d *Downloader) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	cancel := d.cancel
	d.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	d.wg.Wait()
	return d.save()
}

// Add queues a request. A request for a file already in the queue (same
// SHA1, or same name and size when the SHA1 is unknown) adds its sources to
// that download and returns it; a failed download with new sources is
// queued again, and so is a done download whose file is no longer there.
func (d *Downloader) Add(r Request) (*Download, error) {
	if r.Size < 0 {
		return nil, errors.New("transfer: negative size")
	}
	if len(r.Sources) == 0 {
		return nil, errors.New("transfer: request without sources")
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	d.defaults()
	key := downloadKey(r)
	x, dup := d.byKey[key]
	if dup {
		added := x.addSources(r.Sources)
		if added > 0 {
			x.retryAt = time.Time{}
		}
		gone := x.state == StateDone && !regularFile(x.path)
		if (added > 0 && x.state == StateFailed) || gone {
			// Failed with new sources, or done but the file was deleted
			// (or moved) since: download it again.
			x.state, x.err = StateQueued, nil
			x.badHashes = 0
			x.path = ""
			x.done = make(chan struct{})
			if gone {
				for _, s := range x.sources {
					s.dropped, s.failures, s.mismatches, s.nextTry = false, 0, 0, time.Time{}
				}
				if d.started {
					x.have.Store(fileSize(x.partial))
				}
			}
		}
	} else {
		x = d.newDownload(key, r, StateQueued)
		if d.started {
			x.partial = filepath.Join(d.Dir, partialPrefix+key)
			x.have.Store(fileSize(x.partial))
		}
		d.list = append(d.list, x)
		d.byKey[key] = x
	}
	d.mu.Unlock()
	d.poke()
	if err := d.save(); err != nil {
		d.Logger.Warn().Err(err).Msg("cannot save the download queue")
	}
	return x, nil
}

// List returns the status of every download, in the order they were added.
func (d *Downloader) List() []Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Status, 0, len(d.list))
	for _, x := range d.list {
		out = append(out, x.statusLocked())
	}
	return out
}

// Status returns a snapshot of the download.
func (x *Download) Status() Status {
	x.d.mu.Lock()
	defer x.d.mu.Unlock()
	return x.statusLocked()
}

func (x *Download) statusLocked() Status {
	s := Status{
		Name:    x.name,
		Size:    x.size,
		SHA1:    x.sha1,
		Have:    x.have.Load(),
		State:   x.state,
		Source:  x.current,
		RetryAt: x.retryAt,
		Path:    x.path,
		Error:   x.lastErr,
	}
	if !x.sha1.IsZero() {
		s.URN = x.sha1.String()
	}
	if x.err != nil {
		s.Error = x.err.Error()
	}
	if x.state != StateWaiting {
		s.RetryAt = time.Time{}
	}
	now := time.Now()
	for _, src := range x.sources {
		ss := SourceStatus{Addr: src.String(), State: SourceReady, Error: src.lastErr}
		switch {
		case src.dropped:
			ss.State = SourceDropped
		case x.running && src == x.lastSrc && (x.state == StateConnecting || x.state == StateDownloading):
			ss.State = SourceActive
		case src.nextTry.After(now):
			ss.State, ss.RetryAt = SourceWaiting, src.nextTry
		}
		if !src.dropped {
			s.Sources++
		}
		s.SourceStates = append(s.SourceStates, ss)
	}
	return s
}

// Done is closed when the download is finished or has failed.
func (x *Download) Done() <-chan struct{} {
	x.d.mu.Lock()
	defer x.d.mu.Unlock()
	return x.done
}

// Wait returns nil when the download is done, its error when it failed, or
// ctx's error.
func (x *Download) Wait(ctx context.Context) error {
	select {
	case <-x.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	x.d.mu.Lock()
	defer x.d.mu.Unlock()
	return x.err
}

// addSources merges srcs into x.sources and returns how many were new.
// Called with d.mu held (or before x is shared).
func (x *Download) addSources(srcs []Source) int {
	n := 0
outer:
	for _, s := range srcs {
		for _, old := range x.sources {
			same := old.Addr == s.Addr && old.Index == s.Index
			if s.Push || !s.Addr.IsValid() {
				same = old.ServentID == s.ServentID && old.Index == s.Index
			}
			if same {
				if old.dropped {
					old.dropped, old.failures, old.mismatches = false, 0, 0
					n++
				}
				continue outer
			}
		}
		x.sources = append(x.sources, &source{Source: s})
		n++
	}
	return n
}

// newDownload makes the Download of r under key, in the given state, with
// r's sources (a new request, or one read back from the queue file).
func (d *Downloader) newDownload(key string, r Request, state State) *Download {
	x := &Download{
		d:     d,
		key:   key,
		size:  r.Size,
		done:  make(chan struct{}),
		name:  SanitizeName(r.Name),
		sha1:  r.SHA1,
		state: state,
	}
	x.addSources(r.Sources)
	return x
}

// downloadKey names a download (and its partial file): the SHA-1 in base32,
// or, when unknown, "n" and a digest of the name and size.
func downloadKey(r Request) string {
	if !r.SHA1.IsZero() {
		return r.SHA1.Base32()
	}
	sum := sha1.Sum([]byte(strconv.FormatInt(r.Size, 10) + "\x00" + r.Name))
	return "n" + hex.EncodeToString(sum[:16])
}

// regularFile reports whether path names a regular file (not a symlink).
func regularFile(path string) bool {
	fi, err := os.Lstat(path)
	return path != "" && err == nil && fi.Mode().IsRegular()
}

func fileSize(path string) int64 {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return 0
	}
	return fi.Size()
}

func (d *Downloader) poke() {
	d.mu.Lock()
	w := d.wake
	d.mu.Unlock()
	if w == nil {
		return
	}
	select {
	case w <- struct{}{}:
	default:
	}
}

func (x *Download) terminal() bool { return x.state == StateDone || x.state == StateFailed }

// schedule starts downloads while there is room and their retry time has
// come, and sleeps until something changes or the next retry is due.
func (d *Downloader) schedule(ctx context.Context) {
	defer d.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		var next time.Time
		d.mu.Lock()
		for _, x := range d.list {
			if d.active >= d.MaxActive {
				break
			}
			if x.running || x.terminal() {
				continue
			}
			if x.retryAt.After(now) {
				if next.IsZero() || x.retryAt.Before(next) {
					next = x.retryAt
				}
				continue
			}
			x.running = true
			d.active++
			d.wg.Add(1)
			go d.run(ctx, x)
		}
		d.mu.Unlock()
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// run works on x until it is done, failed, has to wait for its sources, or
// the Downloader closes.
func (d *Downloader) run(ctx context.Context, x *Download) {
	defer d.wg.Done()
	defer func() {
		d.mu.Lock()
		x.running = false
		d.active--
		if !x.terminal() && x.state != StateWaiting {
			x.state = StateQueued
		}
		d.mu.Unlock()
		d.poke()
	}()
	for ctx.Err() == nil {
		if x.have.Load() >= x.size {
			if d.finish(x) {
				return
			}
			continue
		}
		src, wait := d.pick(x)
		if src == nil {
			d.mu.Lock()
			if wait.IsZero() {
				x.state = StateFailed
				x.err = ErrNoSources
				if x.lastErr != "" {
					x.err = fmt.Errorf("%w (last error: %s)", ErrNoSources, x.lastErr)
				}
				close(x.done)
			} else {
				x.state = StateWaiting
				x.retryAt = wait
			}
			d.mu.Unlock()
			_ = d.save()
			return
		}
		before := x.have.Load()
		err := d.fetch(ctx, x, src)
		if ctx.Err() != nil {
			return
		}
		var local *localError
		if errors.As(err, &local) {
			d.failNow(x, err)
			return
		}
		d.judge(x, src, x.have.Load() > before, err)
	}
}

// pick returns the first usable source whose time has come, or nil and the
// earliest time one will be (zero when no source is left).
func (d *Downloader) pick(x *Download) (*source, time.Time) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	var wait time.Time
	for _, s := range x.sources {
		if s.dropped {
			continue
		}
		if d.needsPush(s.Source) && (d.Push == nil || s.ServentID.IsZero()) {
			s.dropped = true
			s.lastErr = "firewalled source and no way to send a Push"
			if d.Push != nil {
				s.lastErr = "firewalled source without a servent ID"
			}
			x.lastErr = s.lastErr
			continue
		}
		if s.nextTry.After(now) {
			if wait.IsZero() || s.nextTry.Before(wait) {
				wait = s.nextTry
			}
			continue
		}
		return s, time.Time{}
	}
	return nil, wait
}

// needsPush reports whether src must be reached through a Push: it said so,
// or its address is not one we can dial.
func (d *Downloader) needsPush(src Source) bool {
	return src.Push || d.AddrPolicy.Check(src.Addr) != nil
}

// Kinds of fetch failure, which judge turns into a policy.
type (
	// busyError: 503; try again after the given time, not sooner.
	busyError struct {
		after time.Duration
		msg   string
	}
	// permanentError: this source will not give us the file. err, when
	// set, is the typed reason (ErrBadRange).
	permanentError struct {
		msg string
		err error
	}
	// mismatchError: the overlapping bytes differ from the partial file.
	mismatchError struct{ at int64 }
	// slowError: the source is too slow while other downloads wait; it
	// waits sourceBackoffMax.
	slowError struct{ msg string }
	// localError: our side failed (the partial file cannot be opened or
	// written); no source is to blame and the download fails.
	localError struct{ msg string }
)

func (e *localError) Error() string { return e.msg }
func (e *slowError) Error() string  { return e.msg }

func (e *busyError) Error() string      { return e.msg }
func (e *permanentError) Error() string { return e.msg }
func (e *permanentError) Unwrap() error { return e.err }

// badRange is the permanentError of a source that broke the range rules.
func badRange(format string, args ...any) error {
	return &permanentError{msg: ErrBadRange.Error() + ": " + fmt.Sprintf(format, args...), err: ErrBadRange}
}
func (e *mismatchError) Error() string {
	return fmt.Sprintf("resuming data mismatch at byte %d", e.at)
}

// judge applies the retry policy after an attempt on src.
func (d *Downloader) judge(x *Download, src *source, progressed bool, err error) {
	now := time.Now()
	var mm *mismatchError
	if errors.As(err, &mm) {
		// Discard the last Backout bytes (gtk-gnutella's back-off): our tail
		// may be bad (a crash before the data reached the disk). If the same
		// source disagrees again at the earlier place, it serves other bytes.
		keep := max(0, mm.at-Backout)
		if terr := os.Truncate(x.partial, keep); terr == nil || errors.Is(terr, fs.ErrNotExist) {
			x.have.Store(keep)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if progressed {
		src.failures = 0
	}
	if err == nil {
		src.lastErr = ""
		return
	}
	src.lastErr = err.Error()
	x.lastErr = src.lastErr
	var busy *busyError
	var perm *permanentError
	var slow *slowError
	switch {
	case errors.As(err, &slow):
		src.nextTry = now.Add(sourceBackoffMax)
	case errors.As(err, &busy):
		src.nextTry = now.Add(busy.after)
	case errors.As(err, &perm):
		src.dropped = true
	case mm != nil:
		src.mismatches++
		if src.mismatches >= 2 {
			src.dropped = true
		}
	case progressed:
		src.nextTry = now // cut off mid-transfer: resume at once
	default:
		src.failures++
		if src.failures >= 6 {
			src.dropped = true
			return
		}
		src.nextTry = now.Add(retryBackoff(src.failures))
	}
	d.Logger.Debug().Str("file", x.name).Str("source", src.String()).Err(err).Msg("download attempt ended")
}

// retryBackoff is the wait after n consecutive failures: 2 s, 8 s, 32 s,
// 2 min, 8 min, at most sourceBackoffMax.
func retryBackoff(n int) time.Duration {
	return min(2*time.Second<<(2*(n-1)), sourceBackoffMax)
}

func (d *Downloader) setState(x *Download, st State, src *source) {
	d.mu.Lock()
	x.state = st
	if src != nil {
		x.current = src.String()
		x.lastSrc = src
	}
	d.mu.Unlock()
}

// connect reaches src directly or through a Push. The returned reader holds
// anything the peer sent after its GIV.
func (d *Downloader) connect(ctx context.Context, src *source) (net.Conn, *bufio.Reader, error) {
	if err := d.AddrPolicy.CheckHostile(src.Addr); err != nil {
		// Neither dialled nor pushed (docs/protocol.md §8.6).
		return nil, nil, &permanentError{msg: err.Error()}
	}
	var direct error
	if !d.needsPush(src.Source) {
		dctx, cancel := context.WithTimeout(ctx, d.ConnectTimeout)
		conn, err := d.dial(dctx, src.Addr)
		cancel()
		if err == nil {
			return conn, bufio.NewReaderSize(conn, 4<<10), nil
		}
		if d.Push == nil || src.ServentID.IsZero() || ctx.Err() != nil {
			return nil, nil, err
		}
		direct = err
		d.Logger.Debug().Str("source", src.Addr.String()).Err(err).Msg("direct connect failed, trying a push")
	}
	if d.Push == nil {
		return nil, nil, &permanentError{msg: "firewalled source and no way to send a Push"}
	}
	pctx, cancel := context.WithTimeout(ctx, d.PushTimeout)
	defer cancel()
	conn, br, err := d.Push(pctx, src.Source)
	if err != nil {
		if direct != nil {
			return nil, nil, fmt.Errorf("connect: %w; push: %w", direct, err)
		}
		return nil, nil, fmt.Errorf("push: %w", err)
	}
	if br == nil {
		br = bufio.NewReaderSize(conn, 4<<10)
	}
	return conn, br, nil
}

func (d *Downloader) dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	if d.Dial != nil {
		return d.Dial.Dial(ctx, addr.String())
	}
	return firewall.TCPDialer{}.Dial(ctx, addr.String())
}

// fetch makes one request to src for the rest of the file and writes what
// arrives into the partial file. The partial file's size is what we have.
func (d *Downloader) fetch(ctx context.Context, x *Download, src *source) error {
	d.setState(x, StateConnecting, src)
	conn, br, err := d.connect(ctx, src)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	f, err := openPartial(x.partial)
	if err != nil {
		return &localError{"cannot open the partial file: " + err.Error()}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return &localError{err.Error()}
	}
	have := fi.Size()
	if have > x.size { // cannot happen unless someone wrote to it
		if err := f.Truncate(x.size); err != nil {
			return &localError{err.Error()}
		}
		have = x.size
	}
	x.have.Store(have)
	start := max(0, have-Overlap)

	d.mu.Lock()
	sum := x.sha1
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
	req = append(req, "Range: bytes="+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(x.size-1, 10)+"\r\n"...)
	if !sum.IsZero() {
		req = append(req, "X-Gnutella-Content-URN: "+sum.String()+"\r\n"...)
	}
	req = append(req, "Connection: close\r\n\r\n"...)
	deadline := time.Now().Add(d.RequestTimeout)
	_ = conn.SetWriteDeadline(earlier(time.Now().Add(d.StallTimeout), deadline))
	if _, err := conn.Write(req); err != nil {
		return fmt.Errorf("sending the request: %w", err)
	}

	_ = conn.SetReadDeadline(earlier(time.Now().Add(d.StallTimeout), deadline))
	code, _, reason, h, err := readResponseHead(br)
	if err != nil {
		var pe *protoError
		if errors.As(err, &pe) || protocol.IsHandshakeLimit(err) {
			return &permanentError{msg: "bad response: " + err.Error()}
		}
		return fmt.Errorf("reading the response: %w", err)
	}
	switch {
	case code == 503:
		after, ok := parseRetryAfter(h.Get("Retry-After"), time.Now())
		if !ok {
			after = d.RetryAfter
		}
		return &busyError{after, fmt.Sprintf("busy (503 %s), retry after %s", reason, after)}
	case code == 416:
		// We asked for the rest of a file of the size the hit gave: the
		// source has less of it (a partial source) or another size.
		return &busyError{sourceBackoffMax, "416 " + reason}
	case code == 200 || code == 206:
	case code >= 500:
		return fmt.Errorf("%d %s", code, reason)
	default:
		return &permanentError{msg: fmt.Sprintf("%d %s", code, reason)}
	}

	// Which bytes are coming: read Content-Range on every 206 (gtk-gnutella
	// answers an unsatisfiable range with a 206 of another range).
	var rs, re int64
	if code == 206 {
		a, b, total, ok := parseContentRange(h.Get("Content-Range"))
		if !ok {
			return &permanentError{msg: "206 without a valid Content-Range"}
		}
		if total >= 0 && total != x.size {
			return &permanentError{msg: fmt.Sprintf("the source's file has %d bytes, not %d", total, x.size)}
		}
		// Never past the announced size, whatever the source says (a
		// "0-999999999999/*" with an endless body must not grow the file).
		if b >= x.size {
			return badRange("Content-Range %d-%d ends past the file's %d bytes", a, b, x.size)
		}
		// A range starting before the one asked for is kept (gtk-gnutella
		// answers some ranges with a 206 of another, TestDownload-
		// ReadsContentRange): the bytes before have are compared, never
		// written, and it ends within the file.
		rs, re = a, b
	} else {
		rs, re = 0, x.size-1
	}
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := parseDigits(strings.TrimSpace(cl))
		if err != nil || n != re-rs+1 {
			if code == 200 {
				return &permanentError{msg: fmt.Sprintf("the source's file has %s bytes, not %d", cl, x.size), err: ErrBadRange}
			}
			return badRange("Content-Length %s disagrees with Content-Range %d-%d", cl, rs, re)
		}
	} else if code == 200 && x.size > 0 {
		return badRange("200 without Content-Length")
	}
	if te := h.Get("Transfer-Encoding"); te != "" && !strings.EqualFold(te, "identity") {
		return &permanentError{msg: "Transfer-Encoding " + te + " is not spoken here"}
	}
	if urn := firstURN(h); !urn.IsZero() {
		d.mu.Lock()
		known := x.sha1
		if known.IsZero() {
			x.sha1 = urn // verify against what the source says it serves
		}
		d.mu.Unlock()
		if !known.IsZero() && urn != known {
			return &permanentError{msg: "the source serves " + urn.String()}
		}
	}
	if rs > start || re < have {
		// A range that does not start where we asked (within the file): the
		// source has other parts of it. No byte of it is read.
		return &busyError{sourceBackoffMax, fmt.Sprintf("the source offers bytes %d-%d, we asked from %d", rs, re, start)}
	}

	d.setState(x, StateDownloading, src)
	return d.receive(conn, br, f, x, rs, re, have, deadline)
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// othersWaiting reports whether every slot is taken and a download other
// than x is waiting for one.
func (d *Downloader) othersWaiting(x *Download) bool {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.active < d.MaxActive {
		return false
	}
	for _, y := range d.list {
		if y != x && !y.running && !y.terminal() && !y.retryAt.After(now) {
			return true
		}
	}
	return false
}

// receive copies the response body, bytes rs..re, into f: the bytes we
// already have (before have) are compared, the rest appended. It ends at
// the request's deadline, and early when the source is slower than MinRate
// over RateWindow while other downloads wait for a slot.
func (d *Downloader) receive(conn net.Conn, br *bufio.Reader, f *os.File, x *Download, rs, re, have int64, deadline time.Time) error {
	buf := make([]byte, 64<<10)
	var cmp []byte
	pos := rs
	winStart, winPos := time.Now(), pos
	for pos <= re {
		now := time.Now()
		if el := now.Sub(winStart); el >= d.RateWindow {
			rate := float64(pos-winPos) / el.Seconds()
			if rate < float64(d.MinRate) && d.othersWaiting(x) {
				return &slowError{fmt.Sprintf("too slow: %.0f bytes/s over %s, below %d, while other downloads wait", rate, el.Round(time.Millisecond), d.MinRate)}
			}
			winStart, winPos = now, pos
		}
		if !now.Before(deadline) {
			return fmt.Errorf("request took longer than %s (RequestTimeout), at byte %d of %d-%d", d.RequestTimeout, pos, rs, re)
		}
		_ = conn.SetReadDeadline(earlier(now.Add(d.StallTimeout), deadline))
		n, err := br.Read(buf[:min(int64(len(buf)), re-pos+1)])
		chunk := buf[:n]
		if pos < have && n > 0 {
			k := int(min(int64(n), have-pos))
			if cmp == nil {
				cmp = make([]byte, len(buf))
			}
			if _, rerr := f.ReadAt(cmp[:k], pos); rerr != nil {
				return &localError{"reading the partial file: " + rerr.Error()}
			}
			for i := 0; i < k; i++ {
				if cmp[i] != chunk[i] {
					return &mismatchError{at: have}
				}
			}
			chunk = chunk[k:]
			pos += int64(k)
		}
		if len(chunk) > 0 {
			if _, werr := f.WriteAt(chunk, pos); werr != nil {
				return &localError{"writing the partial file: " + werr.Error()}
			}
			pos += int64(len(chunk))
			x.have.Store(pos)
		}
		if err != nil {
			if pos > re {
				break
			}
			if err == io.EOF {
				return fmt.Errorf("connection closed at byte %d of %d-%d", pos, rs, re)
			}
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(deadline) {
				return fmt.Errorf("request took longer than %s (RequestTimeout), at byte %d of %d-%d", d.RequestTimeout, pos, rs, re)
			}
			return err
		}
	}
	return nil
}

// firstURN returns the SHA-1 of the first X-Gnutella-Content-URN (or
// X-Content-URN) that names one.
func firstURN(h protocol.Headers) protocol.SHA1 {
	for _, name := range []string{"X-Gnutella-Content-URN", "X-Content-URN"} {
		for _, v := range h.Values(name) {
			for _, part := range strings.Split(v, ",") {
				if s, err := protocol.ParseURN(strings.TrimSpace(part)); err == nil {
					return s
				}
			}
		}
	}
	return protocol.SHA1{}
}

// openPartial opens (or creates) the partial file, refusing anything but a
// regular file (a symlink planted in the folder is not followed).
func openPartial(path string) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", filepath.Base(path))
	}
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|noFollow, 0o644)
}

// finish verifies the complete partial file and moves it into place. It
// returns true when x is done or failed, false to download it again (a bad
// hash with other sources left).
func (d *Downloader) finish(x *Download) bool {
	d.setState(x, StateVerifying, nil)
	d.mu.Lock()
	want := x.sha1
	d.mu.Unlock()
	f, err := openPartial(x.partial)
	if err != nil {
		d.failNow(x, fmt.Errorf("cannot open the partial file: %w", err))
		return true
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		d.failNow(x, fmt.Errorf("verifying: %w", err))
		return true
	}
	got, err := hashFile(f)
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if err != nil {
		d.failNow(x, fmt.Errorf("verifying: %w", err))
		return true
	}
	if fi.Size() != x.size || (!want.IsZero() && got != want) {
		// Never keep a complete-looking file with a bad hash.
		_ = os.Remove(x.partial)
		x.have.Store(0)
		d.mu.Lock()
		x.badHashes++
		x.lastErr = fmt.Sprintf("%v: got %s", ErrHashMismatch, got)
		if fi.Size() != x.size {
			x.lastErr = fmt.Sprintf("%v: the partial file has %d bytes, not %d", ErrHashMismatch, fi.Size(), x.size)
		}
		if x.lastSrc != nil {
			x.lastSrc.dropped = true // it sent the last bytes; suspect it
			x.lastSrc.lastErr = x.lastErr
		}
		left := 0
		for _, s := range x.sources {
			if !s.dropped {
				left++
			}
		}
		giveUp := x.badHashes >= 3 || left == 0
		d.mu.Unlock()
		d.Logger.Warn().Str("file", x.name).Str("want", want.String()).Str("got", got.String()).Msg("finished download has a bad hash; partial file deleted")
		if giveUp {
			d.failNow(x, ErrHashMismatch)
			return true
		}
		return false
	}
	d.mu.Lock()
	name := x.name
	d.mu.Unlock()
	final, err := placeFinal(d.Dir, x.partial, name)
	if err != nil {
		d.failNow(x, fmt.Errorf("moving the finished file into place: %w", err))
		return true
	}
	d.mu.Lock()
	x.state = StateDone
	x.path = final
	x.err = nil
	x.lastErr = ""
	close(x.done)
	d.mu.Unlock()
	d.Logger.Info().Str("file", final).Str("urn", want.String()).Msg("download complete")
	_ = d.save()
	return true
}

func (d *Downloader) failNow(x *Download, err error) {
	d.mu.Lock()
	if !x.terminal() {
		x.state = StateFailed
		x.err = err
		close(x.done)
	}
	d.mu.Unlock()
	d.Logger.Warn().Str("file", x.name).Err(err).Msg("download failed")
	_ = d.save()
}

// hashFile returns the SHA-1 of the whole of f (finish checks its size
// apart: a hash of the first bytes only would pass a longer file).
func hashFile(f *os.File) (protocol.SHA1, error) {
	h := sha1.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, 1<<62)); err != nil {
		return protocol.SHA1{}, err
	}
	var s protocol.SHA1
	copy(s[:], h.Sum(nil))
	return s, nil
}

// placeFinal gives the verified partial file its final name in dir: name,
// or "name (1).ext", "name (2).ext", ... when taken. It never replaces an
// existing file (a hard link fails on an existing name) and never leaves
// dir: name is sanitised and the result is checked.
func placeFinal(dir, partial, name string) (string, error) {
	name = SanitizeName(name)
	ext := filepath.Ext(name)
	base := strings.TrimSuffix(name, ext)
	for i := 0; i < 1000; i++ {
		cand := name
		if i > 0 {
			cand = fmt.Sprintf("%s (%d)%s", base, i, ext)
		}
		full := filepath.Join(dir, cand)
		if filepath.Dir(full) != filepath.Clean(dir) || strings.HasPrefix(cand, partialPrefix) {
			return "", fmt.Errorf("unsafe file name %q", cand)
		}
		err := os.Link(partial, full)
		if err == nil {
			_ = os.Remove(partial)
			return full, nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		// No hard links here (some file systems): rename when the name is free.
		if _, serr := os.Lstat(full); errors.Is(serr, fs.ErrNotExist) {
			if rerr := os.Rename(partial, full); rerr != nil {
				return "", rerr
			}
			return full, nil
		}
	}
	return "", fmt.Errorf("no free name for %q", name)
}
