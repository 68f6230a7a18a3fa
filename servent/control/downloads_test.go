package control

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gnutella/servent"
	"gnutella/transfer"
)

// busySource is a source that answers every request 503 with a Retry-After
// of an hour: a download from it waits, never ends, and can be paused,
// resumed and cancelled.
func busySource(t *testing.T) transfer.Source {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	return transfer.Source{Addr: netip.MustParseAddrPort(srv.Listener.Addr().String()), Index: 1, Name: "busy.bin"}
}

// seed starts a node sharing one file of size random bytes and returns the
// source of it, its name and its contents.
func seed(t *testing.T, size int) (transfer.Source, transfer.Request) {
	t.Helper()
	dir := t.TempDir()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	if err := os.WriteFile(filepath.Join(dir, "koala.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := testNodeConfig()
	c.ShareDirs = []string{dir}
	n := startNode(t, c)
	if err := n.Library.Rescan(); err != nil {
		t.Fatal(err)
	}
	if err := n.Library.HashAll(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	f := n.Library.Files()[0]
	src := transfer.Source{Addr: n.Addr(), Index: f.Index, Name: f.Name, ServentID: n.ID()}
	return src, transfer.Request{Name: f.Name, Size: f.Size, SHA1: f.SHA1, Sources: []transfer.Source{src}}
}

// downloader starts a node with a data folder and a download folder, and
// its control API.
func downloader(t *testing.T, dataDir, dlDir string) (*servent.Node, *Server, *Client) {
	t.Helper()
	c := testNodeConfig()
	c.DataDir, c.DownloadDir = dataDir, dlDir
	n := startNode(t, c)
	ctl := startServer(t, n)
	return n, ctl, &Client{Info: ctl.Info()}
}

// wantAPIError checks that err is an answer of the API with status code
// and a message containing msg.
func wantAPIError(t *testing.T, what string, err error, code int, msg string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Status != code || !strings.Contains(e.Message, msg) {
		t.Fatalf("%s: %v; want %d with %q", what, err, code, msg)
	}
}

func TestDownloadControl(t *testing.T) {
	dlDir := t.TempDir()
	n, _, cc := downloader(t, t.TempDir(), dlDir)
	ctx := ctxT(t)

	_, req := seed(t, 100_000)
	done, err := n.Downloads.Add(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := done.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	busy, err := n.Downloads.Add(transfer.Request{Name: "busy.bin", Size: 5000, Sources: []transfer.Source{busySource(t)}})
	if err != nil {
		t.Fatal(err)
	}
	id, doneID := busy.ID(), done.ID()

	st, err := cc.Download(ctx, id)
	if err != nil || st.ID != id || st.Name != "busy.bin" || st.Size != 5000 {
		t.Fatalf("GET %s: %+v, %v", id, st, err)
	}
	all, err := cc.Downloads(ctx)
	if err != nil || len(all) != 2 || all[0].ID != doneID || all[1].ID != id {
		t.Fatalf("GET /api/v1/downloads: %+v, %v", all, err)
	}

	// Unknown IDs: 404 for every action.
	_, err = cc.Download(ctx, "nosuchid")
	wantAPIError(t, "GET unknown", err, http.StatusNotFound, `no download "nosuchid": GET /api/v1/downloads lists them`)
	_, err = cc.PauseDownload(ctx, "nosuchid")
	wantAPIError(t, "pause unknown", err, http.StatusNotFound, `no download "nosuchid"`)
	_, err = cc.ResumeDownload(ctx, "nosuchid")
	wantAPIError(t, "resume unknown", err, http.StatusNotFound, `no download "nosuchid"`)
	_, err = cc.CancelDownload(ctx, "nosuchid")
	wantAPIError(t, "cancel unknown", err, http.StatusNotFound, `no download "nosuchid"`)
	_, err = cc.SetDownloadPriority(ctx, "nosuchid", 1)
	wantAPIError(t, "priority unknown", err, http.StatusNotFound, `no download "nosuchid"`)
	wantAPIError(t, "remove unknown", cc.RemoveDownload(ctx, "nosuchid"), http.StatusNotFound, `no download "nosuchid"`)

	// Pause; a paused download cannot be removed.
	st, err = cc.PauseDownload(ctx, id)
	if err != nil || st.State != transfer.StatePaused {
		t.Fatalf("pause: %+v, %v", st, err)
	}
	wantAPIError(t, "remove paused", cc.RemoveDownload(ctx, id), http.StatusConflict,
		`download "`+id+`" is paused: cancel it before removing it`)
	st, err = cc.ResumeDownload(ctx, id)
	if err != nil || st.State == transfer.StatePaused || st.State == transfer.StateCancelled {
		t.Fatalf("resume: %+v, %v", st, err)
	}

	// A done download cannot be paused or resumed.
	_, err = cc.PauseDownload(ctx, doneID)
	wantAPIError(t, "pause done", err, http.StatusConflict, `download "`+doneID+`" is done, so it cannot be paused`)
	_, err = cc.ResumeDownload(ctx, doneID)
	wantAPIError(t, "resume done", err, http.StatusConflict, `download "`+doneID+`" is done, so it cannot be resumed`)
	_, err = cc.CancelDownload(ctx, doneID)
	wantAPIError(t, "cancel done", err, http.StatusConflict, `download "`+doneID+`" is done, so it cannot be cancelled`)

	// Priority: a number, in a JSON body.
	st, err = cc.SetDownloadPriority(ctx, id, 5)
	if err != nil || st.Priority != 5 {
		t.Fatalf("priority: %+v, %v", st, err)
	}
	for _, body := range []any{map[string]any{}, map[string]any{"priority": "high"}, "5"} {
		err := cc.Do(ctx, "PUT", "/api/v1/downloads/"+id+"/priority", body, nil)
		wantAPIError(t, "priority body", err, http.StatusBadRequest, `the body must be {"priority": N}`)
	}

	// Cancel: the partial file goes, the download stays listed as
	// cancelled until removed.
	st, err = cc.CancelDownload(ctx, id)
	if err != nil || st.State != transfer.StateCancelled {
		t.Fatalf("cancel: %+v, %v", st, err)
	}
	if partials, _ := filepath.Glob(filepath.Join(dlDir, ".gnutella-partial-*")); len(partials) != 0 {
		t.Errorf("partial files after cancel: %v", partials)
	}
	_, err = cc.CancelDownload(ctx, id)
	wantAPIError(t, "cancel cancelled", err, http.StatusConflict, `download "`+id+`" is cancelled, so it cannot be cancelled`)
	// Resume starts a cancelled download again, from nothing; one that
	// runs cannot be resumed.
	if st, err = cc.ResumeDownload(ctx, id); err != nil || st.State == transfer.StateCancelled || st.State == transfer.StatePaused {
		t.Fatalf("resume of a cancelled download: %+v, %v", st, err)
	}
	_, err = cc.ResumeDownload(ctx, id)
	wantAPIError(t, "resume running", err, http.StatusConflict, `, so it cannot be resumed`)
	if _, err := cc.CancelDownload(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := cc.RemoveDownload(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err = cc.Download(ctx, id)
	wantAPIError(t, "GET removed", err, http.StatusNotFound, `no download "`+id+`"`)

	// Removing a done download forgets it and keeps its file.
	path := done.Status().Path
	if err := cc.RemoveDownload(ctx, doneID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the finished file after remove: %v", err)
	}
	if all, err := cc.Downloads(ctx); err != nil || len(all) != 0 {
		t.Fatalf("downloads after removing both: %+v, %v", all, err)
	}
}

// A paused download stays paused when the servent restarts, and resumes.
func TestDownloadPausedAcrossRestart(t *testing.T) {
	dataDir, dlDir := t.TempDir(), t.TempDir()
	n, ctl, cc := downloader(t, dataDir, dlDir)
	ctx := ctxT(t)
	x, err := n.Downloads.Add(transfer.Request{Name: "busy.bin", Size: 5000, Sources: []transfer.Source{busySource(t)}})
	if err != nil {
		t.Fatal(err)
	}
	id := x.ID()
	if _, err := cc.PauseDownload(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}

	_, _, cc = downloader(t, dataDir, dlDir)
	st, err := cc.Download(ctx, id)
	if err != nil || st.State != transfer.StatePaused || st.Name != "busy.bin" {
		t.Fatalf("after the restart: %+v, %v", st, err)
	}
	if st, err = cc.ResumeDownload(ctx, id); err != nil || st.State == transfer.StatePaused {
		t.Fatalf("resume after the restart: %+v, %v", st, err)
	}
}

// Without a download folder every download action answers 503.
func TestDownloadsWithoutAFolder(t *testing.T) {
	c := testNodeConfig()
	c.DataDir = t.TempDir()
	n := startNode(t, c)
	cc := &Client{Info: startServer(t, n).Info()}
	ctx := ctxT(t)
	want := "this servent has no download folder: restart it with --downloads DIR"
	all, err := cc.Downloads(ctx)
	if err != nil || len(all) != 0 {
		t.Fatalf("list: %v, %v", all, err)
	}
	_, err = cc.Download(ctx, "ab12cd34")
	wantAPIError(t, "GET", err, http.StatusServiceUnavailable, want)
	_, err = cc.PauseDownload(ctx, "ab12cd34")
	wantAPIError(t, "pause", err, http.StatusServiceUnavailable, want)
	_, err = cc.SetDownloadPriority(ctx, "ab12cd34", 2)
	wantAPIError(t, "priority", err, http.StatusServiceUnavailable, want)
	wantAPIError(t, "remove", cc.RemoveDownload(ctx, "ab12cd34"), http.StatusServiceUnavailable, want)
	_, err = cc.StartDownload(ctx, DownloadRequest{SearchID: "x"})
	wantAPIError(t, "start", err, http.StatusServiceUnavailable, want)
}

// The mux's own answers are JSON too: a path the API does not have, and a
// method a path does not take.
func TestUnknownEndpointsAnswerJSON(t *testing.T) {
	c := testNodeConfig()
	c.DataDir = t.TempDir()
	cc := &Client{Info: startServer(t, startNode(t, c)).Info()}
	ctx := ctxT(t)
	err := cc.Do(ctx, "POST", "/api/v1/downloads/ab12cd34/pauze", nil, nil)
	wantAPIError(t, "unknown path", err, http.StatusNotFound, "no /api/v1/downloads/ab12cd34/pauze in this API: docs/control-api.md lists what there is")
	err = cc.Do(ctx, "PATCH", "/api/v1/downloads/ab12cd34", nil, nil)
	wantAPIError(t, "unknown method", err, http.StatusMethodNotAllowed, "PATCH /api/v1/downloads/ab12cd34 is not in this API; it takes DELETE, GET, HEAD")
}
