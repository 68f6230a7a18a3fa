package transfer

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"gnutella/protocol"
	"gnutella/share"
)

// Library is what the upload side needs of the shared-file table: files are
// found only by index or by SHA-1, never by mapping a URL onto the disk.
type Library interface {
	ByIndex(uint32) (share.File, bool)
	BySHA1(protocol.SHA1) (share.File, bool)
}

// PartialFile is a file being downloaded that may be served before it is
// complete (docs/protocol.md §6.1, partial file sharing): Path is read with
// ReadAt-style access and may vanish (it is renamed when complete), Name is
// what the file is called, Size its announced size, and Have the bytes
// written and verified-safe to serve.
type PartialFile struct {
	Path, Name string
	Size       int64
	Have       Ranges
}

// Partials finds the partial file of a SHA-1, if we are downloading it and
// are willing to share it. The Downloader implements it.
type Partials interface {
	PartialFile(sha1 protocol.SHA1) (PartialFile, bool)
}

// Server answers the HTTP requests that arrive on the servent's one port
// (docs/protocol.md §6.1): GET and HEAD for /get/<index>/<name> and
// /uri-res/N2R?urn:sha1:<base32>, and GET /gnutella/push-proxy. Set the
// fields before the first ServeConn; they are not changed afterwards.
type Server struct {
	Library Library
	// Partials serves the ranges we have of files being downloaded, by
	// URN only (nil: no partial sharing). A complete shared file of the
	// same URN is served instead.
	Partials Partials
	// Mesh is the download mesh (dmesh.go): the X-Alt, X-NAlt and X-Falt
	// of requests feed it, and our answers carry what it knows of the file
	// (nil: no mesh headers).
	Mesh *Mesh
	// Slots is how many uploads run at once (DefaultUploadSlots; negative
	// means none). A connection that got a slot keeps it for its later
	// requests of the same file. When all are taken a request gets 503
	// with Retry-After, or a place in the PARQ queue (QueueSize).
	Slots int
	// PerIP is how many of the slots one client IP may hold
	// (DefaultUploadsPerIP; negative means no limit).
	PerIP int
	// RetryAfter is what a 503 without a queue place asks the client to
	// wait (DefaultUploadRetryAfter).
	RetryAfter time.Duration
	// Bandwidth caps the bytes per second of all uploads together (0:
	// unlimited, and sendfile(2) sends at full speed).
	Bandwidth int64
	// QueueSize is how many downloaders may wait in the PARQ queue for a
	// slot (DefaultQueueSize; negative: no queue, a plain 503).
	QueueSize int
	// QueuePerIP is how many of the queue's places one client address may
	// hold (DefaultQueuePerIP; negative: no limit), loopback included.
	QueuePerIP int
	// QueueRetry is the Retry-After of the first place in the queue; each
	// later place adds half of it (DefaultQueueRetry). The grace a place
	// gets after it and the slack allowed before it scale with it
	// (uploadqueue.go).
	QueueRetry time.Duration
	// UserAgent is sent as Server ("gnutella/<version>"; default
	// DefaultUserAgent).
	UserAgent string
	Logger    zerolog.Logger
	// IdleTimeout bounds waiting for the next request on a kept-alive
	// connection, reading a request, and each write stall
	// (DefaultIdleTimeout).
	IdleTimeout time.Duration
	// PushProxy serves GET /gnutella/push-proxy?ServerId=... (docs/protocol.md §6.5):
	// it sends a Push to the servent and returns the status to answer (202
	// sent, 410 not connected). tls says the downloader asked for a TLS
	// callback ("tls=true" or X-Features: tls). nil: such requests get 404.
	PushProxy func(serventID protocol.GUID, xnode netip.AddrPort, tls bool) int
	// Browse lists what we share for Browse Host, GET / (browse.go): it
	// calls yield with the payload of each QueryHit of the library, in
	// order, until yield returns false; a payload is valid until yield
	// returns. nil: GET / is 404.
	Browse func(yield func(hit []byte) bool)
	// BrowseSlots is how many browses are served at once
	// (DefaultBrowseSlots; negative means none); one address gets one at
	// a time.
	BrowseSlots int

	initOnce  sync.Once
	limiter   *rate.Limiter // nil when Bandwidth is 0
	rateChunk int           // what an upload pays for at a time
	ctx       context.Context
	cancel    context.CancelFunc // on Close: ends the limiter's waits
	mu        sync.Mutex
	active    int
	perIP     map[netip.Addr]int
	queue     uploadQueue
	uploads   map[*upload]struct{}
	conns     map[net.Conn]struct{}
	browsing  browseLimit
	closed    bool
	wg        sync.WaitGroup

	requests  atomic.Int64
	completed atomic.Int64
	refused   atomic.Int64
	queued    atomic.Int64
	bytesSent atomic.Int64
}

// UploadStatus describes one upload being served.
type UploadStatus struct {
	Remote  netip.AddrPort `json:"remote"`
	Name    string         `json:"name"`
	URN     string         `json:"urn,omitempty"`
	Size    int64          `json:"size"`  // the whole file
	Start   int64          `json:"start"` // first byte of the range
	Length  int64          `json:"length"`
	Sent    int64          `json:"sent"`
	Started time.Time      `json:"started"`
}

// ServerStats are counters since the Server was made.
type ServerStats struct {
	Requests  int64 `json:"requests"`   // requests read
	Completed int64 `json:"completed"`  // bodies sent in full
	Refused   int64 `json:"refused"`    // 503s for lack of a slot, without a queue place
	Queued    int64 `json:"queued"`     // 503 Queued answers (PARQ)
	BytesSent int64 `json:"bytes_sent"` // file bytes sent
}

type upload struct {
	remote  netip.AddrPort
	name    string
	urn     string
	size    int64
	start   int64
	length  int64
	sent    atomic.Int64
	started time.Time
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.perIP = make(map[netip.Addr]int)
		s.uploads = make(map[*upload]struct{})
		s.conns = make(map[net.Conn]struct{})
		s.queue.init()
		s.ctx, s.cancel = context.WithCancel(context.Background())
		if s.Bandwidth > 0 {
			s.rateChunk = int(min(rateChunk, max(minRateChunk, s.Bandwidth/4)))
			s.limiter = rate.NewLimiter(rate.Limit(s.Bandwidth), rateBurstChunks*s.rateChunk)
		}
	})
}

func (s *Server) slots() int {
	switch {
	case s.Slots == 0:
		return DefaultUploadSlots
	case s.Slots < 0:
		return 0
	}
	return s.Slots
}

func (s *Server) retryAfter() time.Duration {
	if s.RetryAfter <= 0 {
		return DefaultUploadRetryAfter
	}
	return s.RetryAfter
}

func (s *Server) idle() time.Duration {
	if s.IdleTimeout <= 0 {
		return DefaultIdleTimeout
	}
	return s.IdleTimeout
}

func (s *Server) userAgent() string {
	if s.UserAgent == "" {
		return DefaultUserAgent
	}
	return s.UserAgent
}

// Busy reports whether every upload slot is taken (the QueryHit busy flag).
func (s *Server) Busy() bool {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active >= s.slots()
}

// Uploads lists the uploads being served.
func (s *Server) Uploads() []UploadStatus {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]UploadStatus, 0, len(s.uploads))
	for u := range s.uploads {
		out = append(out, UploadStatus{
			Remote: u.remote, Name: u.name, URN: u.urn, Size: u.size,
			Start: u.start, Length: u.length, Sent: u.sent.Load(), Started: u.started,
		})
	}
	return out
}

// Stats returns the counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{
		Requests:  s.requests.Load(),
		Completed: s.completed.Load(),
		Refused:   s.refused.Load(),
		Queued:    s.queued.Load(),
		BytesSent: s.bytesSent.Load(),
	}
}

// Close closes every connection being served and waits until every
// ServeConn has returned. Later ServeConn calls close their connection at
// once.
func (s *Server) Close() error {
	s.init()
	s.mu.Lock()
	s.closed = true
	s.cancel()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) track(c net.Conn) bool {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// connState is what one connection carries from request to request: the
// upload slot it holds (a downloader fetching chunks of a file keeps its
// slot between them, as with gtk-gnutella) and how long to wait for its
// next request.
type connState struct {
	slot    bool
	slotIP  netip.Addr
	slotKey string        // the file the slot was given for
	wait    time.Duration // the next request's deadline, if longer than IdleTimeout
}

// takeSlotLocked gives cs a slot for key. s.mu is held.
func (s *Server) takeSlotLocked(cs *connState, ip netip.Addr, key string) {
	s.active++
	s.perIP[ip]++
	cs.slot, cs.slotIP, cs.slotKey = true, ip, key
}

// releaseSlotLocked frees the slot cs holds, if any. s.mu is held.
func (s *Server) releaseSlotLocked(cs *connState) {
	if !cs.slot {
		return
	}
	s.active--
	if s.perIP[cs.slotIP]--; s.perIP[cs.slotIP] <= 0 {
		delete(s.perIP, cs.slotIP)
	}
	cs.slot, cs.slotKey = false, ""
}

func (s *Server) releaseSlot(cs *connState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseSlotLocked(cs)
}

func (s *Server) perIPLimit() int {
	if s.PerIP == 0 {
		return DefaultUploadsPerIP
	}
	return s.PerIP
}

// ipFullLocked reports whether ip holds all the slots one address may.
func (s *Server) ipFullLocked(ip netip.Addr) bool {
	n := s.perIPLimit()
	return n > 0 && s.perIP[ip] >= n
}

func (s *Server) addUpload(u *upload) {
	s.mu.Lock()
	s.uploads[u] = struct{}{}
	s.mu.Unlock()
}

func (s *Server) removeUpload(u *upload) {
	s.mu.Lock()
	delete(s.uploads, u)
	s.mu.Unlock()
}

// Serve reads the first request line itself and then acts as ServeConn
// (for tests and for listeners that carry only HTTP).
func (s *Server) Serve(conn net.Conn) {
	br := bufio.NewReaderSize(conn, 2048)
	_ = conn.SetReadDeadline(time.Now().Add(s.idle()))
	line, err := protocol.ReadLine(br)
	if err != nil {
		if errors.Is(err, protocol.ErrLineTooLong) {
			if s.track(conn) {
				s.refuse(conn, nil, 414, "URI Too Long", false)
				s.untrack(conn)
			}
		}
		conn.Close()
		return
	}
	s.ServeConn(conn, br, line)
}

// ServeConn serves the HTTP requests of conn, whose first request line was
// already read (br holds what follows). It owns conn and closes it when the
// client is done, on Connection: close, after an error response, or when
// the client is idle longer than IdleTimeout.
//
// Each request head (request line and headers) is read under one absolute
// deadline, never restarted per line, so a client dripping header lines is
// cut when it expires: for the first request, the read deadline the caller
// set before reading its request line (the servent's handshake timeout, or
// Serve's IdleTimeout); for each later one on a kept-alive connection,
// IdleTimeout from the end of the previous answer, covering the wait for
// the request and its head together.
func (s *Server) ServeConn(conn net.Conn, br *bufio.Reader, requestLine string) {
	if !s.track(conn) {
		conn.Close()
		return
	}
	defer s.untrack(conn)
	defer conn.Close()
	if br == nil {
		br = bufio.NewReaderSize(conn, 2048)
	}
	remote := addrPortOf(conn.RemoteAddr())
	cs := &connState{}
	defer s.releaseSlot(cs)
	line := requestLine
	for {
		if !s.serveOne(conn, br, line, remote, cs) {
			return
		}
		// The next request on a kept-alive connection: one deadline for
		// the wait and the whole head (longer after a 503 Queued, whose
		// Retry-After may exceed IdleTimeout). A few empty lines before
		// it are tolerated (RFC 9112 §2.2).
		_ = conn.SetReadDeadline(time.Now().Add(max(s.idle(), cs.wait)))
		cs.wait = 0
		var err error
		for blank := 0; ; blank++ {
			line, err = protocol.ReadLine(br)
			if err != nil || line != "" || blank >= 4 {
				break
			}
		}
		if err != nil {
			if errors.Is(err, protocol.ErrLineTooLong) {
				s.refuse(conn, nil, 414, "URI Too Long", false)
			}
			return
		}
		if line == "" {
			return
		}
	}
}

// request is one parsed request.
type request struct {
	method    string // GET or HEAD
	target    string
	minor     int // HTTP/1.<minor>
	h         protocol.Headers
	keepAlive bool
	remote    netip.AddrPort
	cs        *connState
}

// serveOne reads the headers of one request, answers it, and reports
// whether the connection stays open for another. The read deadline set
// before its request line was read still runs (ServeConn).
func (s *Server) serveOne(conn net.Conn, br *bufio.Reader, line string, remote netip.AddrPort, cs *connState) bool {
	s.requests.Add(1)
	if len(line) > protocol.MaxHandshakeLine {
		s.refuse(conn, nil, 414, "URI Too Long", false)
		return false
	}
	method, target, minor, ok := parseRequestLine(line)
	if !ok {
		s.refuse(conn, nil, 400, "Bad Request", false)
		return false
	}
	h, err := protocol.ReadHeaders(br, len(line)+2)
	if err != nil {
		switch {
		case protocol.IsHandshakeLimit(err):
			s.refuse(conn, nil, 431, "Request Header Fields Too Large", method == "HEAD")
		case errors.Is(err, protocol.ErrBadHandshake):
			s.refuse(conn, nil, 400, "Bad Request", method == "HEAD")
		}
		return false // stream ended or timed out: nobody to answer
	}
	r := &request{method: method, target: target, minor: minor, h: h, remote: remote, cs: cs}
	_ = conn.SetReadDeadline(time.Time{})
	ct := connection(h.Get("Connection"))
	r.keepAlive = minor >= 1 && !ct.close || minor == 0 && ct.keepAlive
	return s.answer(conn, r)
}

type connTokens struct{ close, keepAlive bool }

func connection(v string) connTokens {
	var t connTokens
	for _, tok := range strings.Split(v, ",") {
		switch strings.ToLower(strings.TrimSpace(tok)) {
		case "close":
			t.close = true
		case "keep-alive":
			t.keepAlive = true
		}
	}
	return t
}

// parseRequestLine splits "GET /path HTTP/1.1". The target is everything
// between the first and the last space, so a sloppy client's unescaped
// spaces in a file name survive.
func parseRequestLine(line string) (method, target string, minor int, ok bool) {
	i := strings.IndexByte(line, ' ')
	j := strings.LastIndexByte(line, ' ')
	if i <= 0 || j <= i {
		return "", "", 0, false
	}
	method, target, version := line[:i], strings.Trim(line[i+1:j], " "), line[j+1:]
	switch {
	case version == "HTTP/1.0":
		minor = 0
	case version == "HTTP/1.1":
		minor = 1
	case strings.HasPrefix(version, "HTTP/1.") && len(version) > 7:
		if _, err := parseDigits(version[7:]); err != nil {
			return "", "", 0, false
		}
		minor = 1
	default:
		return "", "", 0, false
	}
	if target == "" {
		return "", "", 0, false
	}
	return method, target, minor, true
}
