package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/transfer"
)

// The node's downloads: GET and POST /api/v1/downloads, and each download
// by its ID: GET, DELETE, POST .../pause, .../resume, .../cancel and PUT
// .../priority. Every answer about one download is its transfer.Status.

// ErrNoDownloads is why a servent without a download folder refuses
// anything about downloads but the (empty) list: the API answers 503
// Service Unavailable.
var ErrNoDownloads = errors.New("this servent has no download folder: restart it with --downloads DIR")

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
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusAccepted, st)
}

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

// PriorityRequest is the body of PUT /api/v1/downloads/{id}/priority.
// Priority is required; downloads with a higher one run first.
type PriorityRequest struct {
	Priority *int `json:"priority"`
}

// parsePriority reads the body of PUT /api/v1/downloads/{id}/priority.
func parsePriority(body []byte) (int, error) {
	var req PriorityRequest
	err := json.Unmarshal(body, &req)
	if err != nil || req.Priority == nil {
		msg := `the body must be {"priority": N}, N an integer (higher runs first)`
		if err != nil {
			msg += ": " + err.Error()
		}
		return 0, errors.New(msg)
	}
	return *req.Priority, nil
}

func (c *Server) getDownload(w http.ResponseWriter, r *http.Request) {
	c.onDownload(w, r, "", nil)
}

func (c *Server) pauseDownload(w http.ResponseWriter, r *http.Request) {
	c.onDownload(w, r, "paused", (*transfer.Downloader).Pause)
}

func (c *Server) resumeDownload(w http.ResponseWriter, r *http.Request) {
	c.onDownload(w, r, "resumed", (*transfer.Downloader).Resume)
}

func (c *Server) cancelDownload(w http.ResponseWriter, r *http.Request) {
	c.onDownload(w, r, "cancelled", (*transfer.Downloader).Cancel)
}

func (c *Server) setPriority(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	p, err := parsePriority(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	c.onDownload(w, r, "given a new priority", func(d *transfer.Downloader, id string) error {
		return d.SetPriority(id, p)
	})
}

// removeDownload forgets a finished, failed or cancelled download: 204 No
// Content.
func (c *Server) removeDownload(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if c.n.Downloads == nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{ErrNoDownloads.Error()})
		return
	}
	if err := removeWhenStopped(r.Context(), c.n.Downloads, id); err != nil {
		c.downloadError(w, id, "removed", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// removeWhenStopped removes download id. Just after a cancel, a download
// is cancelled but its workers are still winding down, and Remove says
// ErrStillActive: that lasts a moment, so it tries again for a few seconds
// rather than tell the user to cancel what is already cancelled.
func removeWhenStopped(ctx context.Context, d *transfer.Downloader, id string) error {
	give := time.NewTimer(5 * time.Second)
	defer give.Stop()
	for {
		err := d.Remove(id)
		if !errors.Is(err, transfer.ErrStillActive) {
			return err
		}
		if st, gerr := d.Get(id); gerr != nil || !ended(st.State) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-give.C:
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ended reports whether a download in state s is over: done, failed or
// cancelled.
func ended(s transfer.State) bool {
	return s == transfer.StateDone || s == transfer.StateFailed || s == transfer.StateCancelled
}

// onDownload applies act (nil: nothing) to download {id} and answers its
// status afterwards; done says what act does, for the error message.
func (c *Server) onDownload(w http.ResponseWriter, r *http.Request, done string, act func(d *transfer.Downloader, id string) error) {
	id := r.PathValue("id")
	d := c.n.Downloads
	if d == nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{ErrNoDownloads.Error()})
		return
	}
	if act != nil {
		if err := act(d, id); err != nil {
			c.downloadError(w, id, done, err)
			return
		}
	}
	st, err := d.Get(id)
	if err != nil {
		c.downloadError(w, id, done, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// downloadError answers the error of an action on download id: 404 for an
// unknown ID, 409 when the download's state does not allow it.
func (c *Server) downloadError(w http.ResponseWriter, id, done string, err error) {
	state := func() transfer.State {
		st, _ := c.n.Downloads.Get(id)
		return st.State
	}
	switch {
	case errors.Is(err, transfer.ErrUnknownDownload):
		writeJSON(w, http.StatusNotFound, apiError{fmt.Sprintf("no download %q: GET /api/v1/downloads lists them", id)})
	case errors.Is(err, transfer.ErrStillActive) && ended(state()):
		writeJSON(w, http.StatusConflict, apiError{fmt.Sprintf("download %q is %s but still stopping: try again in a moment", id, state())})
	case errors.Is(err, transfer.ErrStillActive):
		writeJSON(w, http.StatusConflict, apiError{fmt.Sprintf("download %q is %s: cancel it before removing it", id, state())})
	case errors.Is(err, transfer.ErrWrongState):
		writeJSON(w, http.StatusConflict, apiError{fmt.Sprintf("download %q is %s, so it cannot be %s", id, state(), done)})
	default:
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
	}
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

// Downloads lists the downloads (GET /api/v1/downloads).
func (cc *Client) Downloads(ctx context.Context) ([]transfer.Status, error) {
	var out []transfer.Status
	err := cc.Do(ctx, "GET", "/api/v1/downloads", nil, &out)
	return out, err
}

// StartDownload starts a download (POST /api/v1/downloads) and returns its
// status, with its ID.
func (cc *Client) StartDownload(ctx context.Context, req DownloadRequest) (transfer.Status, error) {
	var st transfer.Status
	err := cc.Do(ctx, "POST", "/api/v1/downloads", req, &st)
	return st, err
}

// Download returns the status of download id (GET /api/v1/downloads/{id}).
func (cc *Client) Download(ctx context.Context, id string) (transfer.Status, error) {
	var st transfer.Status
	err := cc.Do(ctx, "GET", downloadPath(id), nil, &st)
	return st, err
}

// PauseDownload pauses download id and returns its status.
func (cc *Client) PauseDownload(ctx context.Context, id string) (transfer.Status, error) {
	var st transfer.Status
	err := cc.Do(ctx, "POST", downloadPath(id)+"/pause", nil, &st)
	return st, err
}

// ResumeDownload resumes download id and returns its status.
func (cc *Client) ResumeDownload(ctx context.Context, id string) (transfer.Status, error) {
	var st transfer.Status
	err := cc.Do(ctx, "POST", downloadPath(id)+"/resume", nil, &st)
	return st, err
}

// CancelDownload cancels download id (its partial file is deleted) and
// returns its status.
func (cc *Client) CancelDownload(ctx context.Context, id string) (transfer.Status, error) {
	var st transfer.Status
	err := cc.Do(ctx, "POST", downloadPath(id)+"/cancel", nil, &st)
	return st, err
}

// RemoveDownload forgets a finished, failed or cancelled download (DELETE
// /api/v1/downloads/{id}).
func (cc *Client) RemoveDownload(ctx context.Context, id string) error {
	return cc.Do(ctx, "DELETE", downloadPath(id), nil, nil)
}

// SetDownloadPriority sets the priority of download id (higher runs first)
// and returns its status.
func (cc *Client) SetDownloadPriority(ctx context.Context, id string, priority int) (transfer.Status, error) {
	var st transfer.Status
	err := cc.Do(ctx, "PUT", downloadPath(id)+"/priority", PriorityRequest{Priority: &priority}, &st)
	return st, err
}

func downloadPath(id string) string { return "/api/v1/downloads/" + url.PathEscape(id) }
