package transfer

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
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
// file is then fetched by /get/<index>/<name> from one source at a time and
// checked by size only, unless a source announces its URN
// (X-Gnutella-Content-URN), which is then verified.
type Request struct {
	Name     string
	Size     int64
	SHA1     protocol.SHA1
	Sources  []Source
	Priority int // higher runs first
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
	StatePaused      State = "paused"      // stopped by the user; the partial file stays
	StateCancelled   State = "cancelled"   // stopped by the user; the partial file is deleted
)

// Status is a snapshot of a download for lists and the control API.
type Status struct {
	ID       string        `json:"id"`
	Name     string        `json:"name"`
	Size     int64         `json:"size"`
	SHA1     protocol.SHA1 `json:"-"`
	URN      string        `json:"urn,omitempty"`
	Have     int64         `json:"have"`
	State    State         `json:"state"`
	Priority int           `json:"priority"`
	Source   string        `json:"source,omitempty"`  // a source being used, or the last used
	Sources  int           `json:"sources"`           // usable sources left
	Error    string        `json:"error,omitempty"`   // the last error, or why it failed
	RetryAt  time.Time     `json:"retry_at,omitzero"` // when waiting: the next attempt
	Path     string        `json:"path,omitempty"`    // when done: the finished file
	// ActiveSources is how many sources are being fetched from now;
	// Speed is the recent download rate in bytes/s, all sources together.
	ActiveSources int   `json:"active_sources"`
	Speed         int64 `json:"speed"`
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
	SourceQueued  SourceState = "queued"  // it holds a PARQ place for us (Queue); RetryAt is when we ask again
	SourceDropped SourceState = "dropped" // not tried again (Reason says why) unless a new Add names it
)

// SourceStatus is one source in a Status.
type SourceStatus struct {
	Addr    string      `json:"addr"` // Source.String(): ip:port, or push:<servent id>
	State   SourceState `json:"state"`
	Error   string      `json:"error,omitempty"`  // its last error, as it happened
	Reason  string      `json:"reason,omitempty"` // why it waits or was dropped, in plain words
	Queue   string      `json:"queue,omitempty"`  // its PARQ place: "3 of 7"
	RetryAt time.Time   `json:"retry_at,omitzero"`
	Have    int64       `json:"have"`  // bytes received from it
	Speed   int64       `json:"speed"` // its recent rate, bytes/s
}

// Errors a download can end with (Download.Wait), and the errors of the
// control methods.
var (
	ErrClosed       = errors.New("transfer: downloader closed")
	ErrHashMismatch = errors.New("transfer: SHA-1 of the finished file does not match")
	ErrNoSources    = errors.New("transfer: no usable source left")
	// ErrBadRange is what a source that answers outside the rules of a
	// range request fails with (errors.Is on its error): a Content-Range
	// that does not hold the range asked for, that ends past the
	// announced size, or a Content-Length that disagrees.
	ErrBadRange = errors.New("transfer: source answered outside the range asked for")
	// ErrUnknownDownload: no download has this ID.
	ErrUnknownDownload = errors.New("transfer: no such download")
	// ErrWrongState: the download is not in a state the call applies to
	// (resume of a done download, pause of a failed one).
	ErrWrongState = errors.New("transfer: the download is not in a state that allows this")
	// ErrStillActive: Remove of a download that is not done, failed or
	// cancelled.
	ErrStillActive = errors.New("transfer: the download is still active: cancel it first")
	// ErrCancelled is what Wait returns for a cancelled download.
	ErrCancelled = errors.New("transfer: download cancelled")
)

// Downloader fetches files into Dir, several at once, each from several
// sources at once (swarm.go). Set the fields, call Start, Add requests,
// and Close.
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
	// MaxSources is how many sources one download fetches from at once
	// (DefaultMaxSources). A download without a SHA-1 uses one.
	MaxSources int
	// ChunkSize is the most one request asks for (DefaultChunkSize).
	ChunkSize int64
	// Mesh is the download mesh (dmesh.go): the downloader takes more
	// sources from it (Sources) when a download has fewer than
	// MaxSources at work and while it waits, tells it what each answer
	// says (Learn) and which sources proved good or lied (Good, Bad), and
	// sends its X-Alt/X-NAlt in requests. nil: none of that.
	Mesh *Mesh
	// SharePartials makes PartialFile answer, so that a Server with
	// Partials set serves the parts of files being downloaded.
	SharePartials bool
	// AddrPolicy says which source addresses are dialled directly; the
	// others are reached through a Push, since on the Internet a private
	// address means the source is behind a NAT. The zero value is the
	// Internet's; a testnet or a LAN allows loopback and private addresses.
	// A source whose address is in its Hostiles is dropped.
	AddrPolicy firewall.AddrPolicy
	// RetryAfter is the wait after a 503 without Retry-After
	// (DefaultRetryAfter). A Retry-After is always obeyed, never retried
	// sooner, and one of 0 counts as 1 s.
	RetryAfter time.Duration
	// ConnectTimeout bounds a direct connect (DefaultConnectTimeout);
	// PushTimeout bounds waiting for a GIV (DefaultPushTimeout);
	// StallTimeout bounds waiting for the response head or for the next
	// body bytes (DefaultStallTimeout).
	ConnectTimeout time.Duration
	PushTimeout    time.Duration
	StallTimeout   time.Duration
	// RequestTimeout bounds one request, head and body, however steadily a
	// source drips (DefaultRequestTimeout); what it left is asked again.
	RequestTimeout time.Duration
	// MinRate (bytes/s) and RateWindow: a source that sent less than
	// MinRate on average over RateWindow is left (it waits
	// sourceBackoffMax) while another source of the file sits idle or
	// another download waits for a slot (DefaultMinRate,
	// DefaultRateWindow). A lone slow source is kept.
	MinRate    int64
	RateWindow time.Duration
	Logger     zerolog.Logger

	mu      sync.Mutex
	list    []*Download
	byKey   map[string]*Download
	byID    map[string]*Download
	started bool
	closed  bool
	active  int
	ctx     context.Context
	cancel  context.CancelFunc
	wake    chan struct{}
	wg      sync.WaitGroup
	saveMu  sync.Mutex
	// lastSave is when saveSoon last saved (UnixNano).
	lastSave atomic.Int64
}

// Download is one file in the queue.
type Download struct {
	d       *Downloader
	key     string
	id      string
	partial string // absolute path of the partial file
	size    int64
	haveN   atomic.Int64 // bytes in have, for Status without x.mu

	// guarded by d.mu
	done      chan struct{}
	name      string
	sha1      protocol.SHA1
	sources   []*source
	state     State
	err       error
	lastErr   string
	retryAt   time.Time
	current   string
	path      string
	running   bool
	stop      context.CancelFunc // stops the running download
	kick      chan struct{}      // new sources for the running download
	badHashes int
	priority  int

	// guarded by mu (swarm.go, partial.go)
	mu          sync.Mutex
	have        Ranges       // bytes written to the partial file
	claims      []*claim     // requests in flight
	checks      []*checkSpan // after a bad hash: bytes to compare with another source
	agrees      map[*source]bool
	against     []srcPair // sources whose bytes disagreed
	writers     []*source // sources that wrote bytes this run
	partials    []*source // sources that said which ranges they have
	agreedRound bool      // every check so far agreed (no liar among them)
	changed     chan struct{}
	idle        int // workers waiting for a chunk
}

// source is a Source with what we learnt about it.
type source struct {
	Source
	// guarded by d.mu
	nextTry    time.Time
	failures   int // consecutive attempts without progress
	mismatches int // overlap mismatches with bytes of no known source
	dropped    bool
	banned     bool // sent wrong bytes: never used again for this file
	active     bool // a worker uses it
	lastErr    string
	reason     string
	queued     *Queued // its PARQ place
	// guarded by x.mu
	avail Ranges // X-Available-Ranges: what a partial source has; nil: unknown (all)
	wrote Ranges // bytes of the partial file it wrote this run
	liar  string // why it is banned for wrong bytes, once found out
	after int64  // where its last request ended: its next goes on from there
	fwalt bool   // its answers named fwalt: our requests carry X-Falt
	// when avail was last told, how much it covered, and the rate it grew at
	availAt      time.Time
	availCovered int64
	availRate    float64
	// counters
	got  atomic.Int64
	rate meter
}

const partialPrefix = ".gnutella-partial-"

func (d *Downloader) defaults() {
	if d.MaxActive <= 0 {
		d.MaxActive = DefaultMaxActive
	}
	if d.MaxSources <= 0 {
		d.MaxSources = DefaultMaxSources
	}
	if d.ChunkSize <= 0 {
		d.ChunkSize = DefaultChunkSize
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
		d.byID = make(map[string]*Download)
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
		x.setHave(haveFromFile(x.partial, x.size))
	}
	d.mu.Unlock()
	if err := d.load(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	d.mu.Lock()
	d.started = true
	d.ctx = ctx
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
			if x.kick != nil {
				select {
				case x.kick <- struct{}{}:
				default:
				}
			}
		}
		gone := x.state == StateDone && !regularFile(x.path)
		if (added > 0 && x.state == StateFailed) || gone {
			// Failed with new sources, or done but the file was deleted
			// (or moved) since: download it again.
			x.requeueLocked(gone)
		}
	} else {
		x = d.newDownload(key, r, StateQueued)
		if d.started {
			x.partial = filepath.Join(d.Dir, partialPrefix+key)
			x.setHave(haveFromFile(x.partial, x.size))
		}
		d.list = append(d.list, x)
		d.byKey[key] = x
		d.byID[x.id] = x
	}
	d.mu.Unlock()
	d.poke()
	if err := d.save(); err != nil {
		d.Logger.Warn().Err(err).Msg("cannot save the download queue")
	}
	return x, nil
}

// requeueLocked queues a failed, cancelled or done download again; fresh
// forgets what its sources did (their failures and drops, not a ban for
// wrong bytes). d.mu held.
func (x *Download) requeueLocked(fresh bool) {
	x.state, x.err = StateQueued, nil
	x.badHashes = 0
	x.path = ""
	x.retryAt = time.Time{}
	x.done = make(chan struct{})
	for _, s := range x.sources {
		s.failures, s.nextTry = 0, time.Time{}
		if fresh && !s.banned {
			s.dropped, s.mismatches, s.reason = false, 0, ""
		}
	}
	if x.d.started {
		// What is known of the partial file stays (it may have holes), as
		// far as the file is still there.
		x.mu.Lock()
		x.have = x.have.Intersect(haveFromFile(x.partial, x.size))
		x.haveN.Store(x.have.Covered())
		x.mu.Unlock()
	}
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

// Get returns the status of the download with this ID.
func (d *Downloader) Get(id string) (Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	x := d.byID[id]
	if x == nil {
		return Status{}, ErrUnknownDownload
	}
	return x.statusLocked(), nil
}

// Pause stops a download and keeps its partial file; it stays paused
// (across restarts too) until Resume. Pausing a paused download does
// nothing; a done, failed or cancelled one gives ErrWrongState.
func (d *Downloader) Pause(id string) error {
	return d.control(id, func(x *Download) error {
		switch {
		case x.state == StatePaused:
			return nil
		case x.terminal():
			return ErrWrongState
		}
		x.state = StatePaused
		x.retryAt = time.Time{}
		if x.stop != nil {
			x.stop()
		}
		return nil
	})
}

// Resume queues a paused download again; a failed or cancelled one is
// started again too (a cancelled one from nothing). A done or running
// download gives ErrWrongState.
func (d *Downloader) Resume(id string) error {
	return d.control(id, func(x *Download) error {
		switch x.state {
		case StatePaused:
			x.state = StateQueued
			return nil
		case StateFailed, StateCancelled:
			x.requeueLocked(true)
			return nil
		}
		return ErrWrongState
	})
}

// Cancel stops a download and deletes its partial file; it stays in the
// list, cancelled, until Remove. Wait returns ErrCancelled. A done or
// cancelled download gives ErrWrongState.
func (d *Downloader) Cancel(id string) error {
	return d.control(id, func(x *Download) error {
		if x.state == StateDone || x.state == StateCancelled {
			return ErrWrongState
		}
		wasOpen := x.state != StateFailed
		x.state = StateCancelled
		x.err = ErrCancelled
		x.retryAt = time.Time{}
		if wasOpen {
			close(x.done)
		}
		if x.stop != nil {
			x.stop() // run deletes the file once its workers are gone
		} else if !x.running {
			x.removePartial()
		}
		return nil
	})
}

// Remove forgets a done, failed or cancelled download (a finished file
// stays; the partial file of a failed one is deleted). Others give
// ErrStillActive.
func (d *Downloader) Remove(id string) error {
	return d.control(id, func(x *Download) error {
		switch x.state {
		case StateDone, StateFailed, StateCancelled:
		default:
			return ErrStillActive
		}
		if x.state != StateDone {
			x.removePartial()
		}
		d.list = slices.DeleteFunc(d.list, func(y *Download) bool { return y == x })
		delete(d.byKey, x.key)
		delete(d.byID, x.id)
		return nil
	})
}

// SetPriority sets a download's priority: of the queued downloads, those
// with a higher priority get the free slots first.
func (d *Downloader) SetPriority(id string, p int) error {
	return d.control(id, func(x *Download) error {
		x.priority = p
		return nil
	})
}

// control runs f on the download id under d.mu, then saves the queue and
// wakes the scheduler.
func (d *Downloader) control(id string, f func(x *Download) error) error {
	d.mu.Lock()
	d.defaults()
	x := d.byID[id]
	if x == nil {
		d.mu.Unlock()
		return ErrUnknownDownload
	}
	err := f(x)
	d.mu.Unlock()
	if err != nil {
		return err
	}
	d.poke()
	if err := d.save(); err != nil {
		d.Logger.Warn().Err(err).Msg("cannot save the download queue")
	}
	return nil
}

// removePartial deletes the partial file and forgets what it held.
func (x *Download) removePartial() {
	if x.partial != "" {
		_ = os.Remove(x.partial)
	}
	x.setHave(nil)
}

// ID is the download's short, stable name (8 hex digits) for the control
// API.
func (x *Download) ID() string { return x.id }

// Status returns a snapshot of the download.
func (x *Download) Status() Status {
	x.d.mu.Lock()
	defer x.d.mu.Unlock()
	return x.statusLocked()
}

func (x *Download) statusLocked() Status {
	s := Status{
		ID:       x.id,
		Name:     x.name,
		Size:     x.size,
		SHA1:     x.sha1,
		Have:     x.haveN.Load(),
		State:    x.state,
		Priority: x.priority,
		Source:   x.current,
		RetryAt:  x.retryAt,
		Path:     x.path,
		Error:    x.lastErr,
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
		ss := SourceStatus{Addr: src.String(), State: SourceReady, Error: src.lastErr, Reason: src.reason, Have: src.got.Load()}
		switch {
		case src.dropped:
			ss.State = SourceDropped
		case src.active:
			ss.State = SourceActive
			ss.Speed = int64(src.rate.rate(now))
			s.ActiveSources++
			s.Speed += ss.Speed
		case src.queued != nil && src.nextTry.After(now):
			ss.State, ss.RetryAt = SourceQueued, src.nextTry
		case src.nextTry.After(now):
			ss.State, ss.RetryAt = SourceWaiting, src.nextTry
		}
		if src.queued != nil && !src.dropped {
			ss.Queue = strconv.Itoa(src.queued.Position)
			if src.queued.Length > 0 {
				ss.Queue += " of " + strconv.Itoa(src.queued.Length)
			}
		}
		if ss.State == SourceDropped || ss.State == SourceWaiting {
			if ss.Reason == "" {
				ss.Reason = src.lastErr
			}
			if ss.Reason == "" {
				ss.Reason = "no reason recorded"
			}
		}
		if !src.dropped {
			s.Sources++
		}
		s.SourceStates = append(s.SourceStates, ss)
	}
	return s
}

// Done is closed when the download is finished, has failed or was
// cancelled.
func (x *Download) Done() <-chan struct{} {
	x.d.mu.Lock()
	defer x.d.mu.Unlock()
	return x.done
}

// Wait returns nil when the download is done, its error when it failed,
// ErrCancelled when it was cancelled, or ctx's error.
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

// addSources merges srcs into x.sources and returns how many were new (or
// dropped and now named again: a new hit or request is a new chance). A
// source banned for wrong bytes stays banned. Called with d.mu held (or
// before x is shared).
func (x *Download) addSources(srcs []Source) int {
	return x.mergeSources(srcs, true)
}

// mergeSources adds the sources of srcs not known yet; revive also takes
// back the dropped ones it names (not the banned). d.mu held.
func (x *Download) mergeSources(srcs []Source, revive bool) int {
	n := 0
outer:
	for _, s := range srcs {
		for _, old := range x.sources {
			if sameSource(old.Source, s, !x.sha1.IsZero()) {
				if revive && old.dropped && !old.banned {
					old.dropped, old.failures, old.mismatches, old.reason = false, 0, 0, ""
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

// sameSource reports whether a and b are one source of a file. By URN
// (byURN) the index does not matter: /uri-res names the file, and the mesh
// knows no index.
func sameSource(a, b Source, byURN bool) bool {
	sameIndex := byURN || a.Index == b.Index
	if b.Push || !b.Addr.IsValid() {
		return a.ServentID == b.ServentID && sameIndex
	}
	return a.Addr == b.Addr && sameIndex
}

// newDownload makes the Download of r under key, in the given state, with
// r's sources (a new request, or one read back from the queue file).
func (d *Downloader) newDownload(key string, r Request, state State) *Download {
	x := &Download{
		d:        d,
		key:      key,
		id:       d.newID(),
		size:     r.Size,
		done:     make(chan struct{}),
		name:     SanitizeName(r.Name),
		sha1:     r.SHA1,
		state:    state,
		priority: r.Priority,
	}
	x.addSources(r.Sources)
	return x
}

// newID returns 8 random hex digits no download has. d.mu held.
func (d *Downloader) newID() string {
	for {
		var b [4]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		if d.byID[id] == nil {
			return id
		}
	}
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

func (x *Download) terminal() bool {
	return x.state == StateDone || x.state == StateFailed || x.state == StateCancelled
}

// schedule starts downloads while there is room and their retry time has
// come, higher priorities first, and sleeps until something changes or the
// next retry is due.
func (d *Downloader) schedule(ctx context.Context) {
	defer d.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		var next time.Time
		d.mu.Lock()
		order := slices.Clone(d.list)
		slices.SortStableFunc(order, func(a, b *Download) int { return b.priority - a.priority })
		for _, x := range order {
			if d.active >= d.MaxActive {
				break
			}
			if x.running || x.terminal() || x.state == StatePaused {
				continue
			}
			if x.retryAt.After(now) && d.meshSourcesLocked(x) > 0 {
				x.retryAt = time.Time{} // the mesh named a new source: try it now
			}
			if x.retryAt.After(now) {
				if next.IsZero() || x.retryAt.Before(next) {
					next = x.retryAt
				}
				if d.Mesh != nil && !x.sha1.IsZero() && (next.IsZero() || now.Add(meshPoll).Before(next)) {
					next = now.Add(meshPoll) // look at the mesh again while it waits
				}
				continue
			}
			x.running = true
			xctx, stop := context.WithCancel(ctx)
			x.stop = stop
			d.active++
			d.wg.Add(1)
			go d.run(xctx, x)
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

// needsPush reports whether src must be reached through a Push: it said so,
// or its address is not one we can dial.
func (d *Downloader) needsPush(src Source) bool {
	return src.Push || d.AddrPolicy.Check(src.Addr) != nil
}

func (d *Downloader) setState(x *Download, st State, src *source) {
	d.mu.Lock()
	if !x.terminal() && x.state != StatePaused {
		x.state = st
	}
	if src != nil {
		x.current = src.String()
	}
	d.mu.Unlock()
}

// Kinds of fetch failure, which judge turns into a policy.
type (
	// busyError: 503 or nothing we need; try again after the given time,
	// not sooner.
	busyError struct {
		after time.Duration
		msg   string
	}
	// queuedError: 503 with a PARQ place; ask again after the given time
	// with the place's ID. Not a failure.
	queuedError struct {
		q     Queued
		after time.Duration
	}
	// permanentError: this source will not give us the file. err, when
	// set, is the typed reason (ErrBadRange).
	permanentError struct {
		msg string
		err error
	}
	// mismatchError: bytes differ from what the partial file holds at
	// at; writer is the source that wrote those (nil: an earlier run).
	mismatchError struct {
		at     int64
		writer *source
	}
	// slowError: the source is too slow while others wait; it waits
	// sourceBackoffMax.
	slowError struct{ msg string }
	// localError: our side failed (the partial file cannot be opened or
	// written); no source is to blame and the download fails.
	localError struct{ msg string }
)

func (e *localError) Error() string     { return e.msg }
func (e *slowError) Error() string      { return e.msg }
func (e *busyError) Error() string      { return e.msg }
func (e *permanentError) Error() string { return e.msg }
func (e *permanentError) Unwrap() error { return e.err }
func (e *queuedError) Error() string {
	return fmt.Sprintf("queued (PARQ position %d), asking again in %s", e.q.Position, e.after)
}

// badRange is the permanentError of a source that broke the range rules.
func badRange(format string, args ...any) error {
	return &permanentError{msg: ErrBadRange.Error() + ": " + fmt.Sprintf(format, args...), err: ErrBadRange}
}
func (e *mismatchError) Error() string {
	return fmt.Sprintf("data mismatch at byte %d", e.at)
}

// judge applies the retry policy after a worker on src ended with err
// (nil: it had nothing more to do). progressed says it delivered bytes.
func (d *Downloader) judge(x *Download, src *source, progressed bool, err error) {
	now := time.Now()
	var mm *mismatchError
	if errors.As(err, &mm) && mm.writer == nil {
		// Bytes of an earlier run disagree: discard Backout bytes before
		// the end of what we had there (gtk-gnutella's back-off; our tail
		// may be bad after a crash). If the same source disagrees again at
		// the earlier place, it serves other bytes.
		x.backout(mm.at)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	src.active = false
	if progressed {
		src.failures = 0
	}
	if err == nil {
		src.lastErr, src.reason = "", ""
		return
	}
	src.lastErr = err.Error()
	x.lastErr = src.lastErr
	if src.banned {
		return // found lying: its reason says so, whatever it did since
	}
	var busy *busyError
	var queued *queuedError
	var perm *permanentError
	var slow *slowError
	switch {
	case errors.As(err, &queued):
		src.queued = &queued.q
		src.nextTry = now.Add(queued.after)
		src.reason = fmt.Sprintf("queued by the source at place %d, asking again at %s", queued.q.Position, src.nextTry.Format(time.TimeOnly))
	case errors.As(err, &slow):
		src.nextTry = now.Add(sourceBackoffMax)
		src.reason = slow.msg
	case errors.As(err, &busy):
		src.nextTry = now.Add(busy.after)
		src.reason = busy.msg
	case errors.As(err, &perm):
		src.dropped = true
		src.reason = perm.msg
	case mm != nil:
		if mm.writer != nil {
			// Two sources disagree; the check after the hash decides.
			src.nextTry = now.Add(time.Second)
			src.reason = disagreeReason
			return
		}
		src.mismatches++
		src.reason = fmt.Sprintf("its bytes did not match what we had at byte %d", mm.at)
		if src.mismatches >= 2 {
			src.dropped = true
			src.reason = fmt.Sprintf("its bytes did not match what we had, twice (last at byte %d)", mm.at)
		}
	case progressed:
		src.nextTry = now // cut off mid-transfer: resume at once
		src.reason = ""
	default:
		src.failures++
		src.reason = "failed: " + src.lastErr
		if src.failures >= 6 {
			src.dropped = true
			src.reason = fmt.Sprintf("failed %d times in a row, last: %s", src.failures, src.lastErr)
			return
		}
		src.nextTry = now.Add(retryBackoff(src.failures))
	}
	d.Logger.Debug().Str("file", x.name).Str("source", src.String()).Err(err).Msg("download attempt ended")
}

// disagreeReason is the reason of a source whose bytes differ from another
// source's, until the liar is known.
const disagreeReason = "its bytes disagree with another source's; checking which is right"

// retryBackoff is the wait after n consecutive failures: 2 s, 8 s, 32 s,
// 2 min, 8 min, at most sourceBackoffMax.
func retryBackoff(n int) time.Duration {
	return min(2*time.Second<<(2*(n-1)), sourceBackoffMax)
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
		if y != x && !y.running && !y.terminal() && y.state != StatePaused && !y.retryAt.After(now) {
			return true
		}
	}
	return false
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

// verify hashes the complete partial file f. ok is false when its size or
// SHA-1 is wrong; err is set when it could not be read (our side).
func (d *Downloader) verify(x *Download, f *os.File) (ok bool, got protocol.SHA1, err error) {
	d.setState(x, StateVerifying, nil)
	fi, err := f.Stat()
	if err != nil {
		return false, got, err
	}
	if got, err = hashFile(f); err == nil {
		err = f.Sync()
	}
	if err != nil {
		return false, got, err
	}
	d.mu.Lock()
	want := x.sha1
	d.mu.Unlock()
	return fi.Size() == x.size && (want.IsZero() || got == want), got, nil
}

// place moves the verified partial file into Dir under its name.
func (d *Downloader) place(x *Download) {
	d.mu.Lock()
	name, want, cancelled := x.name, x.sha1, x.state == StateCancelled
	d.mu.Unlock()
	if cancelled {
		return // cancelled while verifying: the partial file goes (run)
	}
	final, err := placeFinal(d.Dir, x.partial, name)
	if err != nil {
		d.failNow(x, fmt.Errorf("moving the finished file into place: %w", err))
		return
	}
	d.mu.Lock()
	if !x.terminal() {
		x.state = StateDone
		x.path = final
		x.err = nil
		x.lastErr = ""
		close(x.done)
	}
	d.mu.Unlock()
	d.Logger.Info().Str("file", final).Str("urn", want.String()).Msg("download complete")
	_ = d.save()
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

// hashFile returns the SHA-1 of the whole of f (verify checks its size
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
