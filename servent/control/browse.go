package control

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strings"

	"gnutella/protocol"
	"gnutella/transfer"
)

// BrowseRequest is the body of POST /api/v1/browse.
type BrowseRequest struct {
	// Host is the servent to browse, IP:port.
	Host string `json:"host"`
	// ServentID (32 hex digits, optional) lets a host that cannot be
	// reached be asked by Push to connect back.
	ServentID string `json:"servent_id,omitempty"`
}

// BrowseJSON is the answer of POST /api/v1/browse: the host's files as
// the hits of a finished search (its ID works as any search's, for
// GET /api/v1/searches/{id} and for downloads), and why the browse ended
// early when it did (the hits read before are good).
type BrowseJSON struct {
	SearchJSON
	Error string `json:"error,omitempty"`
}

// browse runs a browse to its end and answers with its hits. A browse
// that found nothing and failed is 502 (504 when it timed out).
func (c *Server) browse(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	var req BrowseRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"bad JSON: " + err.Error()})
		return
	}
	host, err := netip.ParseAddrPort(strings.TrimSpace(req.Host))
	if err != nil || host.Port() == 0 {
		writeJSON(w, http.StatusBadRequest, apiError{"host must be IP:port, e.g. 192.0.2.7:6346"})
		return
	}
	var id protocol.GUID
	if req.ServentID != "" {
		if id, err = protocol.ParseGUID(req.ServentID); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"servent_id must be 32 hex digits"})
			return
		}
	}
	s, err := c.n.Browse(r.Context(), host, id)
	if err != nil && s.Len() == 0 {
		code := http.StatusBadGateway
		if errors.Is(err, transfer.ErrBrowseTimeout) {
			code = http.StatusGatewayTimeout
		}
		writeJSON(w, code, apiError{err.Error()})
		return
	}
	done := make(chan struct{})
	close(done)
	cs := &search{search: s, done: done}
	c.remember(s, done)
	out := BrowseJSON{SearchJSON: cs.json(true)}
	if err != nil {
		out.Error = err.Error()
	}
	writeJSON(w, http.StatusOK, out)
}

// Browse browses host (POST /api/v1/browse); serventID may be empty.
func (cc *Client) Browse(ctx context.Context, host, serventID string) (BrowseJSON, error) {
	var out BrowseJSON
	err := cc.Do(ctx, "POST", "/api/v1/browse", BrowseRequest{Host: host, ServentID: serventID}, &out)
	return out, err
}
