package control

import (
	"net/http"
)

// The node's library: GET /api/v1/shares and the library part of GET
// /api/v1/status.

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

// rescan is POST /api/v1/shares/rescan: look at the shared folders again
// now rather than at the next periodic rescan. New files are hashed in the
// background (GET /api/v1/status or the "library" event shows how far).
func (c *Server) rescan(w http.ResponseWriter, r *http.Request) {
	lib := c.n.Library
	if lib == nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"this servent shares nothing: restart it with --share DIR"})
		return
	}
	if err := lib.Rescan(); err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{"the rescan failed: " + err.Error() + " (check that the shared folders exist and are readable)"})
		return
	}
	writeJSON(w, http.StatusOK, c.library())
}
