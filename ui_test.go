package main

import (
	"net/http"
	"strings"
	"testing"
)

// `gnutella ui` prints a one-time login URL of the running servent: it
// logs a browser in once.
func TestUIPrintsALoginURL(t *testing.T) {
	dir := t.TempDir()
	startServent(t, dir)
	out := strings.TrimSpace(wantRun(t, 0, "", "ui", "--data-dir", dir))
	if !strings.HasPrefix(out, "http://127.0.0.1:") || !strings.Contains(out, "/login?once=") {
		t.Fatalf("gnutella ui printed %q", out)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i, want := range []int{http.StatusOK, http.StatusForbidden} {
		resp, err := client.Get(out)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || (i == 0) != (len(resp.Cookies()) == 1) {
			t.Fatalf("opening the login URL the %d. time: %s, cookies %v", i+1, resp.Status, resp.Cookies())
		}
	}
	wantRun(t, 2, "no servent running", "ui", "--data-dir", t.TempDir())
}
