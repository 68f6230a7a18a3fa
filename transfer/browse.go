package transfer

import (
	"bufio"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"gnutella/firewall"
	"gnutella/protocol"
)

// Browse Host, the server side (docs/protocol.md §6.7): GET / answers with
// the whole library, as a stream of QueryHit messages when the client
// accepts application/x-gnutella-packets (gtk-gnutella, LimeWire) or as an
// HTML list for a web browser, deflated when the client accepts deflate.
// The hits themselves come from the servent (Server.Browse), which builds
// them as it builds the hits it answers queries with.

const (
	// BrowseContentType is the media type of a stream of Gnutella messages.
	BrowseContentType = "application/x-gnutella-packets"
	// BrowseFeature is the X-Features token of Browse Host, in handshakes
	// and HTTP answers (gtk-gnutella sends "browse/1.0").
	BrowseFeature = "browse/1.0"
	// DefaultBrowseSlots is Server.BrowseSlots: browses served at once.
	// A browse holds no upload slot (the Browse Host proposal asks servers
	// not to count it against their uploads) but has its own small limit,
	// and one client address gets one browse at a time.
	DefaultBrowseSlots = 2
	// browseBuffer is what is deflated or written at a time.
	browseBuffer = 16 << 10
)

// browseLimit counts the browses being served.
type browseLimit struct {
	mu    sync.Mutex
	n     int
	perIP map[netip.Addr]bool
}

func (l *browseLimit) take(ip netip.Addr, slots int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n >= slots || l.perIP[ip] {
		return false
	}
	if l.perIP == nil {
		l.perIP = make(map[netip.Addr]bool)
	}
	l.n++
	l.perIP[ip] = true
	return true
}

func (l *browseLimit) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	delete(l.perIP, ip)
}

func (s *Server) browseSlots() int {
	switch {
	case s.BrowseSlots == 0:
		return DefaultBrowseSlots
	case s.BrowseSlots < 0:
		return 0
	}
	return s.BrowseSlots
}

// browseKind is what a browse request gets, from its Accept header as
// gtk-gnutella reads it: QueryHits when the client names our media type,
// HTML for a browser (*/*, text/html, text/*) or when there is no Accept at
// all, and 406 otherwise.
func browseKind(h *protocol.Headers) (packets, ok bool) {
	accept := h.Get("Accept")
	if accept == "" {
		return false, true
	}
	var htmlOK bool
	for _, tok := range strings.Split(accept, ",") {
		media, _, _ := strings.Cut(tok, ";")
		switch strings.ToLower(strings.TrimSpace(media)) {
		case BrowseContentType:
			return true, true
		case "*/*", "text/html", "text/*":
			htmlOK = true
		}
	}
	return false, htmlOK
}

// acceptsDeflate reports whether Accept-Encoding names deflate (a zlib
// stream, as gtk-gnutella and LimeWire both send and read it).
func acceptsDeflate(h *protocol.Headers) bool {
	for _, tok := range strings.Split(h.Get("Accept-Encoding"), ",") {
		enc, _, _ := strings.Cut(tok, ";")
		if strings.EqualFold(strings.TrimSpace(enc), "deflate") {
			return true
		}
	}
	return false
}

// noChunked are the clients gtk-gnutella knows to mishandle a chunked
// browse: they get the stream ended by closing the connection.
var noChunked = []string{"LimeWire", "BearShare", "FrostWire"}

// serveBrowse answers GET / (and HEAD /).
func (s *Server) serveBrowse(conn net.Conn, r *request) bool {
	head := r.method == "HEAD"
	if s.Browse == nil {
		// Nothing there, as before Browse Host (gtk-gnutella, switched
		// off, says 403 Browse Host Disabled).
		s.refuse(conn, r, 404, "Not Found", head)
		return false
	}
	packets, ok := browseKind(&r.h)
	if !ok {
		s.refuse(conn, r, 406, "Not Acceptable", head)
		return false
	}
	ip := r.remote.Addr()
	release := func() {}
	if !head {
		if !s.browsing.take(ip, s.browseSlots()) {
			s.refuse(conn, r, 503, "Too Many Browses", head,
				"Retry-After", strconv.Itoa(int(s.retryAfter()/time.Second)))
			return false
		}
		release = sync.OnceFunc(func() { s.browsing.release(ip) })
		defer release()
	}
	deflate := acceptsDeflate(&r.h)
	chunked := r.minor >= 1
	ua := r.h.Get("User-Agent")
	for _, p := range noChunked {
		if strings.HasPrefix(ua, p) {
			chunked = false
		}
	}
	keep := chunked && r.keepAlive
	b := s.statusLine(make([]byte, 0, 512), 200, "OK")
	if packets {
		b = appendHeader(b, "Content-Type", BrowseContentType)
	} else {
		b = appendHeader(b, "Content-Type", "text/html; charset=utf-8")
	}
	if deflate {
		b = appendHeader(b, "Content-Encoding", "deflate")
	}
	if chunked {
		b = appendHeader(b, "Transfer-Encoding", "chunked")
	}
	b = appendHeader(b, "X-Features", BrowseFeature)
	if !keep {
		// Without chunks the end of the stream is the end of the connection.
		b = appendHeader(b, "Connection", "close")
	}
	b = append(b, '\r', '\n')
	_ = conn.SetWriteDeadline(time.Now().Add(s.idle()))
	if _, err := conn.Write(b); err != nil {
		return false
	}
	if head {
		_ = conn.SetWriteDeadline(time.Time{})
		return keep
	}
	// The stack, bottom up: the connection (a write deadline per write),
	// chunks of up to browseBuffer bytes, the deflater.
	var w io.Writer = &deadlineWriter{conn: conn, idle: s.idle()}
	var chunks io.WriteCloser
	if chunked {
		chunks = httputil.NewChunkedWriter(w)
		w = chunks
	}
	bw := bufio.NewWriterSize(w, browseBuffer)
	w = bw
	var zw *zlib.Writer
	if deflate {
		// Fast rather than small, as on links: a library is sent once.
		zw, _ = zlib.NewWriterLevel(bw, zlib.BestSpeed) // a valid level
		w = zw
	}
	var err error
	if packets {
		err = s.writeBrowseHits(w)
	} else {
		err = s.writeBrowseHTML(w)
	}
	// The slot goes before the last bytes do, so that a client that has
	// read them all may browse again at once.
	release()
	if err == nil && zw != nil {
		err = zw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && chunks != nil {
		if err = chunks.Close(); err == nil {
			_, err = io.WriteString(&deadlineWriter{conn: conn, idle: s.idle()}, "\r\n")
		}
	}
	_ = conn.SetWriteDeadline(time.Time{})
	if err != nil {
		s.Logger.Debug().Str("remote", r.remote.String()).Err(err).Msg("browse cut short")
		return false
	}
	s.Logger.Debug().Str("remote", r.remote.String()).Bool("packets", packets).Bool("deflate", deflate).Msg("browse served")
	return keep
}

// writeBrowseHits writes each hit of Browse as a message: TTL 1, hops 0,
// the all-zero GUID, as gtk-gnutella does (the proposal lets the server
// choose).
func (s *Server) writeBrowseHits(w io.Writer) error {
	var err error
	buf := make([]byte, 0, 4096)
	s.Browse(func(hit []byte) bool {
		h := protocol.Header{Type: protocol.TypeQueryHit, TTL: 1, Length: uint32(len(hit))}
		buf = append(h.AppendTo(buf[:0]), hit...)
		if err = s.payBandwidth(len(buf)); err != nil {
			return false
		}
		_, err = w.Write(buf)
		return err == nil
	})
	return err
}

// writeBrowseHTML writes the library as a list of links a browser can
// download from: by URN when the file has one, else by index and name.
func (s *Server) writeBrowseHTML(w io.Writer) error {
	const top = "<!DOCTYPE html>\r\n<html>\r\n<head>\r\n<meta charset=\"utf-8\">\r\n<title>Browse Host</title>\r\n</head>\r\n<body>\r\n<h1>"
	if _, err := io.WriteString(w, top+html.EscapeString(s.userAgent())+"</h1>\r\n<ul>\r\n"); err != nil {
		return err
	}
	var err error
	var line strings.Builder
	s.Browse(func(payload []byte) bool {
		hit, derr := protocol.DecodeQueryHit(payload)
		if derr != nil {
			return true // ours: cannot happen, and nothing to list
		}
		line.Reset()
		for i := range hit.Results {
			rec := &hit.Results[i]
			name := string(rec.Name)
			href := "/get/" + strconv.FormatUint(uint64(rec.Index), 10) + "/" + url.PathEscape(name)
			if urns := rec.URNs(); len(urns) > 0 {
				href = "/uri-res/N2R?" + urns[0].String()
			}
			line.WriteString(`<li><a href="` + html.EscapeString(href) + `">` + html.EscapeString(name) +
				"</a>&nbsp;[" + strconv.FormatUint(rec.FileSize(), 10) + " bytes]</li>\r\n")
		}
		if err = s.payBandwidth(line.Len()); err != nil {
			return false
		}
		_, err = io.WriteString(w, line.String())
		return err == nil
	})
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, "</ul>\r\n</body>\r\n</html>\r\n")
	return err
}

// payBandwidth waits until the upload bandwidth (Server.Bandwidth) allows
// n more bytes; a browse shares it with the uploads.
func (s *Server) payBandwidth(n int) error {
	for s.limiter != nil && n > 0 {
		c := min(n, s.rateChunk)
		if err := s.limiter.WaitN(s.ctx, c); err != nil {
			return err
		}
		n -= c
	}
	return nil
}

// deadlineWriter gives each write to conn its own deadline, so a reader
// that stops reading is cut after idle, however long the whole stream.
type deadlineWriter struct {
	conn net.Conn
	idle time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	_ = d.conn.SetWriteDeadline(time.Now().Add(d.idle))
	return d.conn.Write(p)
}

// Browse Host, the client side: Browser fetches another servent's library
// the same way, under limits a hostile server cannot get past: the whole
// browse has a deadline and each read a shorter one, the stream (before
// and after inflation) a byte cap, each message the Reader's size cap, and
// the records a count cap.

const (
	// DefaultBrowseMaxRecords is Browser.MaxRecords.
	DefaultBrowseMaxRecords = 10_000
	// DefaultBrowseMaxBytes is Browser.MaxBytes: 10,000 records of a
	// hundred bytes and their messages' headers and trailers fit many
	// times over.
	DefaultBrowseMaxBytes = 16 << 20
	// DefaultBrowseTimeout is Browser.Timeout: the whole browse.
	DefaultBrowseTimeout = 2 * time.Minute
	// DefaultBrowseIdle is Browser.IdleTimeout: each connect and read.
	DefaultBrowseIdle = 30 * time.Second
)

// The kinds of browse failure; every error of Browse that is not the
// network's wraps one of these or a protocol.Err* (an oversized or
// truncated message).
var (
	// ErrBrowseUnreachable: the connection could not be made (nothing was
	// asked: a Push may still reach the host).
	ErrBrowseUnreachable = errors.New("browse: host unreachable")
	// ErrBrowseRefused: the server answered with a status other than 200
	// (see *BrowseStatusError).
	ErrBrowseRefused = errors.New("browse refused")
	// ErrBrowseNotPackets: the answer is not a stream of Gnutella
	// messages (another Content-Type or Content-Encoding).
	ErrBrowseNotPackets = errors.New("browse answer is not Gnutella messages")
	// ErrBrowseTooBig: the stream went past MaxBytes (before or after
	// inflation) or its records past MaxRecords. The records delivered
	// before it are good.
	ErrBrowseTooBig = errors.New("browse answer too big")
	// ErrBrowseTimeout: the browse went past Timeout, or a read past
	// IdleTimeout.
	ErrBrowseTimeout = errors.New("browse took too long")
)

// BrowseStatusError is a browse answered with another status than 200.
type BrowseStatusError struct {
	Code   int
	Reason string
}

func (e *BrowseStatusError) Error() string {
	return "browse refused: " + strconv.Itoa(e.Code) + " " + e.Reason
}

// Unwrap makes errors.Is(err, ErrBrowseRefused) hold.
func (e *BrowseStatusError) Unwrap() error { return ErrBrowseRefused }

// Browser browses hosts. The zero value is ready to use.
type Browser struct {
	// Dial opens the connection (nil: firewall.TCPDialer).
	Dial firewall.Dialer
	// UserAgent is sent as User-Agent (DefaultUserAgent).
	UserAgent string
	// MaxRecords caps the records delivered (DefaultBrowseMaxRecords).
	MaxRecords int
	// MaxBytes caps the stream, deflated and inflated
	// (DefaultBrowseMaxBytes).
	MaxBytes int64
	// Timeout bounds the whole browse (DefaultBrowseTimeout).
	Timeout time.Duration
	// IdleTimeout bounds the connect and each read (DefaultBrowseIdle).
	IdleTimeout time.Duration
	// NoDeflate leaves Accept-Encoding: deflate out of the request.
	NoDeflate bool
}

func (b *Browser) maxRecords() int {
	if b.MaxRecords <= 0 {
		return DefaultBrowseMaxRecords
	}
	return b.MaxRecords
}

func (b *Browser) maxBytes() int64 {
	if b.MaxBytes <= 0 {
		return DefaultBrowseMaxBytes
	}
	return b.MaxBytes
}

func (b *Browser) timeout() time.Duration {
	if b.Timeout <= 0 {
		return DefaultBrowseTimeout
	}
	return b.Timeout
}

func (b *Browser) idle() time.Duration {
	if b.IdleTimeout <= 0 {
		return DefaultBrowseIdle
	}
	return b.IdleTimeout
}

// Browse connects to addr, asks for its library and calls hit with each
// QueryHit of the answer, in order (a hit's Results are cut so that at
// most MaxRecords are delivered in all). It returns the number of records
// delivered; the error says why the stream ended early, if it did.
func (b *Browser) Browse(ctx context.Context, addr netip.AddrPort, hit func(*protocol.QueryHit)) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout())
	defer cancel()
	dctx, dcancel := context.WithTimeout(ctx, b.idle())
	var d firewall.Dialer = firewall.TCPDialer{}
	if b.Dial != nil {
		d = b.Dial
	}
	conn, err := d.Dial(dctx, addr.String())
	dcancel()
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrBrowseUnreachable, err)
	}
	defer conn.Close()
	return b.BrowseConn(ctx, conn, nil, addr.String(), hit)
}

// BrowseConn is Browse on a connection already open: one dialled, or one
// that came back with a GIV after a Push (br then holds what followed the
// GIV). host is sent as Host. It does not close conn.
func (b *Browser) BrowseConn(ctx context.Context, conn net.Conn, br *bufio.Reader, host string, hit func(*protocol.QueryHit)) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout())
	defer cancel()
	end, _ := ctx.Deadline()
	// A cancelled ctx unblocks whatever read or write is under way.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	timedOut := func(err error) error {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || ctx.Err() != nil {
			if cerr := ctx.Err(); cerr != nil && !errors.Is(cerr, context.DeadlineExceeded) {
				return cerr // cancelled by the caller
			}
			return fmt.Errorf("%w: %v", ErrBrowseTimeout, err)
		}
		return err
	}
	ua := b.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: " + ua +
		"\r\nAccept: " + BrowseContentType + "\r\n"
	if !b.NoDeflate {
		req += "Accept-Encoding: deflate\r\n"
	}
	req += "Connection: close\r\n\r\n"
	_ = conn.SetWriteDeadline(earlier(time.Now().Add(b.idle()), end))
	if _, err := io.WriteString(conn, req); err != nil {
		return 0, timedOut(err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	raw := &idleReader{conn: conn, idle: b.idle(), end: end}
	if br == nil {
		br = bufio.NewReaderSize(raw, 4<<10)
	} else {
		// Whatever br holds came before; later reads go through raw.
		br = bufio.NewReaderSize(io.MultiReader(io.LimitReader(br, int64(br.Buffered())), raw), 4<<10)
	}
	_ = conn.SetReadDeadline(earlier(time.Now().Add(b.idle()), end))
	code, _, reason, h, err := readResponseHead(br)
	if err != nil {
		return 0, timedOut(err)
	}
	if code != 200 {
		return 0, &BrowseStatusError{Code: code, Reason: reason}
	}
	if ct := h.Get("Content-Type"); !strings.Contains(strings.ToLower(ct), BrowseContentType) {
		return 0, fmt.Errorf("%w: Content-Type %q", ErrBrowseNotPackets, truncate(ct, 60))
	}
	limit := b.maxBytes()
	var body io.Reader = &capReader{r: br, left: limit, limit: limit}
	switch te := strings.ToLower(strings.TrimSpace(h.Get("Transfer-Encoding"))); {
	case te == "chunked":
		body = httputil.NewChunkedReader(body)
	case te != "" && te != "identity":
		return 0, fmt.Errorf("%w: Transfer-Encoding %q", ErrBrowseNotPackets, truncate(te, 60))
	case h.Get("Content-Length") != "":
		n, err := parseDigits(strings.TrimSpace(h.Get("Content-Length")))
		if err != nil {
			return 0, &protoError{"bad Content-Length in the browse answer"}
		}
		body = io.LimitReader(body, n)
	}
	switch ce := strings.ToLower(strings.TrimSpace(h.Get("Content-Encoding"))); ce {
	case "", "identity":
	case "deflate":
		zr, err := zlib.NewReader(body)
		if err != nil {
			return 0, timedOut(fmt.Errorf("browse answer: %w", err))
		}
		defer zr.Close()
		body = &capReader{r: zr, left: limit, limit: limit}
	default:
		return 0, fmt.Errorf("%w: Content-Encoding %q", ErrBrowseNotPackets, truncate(ce, 60))
	}
	// A browse carries QueryHits; anything else is read past, under a
	// small cap.
	mr := protocol.NewReader(body, protocol.Limits{Query: 1024, QueryHit: 65536, Bye: 4096, Other: 4096})
	records, left := 0, b.maxRecords()
	for {
		mh, payload, err := mr.ReadRaw()
		if err == io.EOF {
			return records, nil
		}
		if err != nil {
			return records, timedOut(err)
		}
		if mh.Type != protocol.TypeQueryHit {
			continue
		}
		qh, err := protocol.DecodeQueryHit(payload)
		if err != nil {
			continue // one bad hit costs its own records only
		}
		cut := len(qh.Results) > left
		if cut {
			qh.Results = qh.Results[:left]
		}
		if len(qh.Results) > 0 {
			hit(qh)
		}
		records += len(qh.Results)
		left -= len(qh.Results)
		if cut {
			return records, fmt.Errorf("%w: more than %d records", ErrBrowseTooBig, b.maxRecords())
		}
	}
}

// idleReader reads conn under a deadline per read (idle), never past end.
type idleReader struct {
	conn net.Conn
	idle time.Duration
	end  time.Time
}

func (r *idleReader) Read(p []byte) (int, error) {
	_ = r.conn.SetReadDeadline(earlier(time.Now().Add(r.idle), r.end))
	return r.conn.Read(p)
}

// capReader reads at most left bytes; reading more is ErrBrowseTooBig.
type capReader struct {
	r     io.Reader
	left  int64
	limit int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, fmt.Errorf("%w: over %d bytes", ErrBrowseTooBig, c.limit)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
