package control

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Every error of the API is JSON, {"error": "..."}, whoever wrote it: the
// handlers write JSON themselves, and errorWriter turns the plain-text
// errors of the parts they use (net/http's http.Error, the runtime
// profiles) into the same form. A handler that panics answers 500 in JSON
// too, while it has not started its answer.

// maxErrorText bounds the text of an error kept for its JSON form.
const maxErrorText = 4 << 10

// errorWriter rewrites a non-JSON answer of status 400 or more as JSON.
type errorWriter struct {
	http.ResponseWriter
	code    int
	rewrite bool         // the answer is a plain error being rewritten
	text    bytes.Buffer // its text
	wrote   bool         // the header went out
}

func (e *errorWriter) WriteHeader(code int) {
	if e.wrote {
		return
	}
	e.wrote, e.code = true, code
	ct := e.Header().Get("Content-Type")
	if code >= 400 && !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "text/html") {
		e.rewrite = true
		return // finish writes the header with the JSON body
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *errorWriter) Write(b []byte) (int, error) {
	if !e.wrote {
		e.WriteHeader(http.StatusOK)
	}
	if e.rewrite {
		e.text.Write(b[:min(len(b), max(0, maxErrorText-e.text.Len()))])
		return len(b), nil
	}
	return e.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes and
// write deadlines of the event stream).
func (e *errorWriter) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// Flush is for handlers that flush through the http.Flusher interface.
func (e *errorWriter) Flush() {
	if e.rewrite {
		return
	}
	if f, ok := e.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// finish writes a rewritten error out.
func (e *errorWriter) finish() {
	if !e.rewrite {
		return
	}
	msg := strings.TrimSpace(e.text.String())
	if msg == "" {
		msg = http.StatusText(e.code)
	}
	h := e.Header()
	h.Del("Content-Length")
	h.Del("X-Content-Type-Options")
	h.Set("Content-Type", "application/json")
	e.ResponseWriter.WriteHeader(e.code)
	_ = json.NewEncoder(e.ResponseWriter).Encode(apiError{msg})
}

// withJSONErrors serves next through an errorWriter, and answers a panic
// with a JSON 500.
func withJSONErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ew := &errorWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler || ew.wrote {
					panic(v)
				}
				writeJSON(w, http.StatusInternalServerError, apiError{fmt.Sprintf("internal error of the servent (%v): please report it, with what you did", v)})
				return
			}
			ew.finish()
		}()
		next.ServeHTTP(ew, r)
	})
}
