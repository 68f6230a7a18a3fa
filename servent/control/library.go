package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/transfer"
)

// The node's library and downloads: GET /api/v1/shares, the library part of
// GET /api/v1/status, GET and POST /api/v1/downloads.

// ShareJSON is one entry of GET /api/v1/shares.
type ShareJSON struct {
	Index uint32 `json:"index"`
	Name  string `json:"name"`
	Size  int64  `json:"size"`
	URN   string `json:"urn,omitempty"`
}

func (c *Server) shares(w http.ResponseWriter, r *http.Request) {
	out := []ShareJSON{}
	if lib := c.n.Library; lib != nil {
		for _, f := range lib.Files() {
			j := ShareJSON{Index: f.Index, Name: f.Name, Size: f.Size}
			if !f.SHA1.IsZero() {
				j.URN = f.SHA1.String()
			}
			out = append(out, j)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// LibraryJSON is the library part of GET /api/v1/status.
type LibraryJSON struct {
	Files       int    `json:"files"`
	HashedFiles int    `json:"hashed_files"`
	Bytes       int64  `json:"bytes"`
	HashedBytes int64  `json:"hashed_bytes"`
	Hashing     string `json:"hashing,omitempty"` // the file being hashed now
}

func (c *Server) library() *LibraryJSON {
	if c.n.Library == nil {
		return nil
	}
	p := c.n.Library.Progress()
	return &LibraryJSON{Files: p.Files, HashedFiles: p.HashedFiles, Bytes: p.Bytes, HashedBytes: p.HashedBytes, Hashing: p.Current}
}

func (c *Server) downloads(w http.ResponseWriter, r *http.Request) {
	if c.n.Downloads == nil {
		writeJSON(w, http.StatusOK, []transfer.Status{})
		return
	}
	writeJSON(w, http.StatusOK, c.n.Downloads.List())
}

// DownloadRequest is the body of POST /api/v1/downloads: either a search
// result (search_id and the hit's position), or a URN with the sources of a
// search's hits for it.
type DownloadRequest struct {
	SearchID string `json:"search_id,omitempty"`
	Hit      int    `json:"hit"`
	URN      string `json:"urn,omitempty"`
}

func (c *Server) startDownload(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	var req DownloadRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"bad JSON: " + err.Error()})
		return
	}
	st, err := c.StartDownload(req)
	switch {
	case errors.Is(err, ErrNoDownloads):
		writeJSON(w, http.StatusNotImplemented, apiError{err.Error()})
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusAccepted, st)
}

// ErrNoDownloads is why a servent without a download folder refuses a
// download (POST /api/v1/downloads answers 501 Not Implemented).
var ErrNoDownloads = errors.New("this servent has no download folder")

// StartDownload starts a download as POST /api/v1/downloads does.
func (c *Server) StartDownload(req DownloadRequest) (transfer.Status, error) {
	if c.n.Downloads == nil {
		return transfer.Status{}, ErrNoDownloads
	}
	cs := c.lookup(req.SearchID)
	if cs == nil {
		return transfer.Status{}, errors.New("no such search: search first, then download one of its hits")
	}
	hits := cs.search.Hits()
	var pick routing.Hit
	switch {
	case req.URN != "":
		h, err := protocol.ParseURN(req.URN)
		if err != nil {
			return transfer.Status{}, err
		}
		found := false
		for _, x := range hits {
			if x.URN == h {
				pick, found = x, true
				break
			}
		}
		if !found {
			return transfer.Status{}, errors.New("that search has no hit with this URN")
		}
	case req.Hit >= 0 && req.Hit < len(hits):
		pick = hits[req.Hit]
	default:
		return transfer.Status{}, fmt.Errorf("hit %d out of range: the search has %d hits", req.Hit, len(hits))
	}
	d, err := c.n.Download(pick, hits)
	if err != nil {
		return transfer.Status{}, err
	}
	return d.Status(), nil
}

// MagnetURN reads the urn:sha1 out of a magnet link (xt=urn:sha1:...).
func MagnetURN(link string) (string, error) {
	u, err := url.Parse(link)
	if err != nil || u.Scheme != "magnet" {
		return "", errors.New("not a magnet link (magnet:?xt=urn:sha1:<base32>)")
	}
	for _, xt := range u.Query()["xt"] {
		if h, err := protocol.ParseURN(xt); err == nil {
			return h.String(), nil
		}
	}
	return "", errors.New("the magnet link has no xt=urn:sha1:<base32>")
}
