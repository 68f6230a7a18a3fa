package transfer

import (
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gnutella/firewall"
	"gnutella/protocol"
	"gnutella/share"
)

// The URL spaces (docs/protocol.md §8.4): /get/<index>/<name>, /uri-res/N2R?<urn>,
// / (Browse Host), and the push-proxy requests (the paths of firewall.IsPushProxyTarget,
// matched as sent). Everything else is 404.
type routeKind uint8

const (
	routeGet routeKind = iota + 1
	routeN2R
	routePushProxy
	routeBrowse // GET /: Browse Host (browse.go)
)

type route struct {
	kind  routeKind
	index uint32
	name  string
	sha1  protocol.SHA1
}

// parseTarget maps a request target onto a URL space. It never produces a
// file system path: a route names a file by index or hash only. A nonzero
// code is the error to answer.
//
// Every path segment is unescaped on its own; a segment that is "." or ".."
// (also when written %2e%2e, or hidden between encoded slashes or
// backslashes) is refused with 400 "Bad Path", as gtk-gnutella refuses ".."
// above the root. Repeated slashes are collapsed, which also tolerates one
// trailing slash after /get/<i>/<name>/ (Clip2's 0.4 form). A name that
// still contains '/' after unescaping is 404.
func parseTarget(target string) (r route, code int, reason string) {
	if target == "" || target[0] != '/' {
		return r, 400, "Bad Request"
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c < 0x20 || c == 0x7f {
			return r, 400, "Bad Request"
		}
	}
	if target == "/" {
		return route{kind: routeBrowse}, 0, ""
	}
	if firewall.IsPushProxyTarget(target) {
		return route{kind: routePushProxy}, 0, ""
	}
	path, query, _ := strings.Cut(target, "?")
	var segs []string
	for _, raw := range strings.Split(path, "/") {
		if raw == "" {
			continue
		}
		seg, err := url.PathUnescape(raw)
		if err != nil {
			return r, 400, "Bad Path"
		}
		if strings.IndexByte(seg, 0) >= 0 {
			return r, 400, "Bad Path"
		}
		for _, part := range strings.FieldsFunc(seg, func(c rune) bool { return c == '/' || c == '\\' }) {
			if part == "." || part == ".." {
				return r, 400, "Bad Path"
			}
		}
		if seg == "." || seg == ".." {
			return r, 400, "Bad Path"
		}
		segs = append(segs, seg)
	}
	switch {
	case len(segs) >= 1 && segs[0] == "get":
		if len(segs) != 3 {
			return r, 404, "Not Found"
		}
		idx, err := parseDigits(segs[1])
		if err != nil || idx > 0xFFFFFFFF {
			return r, 400, "Bad Request"
		}
		if strings.ContainsAny(segs[2], "/\\") {
			return r, 404, "Not Found"
		}
		return route{kind: routeGet, index: uint32(idx), name: segs[2]}, 0, ""
	case len(segs) == 2 && segs[0] == "uri-res":
		if !strings.EqualFold(segs[1], "N2R") {
			return r, 404, "Not Found" // N2X (THEX) and the rest: not served
		}
		q, err := url.QueryUnescape(query)
		if err != nil {
			return r, 400, "Malformed URN"
		}
		h, err := protocol.ParseURN(strings.TrimSpace(q))
		if err != nil {
			return r, 400, "Malformed URN in /uri-res/N2R request"
		}
		return route{kind: routeN2R, sha1: h}, 0, ""
	}
	return r, 404, "Not Found"
}

// answer serves one parsed request and reports whether the connection
// stays open.
func (s *Server) answer(conn net.Conn, r *request) bool {
	head := r.method == "HEAD"
	if r.method != "GET" && !head {
		s.refuse(conn, r, 501, "Method Not Implemented", false)
		return false
	}
	// A GET carries no body: one announced is refused (gtk-gnutella's
	// "No Content Allowed"), and we never read it.
	if cl := r.h.Get("Content-Length"); cl != "" {
		n, err := parseDigits(strings.TrimSpace(cl))
		if err != nil {
			s.refuse(conn, r, 400, "Bad Content-Length", head)
			return false
		}
		if n > 0 {
			s.refuse(conn, r, 403, "No Content Allowed", head)
			return false
		}
	}
	if r.h.Has("Transfer-Encoding") {
		s.refuse(conn, r, 403, "No Content Allowed", head)
		return false
	}
	rt, code, reason := parseTarget(r.target)
	if code != 0 {
		s.Logger.Debug().Str("remote", r.remote.String()).Str("target", truncate(r.target, 120)).Int("code", code).Msg("upload request refused")
		s.refuse(conn, r, code, reason, head)
		return false
	}
	switch rt.kind {
	case routePushProxy:
		return s.pushProxy(conn, r)
	case routeBrowse:
		return s.serveBrowse(conn, r)
	}
	var f share.File
	var ok bool
	if s.Library != nil {
		switch rt.kind {
		case routeGet:
			f, ok = s.Library.ByIndex(rt.index)
			if ok && f.Name != rt.name {
				s.refuse(conn, r, 404, "File index/name mismatch", head)
				return false
			}
		case routeN2R:
			f, ok = s.Library.BySHA1(rt.sha1)
		}
	}
	if ok {
		return s.serveFile(conn, r, f, nil)
	}
	// A file we are still downloading answers by URN only: its index
	// means nothing to anyone.
	if rt.kind == routeN2R && s.Partials != nil {
		if pf, ok := s.Partials.PartialFile(rt.sha1); ok && pf.Size > 0 {
			return s.serveFile(conn, r, share.File{Path: pf.Path, Name: pf.Name, Size: pf.Size, SHA1: rt.sha1}, &pf)
		}
	}
	s.refuse(conn, r, 404, "Not Found", head)
	return false
}

// serveFile answers with f's bytes, or the range asked for. part is set
// for a partial file (f then comes from it): only the bytes of part.Have
// are served, and every answer says which with X-Available-Ranges.
func (s *Server) serveFile(conn net.Conn, r *request, f share.File, part *PartialFile) bool {
	head := r.method == "HEAD"
	var extra []string // headers every answer carries, error or not
	if !f.SHA1.IsZero() {
		extra = append(extra, "X-Gnutella-Content-URN", f.SHA1.String())
		// The download mesh (dmesh.go): we tell the client our locations of
		// the file, on 200, 206, 416 and 503 alike, and then learn its own
		// (so that they are not echoed back to it).
		extra = append(extra, s.Mesh.headers(f.SHA1, r.remote, WantsFalt(&r.h), AltLoc{})...)
		s.Mesh.Learn(f.SHA1, &r.h, r.remote)
	}
	switch {
	case s.Mesh != nil && s.Browse != nil:
		extra = append(extra, "X-Features", FaltFeature+", "+BrowseFeature)
	case s.Mesh != nil:
		extra = append(extra, "X-Features", FaltFeature)
	case s.Browse != nil:
		extra = append(extra, "X-Features", BrowseFeature) // gtk-gnutella names it in its uploads
	}
	var have Ranges
	if part != nil {
		have = part.Have.Intersect(Ranges{{0, f.Size}})
		if len(have) == 0 {
			s.refuse(conn, r, 404, "Not Found", head)
			return false
		}
		// X-Available is the total we have (gtk-gnutella sends both; the
		// ranges header may carry only the first spans).
		extra = append(extra, "X-Available-Ranges", have.FormatAvailable(),
			"X-Available", "bytes "+strconv.FormatInt(have.Covered(), 10))
	}
	fh, err := os.Open(f.Path)
	if err != nil {
		if part == nil {
			s.Logger.Warn().Err(err).Str("file", f.Path).Msg("shared file cannot be opened")
		}
		// A partial file is renamed when it completes: gone is normal.
		s.refuse(conn, r, 404, "Not Found", head)
		return false
	}
	defer fh.Close()
	fi, err := fh.Stat()
	switch {
	case err != nil || !fi.Mode().IsRegular():
		s.refuse(conn, r, 404, "Not Found", head)
		return false
	case part == nil && (fi.Size() != f.Size ||
		!f.ModTime.IsZero() && fi.ModTime().Sub(f.ModTime).Abs() > time.Second):
		// Serving other bytes under the same URN would poison downloads.
		s.Logger.Warn().Str("file", f.Path).Msg("shared file changed on disk since it was indexed")
		s.refuse(conn, r, 404, "File Has Changed", head)
		return false
	}
	size := f.Size
	start, end := int64(0), size-1
	if v := r.h.Get("Range"); v != "" {
		a, b, st := parseRange(v, size)
		switch st {
		case rangeMalformed:
			s.refuse(conn, r, 400, "Malformed Range request", head, extra...)
			return false
		case rangeUnsatisfiable:
			s.refuse(conn, r, 416, "Requested Range Not Satisfiable", head,
				append([]string{"Content-Range", "bytes */" + strconv.FormatInt(size, 10)}, extra...)...)
			return false
		}
		start, end = a, b
	}
	if part != nil {
		// The asked range must start in a span we have; it is cut at that
		// span's end, and the client asks again for the rest.
		i := slices.IndexFunc(have, func(sp Span) bool { return sp.Start <= start && start < sp.End })
		if i < 0 {
			// Kept open: the client asks at once for a range we have.
			return s.reply(conn, r, 416, "Requested Range Not Available", head,
				append([]string{"Content-Range", "bytes */" + strconv.FormatInt(size, 10)}, extra...)...)
		}
		end = min(end, have[i].End-1)
	}
	length := end - start + 1
	u := &upload{remote: r.remote, name: f.Name, size: size, start: start, length: length, started: time.Now()}
	if !f.SHA1.IsZero() {
		u.urn = f.SHA1.String()
	}
	if !head {
		key := u.urn
		if key == "" {
			key = f.Path
		}
		if ok, open := s.admit(conn, r, key, extra); !ok {
			return open
		}
		s.addUpload(u)
		defer s.removeUpload(u)
	}
	code, reason := 200, "OK"
	if size > 0 && (start != 0 || end != size-1) {
		code, reason = 206, "Partial Content"
	}
	b := s.statusLine(make([]byte, 0, 512), code, reason)
	b = appendHeader(b, "Content-Type", contentType(f.Name))
	b = appendHeader(b, "Content-Length", strconv.FormatInt(length, 10))
	if code == 206 {
		b = appendHeader(b, "Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+
			strconv.FormatInt(end, 10)+"/"+strconv.FormatInt(size, 10))
	}
	b = appendHeader(b, "Accept-Ranges", "bytes")
	if part == nil {
		b = appendHeader(b, "Last-Modified", fi.ModTime().UTC().Format(http.TimeFormat))
	}
	for i := 0; i+1 < len(extra); i += 2 {
		b = appendHeader(b, extra[i], extra[i+1])
	}
	b = appendHeader(b, "Content-Disposition", "attachment; filename*=UTF-8''"+url.PathEscape(f.Name))
	switch {
	case !r.keepAlive:
		b = appendHeader(b, "Connection", "close")
	case r.minor == 0:
		b = appendHeader(b, "Connection", "Keep-Alive")
	}
	b = append(b, '\r', '\n')
	_ = conn.SetWriteDeadline(time.Now().Add(s.idle()))
	if _, err := conn.Write(b); err != nil {
		return false
	}
	if head {
		_ = conn.SetWriteDeadline(time.Time{})
		return r.keepAlive
	}
	s.Logger.Debug().Str("remote", r.remote.String()).Str("file", f.Name).Int64("start", start).Int64("length", length).Bool("partial", part != nil).Msg("upload started")
	if err := s.sendBody(conn, fh, start, length, u); err != nil {
		s.Logger.Debug().Str("remote", r.remote.String()).Str("file", f.Name).Err(err).Int64("sent", u.sent.Load()).Msg("upload cut short")
		return false
	}
	s.completed.Add(1)
	return r.keepAlive
}

// sendBody sends n bytes of fh from start. It seeks fh and sends with
// sendFile (sendfile(2) on a TCP connection, sendfile_linux.go), a chunk
// at a time, from the first byte. Under a Bandwidth limit each s.rateChunk
// is paid for before it is sent (still by sendfile): the limiter serves
// waiters in turn, so uploads share the bandwidth.
//
// The write deadline detects a stalled client, not a slow one: it is
// IdleTimeout after the last time bytes went out (or the limiter let us
// send), and it is moved only when that is more than IdleTimeout/8 old.
// Moving it on every chunk cost a runtime timer change per MiB (the
// scheduler then woke a thread to look at the timers), which nginx does
// not pay. A chunk cut by the deadline after some of its bytes went out is
// a slow client: the loop goes on. A client is dropped after a whole
// deadline window without a byte taken: between 7/8 of IdleTimeout and
// twice IdleTimeout after the last byte it took.
func (s *Server) sendBody(conn net.Conn, fh *os.File, start, n int64, u *upload) error {
	if _, err := fh.Seek(start, io.SeekStart); err != nil {
		return err
	}
	chunk := int64(sendChunk)
	if s.limiter != nil {
		chunk = int64(s.rateChunk)
	}
	idle := s.idle()
	var armed time.Time // what the deadline counts from
	progress := time.Now()
	pos := start // the next byte of fh to send
	for n > 0 {
		c := min(n, chunk)
		if s.limiter != nil {
			if err := s.limiter.WaitN(s.ctx, int(c)); err != nil {
				return err
			}
			progress = time.Now() // our own wait is not the client's stall
		}
		if progress.Sub(armed) > idle/8 {
			_ = conn.SetWriteDeadline(progress.Add(idle))
			armed = progress
		}
		w, err := sendFile(conn, fh, c)
		n -= w
		pos += w
		u.sent.Add(w)
		s.bytesSent.Add(w)
		if w > 0 {
			progress = time.Now()
		}
		if err != nil {
			if w == 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
				return err
			}
			// Slow, not stalled: the deadline moves on. Without
			// sendfile io.CopyN read more of fh than was written.
			if _, err := fh.Seek(pos, io.SeekStart); err != nil {
				return err
			}
		}
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return nil
}

type rangeStatus uint8

const (
	rangeOK rangeStatus = iota
	rangeMalformed
	rangeUnsatisfiable
)

// parseRange reads a Range header against a file of size bytes: "bytes=a-b",
// "bytes=a-" or "bytes=-n". Of several ranges only the first is used, as
// gtk-gnutella does. An end past the file is clipped.
func parseRange(v string, size int64) (start, end int64, st rangeStatus) {
	unit, spec, ok := strings.Cut(strings.TrimSpace(v), "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return 0, 0, rangeMalformed
	}
	first, _, _ := strings.Cut(spec, ",")
	a, b, ok := strings.Cut(strings.TrimSpace(first), "-")
	if !ok {
		return 0, 0, rangeMalformed
	}
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if a == "" {
		n, err := parseDigits(b)
		if err != nil {
			return 0, 0, rangeMalformed
		}
		if n == 0 || size == 0 {
			return 0, 0, rangeUnsatisfiable
		}
		return max(0, size-n), size - 1, rangeOK
	}
	start, err := parseDigits(a)
	if err != nil {
		return 0, 0, rangeMalformed
	}
	end = size - 1
	if b != "" {
		if end, err = parseDigits(b); err != nil || end < start {
			return 0, 0, rangeMalformed
		}
	}
	if start >= size {
		return 0, 0, rangeUnsatisfiable
	}
	return start, min(end, size-1), rangeOK
}

func contentType(name string) string {
	if t := mime.TypeByExtension(strings.ToLower(filepath.Ext(name))); t != "" {
		return t
	}
	return "application/octet-stream"
}

func (s *Server) statusLine(b []byte, code int, reason string) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, reason...)
	b = append(b, '\r', '\n')
	b = appendHeader(b, "Server", s.userAgent())
	b = appendHeader(b, "Date", time.Now().UTC().Format(http.TimeFormat))
	return b
}

func appendHeader(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	for i := 0; i < len(value); i++ { // no header splitting, whatever the value
		if c := value[i]; c == '\r' || c == '\n' {
			b = append(b, ' ')
		} else {
			b = append(b, c)
		}
	}
	return append(b, '\r', '\n')
}

// reply answers with an error status and keeps the connection open if
// the request allows it (a 503 Queued, a 416 of a partial file); it
// reports whether the connection stays open. A kept-alive error answer
// has no body (Content-Length: 0), as gtk-gnutella's: its downloader,
// queued, sends its next request without reading one.
func (s *Server) reply(conn net.Conn, r *request, code int, reason string, head bool, extra ...string) bool {
	if !r.keepAlive {
		s.refuse(conn, r, code, reason, head, extra...)
		return false
	}
	b := s.statusLine(make([]byte, 0, 512), code, reason)
	for i := 0; i+1 < len(extra); i += 2 {
		b = appendHeader(b, extra[i], extra[i+1])
	}
	b = appendHeader(b, "Content-Length", "0")
	if r.minor == 0 {
		b = appendHeader(b, "Connection", "Keep-Alive")
	}
	b = append(b, '\r', '\n')
	_ = conn.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
	_, err := conn.Write(b)
	_ = conn.SetWriteDeadline(time.Time{})
	return err == nil
}

// refuse answers with an error status and a short text body, then closes
// the connection gracefully. extra holds header name/value pairs.
func (s *Server) refuse(conn net.Conn, r *request, code int, reason string, head bool, extra ...string) {
	body := reason + "\n"
	b := s.statusLine(make([]byte, 0, 256), code, reason)
	for i := 0; i+1 < len(extra); i += 2 {
		b = appendHeader(b, extra[i], extra[i+1])
	}
	b = appendHeader(b, "Content-Type", "text/plain; charset=utf-8")
	b = appendHeader(b, "Content-Length", strconv.Itoa(len(body)))
	b = appendHeader(b, "Connection", "close")
	b = append(b, '\r', '\n')
	if !head {
		b = append(b, body...)
	}
	_ = conn.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
	_, _ = conn.Write(b)
	closeGracefully(conn)
}

// closeGracefully half-closes and discards what the peer still sends for a
// moment: closing with unread input makes the kernel send a reset, and the
// peer could lose our answer.
func closeGracefully(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		_ = conn.SetReadDeadline(time.Now().Add(closeLinger))
		_, _ = io.CopyN(io.Discard, conn, 64<<10)
	}
	_ = conn.Close()
}
