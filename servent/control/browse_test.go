package control

import (
	"os"
	"path/filepath"
	"testing"

	"gnutella/testnet/await"
	"gnutella/transfer"
)

// POST /api/v1/browse lists another node's files as a search, and a row
// of it downloads as a search's would.
func TestControlBrowseThenDownload(t *testing.T) {
	dlDir := t.TempDir()
	n, _, cc := downloader(t, t.TempDir(), dlDir)
	src, req := seed(t, 50_000)
	ctx := ctxT(t)

	bj, err := cc.Browse(ctx, src.Addr.String(), "")
	if err != nil {
		t.Fatal(err)
	}
	if bj.Error != "" || bj.Strategy != "browse" || bj.Running || len(bj.Hits) != 1 {
		t.Fatalf("browse answer %+v", bj)
	}
	h := bj.Hits[0]
	if h.URN != req.SHA1 || h.Name != req.Name || h.Size != uint64(req.Size) || h.Host != src.Addr {
		t.Fatalf("browsed %+v, want %+v", h, req)
	}
	var sj SearchJSON
	if err := cc.Do(ctx, "GET", "/api/v1/searches/"+bj.ID, nil, &sj); err != nil || len(sj.Hits) != 1 {
		t.Fatalf("the browse as a search: %+v, %v", sj, err)
	}
	st, err := cc.StartDownload(ctx, DownloadRequest{SearchID: bj.ID, URN: h.URN.String()})
	if err != nil {
		t.Fatal(err)
	}
	await.Until(t, "the download to finish", func() bool {
		s, _ := n.Downloads.Get(st.ID)
		return s.State == transfer.StateDone || s.State == transfer.StateFailed
	})
	if s, _ := n.Downloads.Get(st.ID); s.State != transfer.StateDone {
		t.Fatalf("download %+v", s)
	}
	if _, err := os.Stat(filepath.Join(dlDir, req.Name)); err != nil {
		t.Fatal(err)
	}

	_, err = cc.Browse(ctx, "not an address", "")
	wantAPIError(t, "bad host", err, 400, "IP:port")
}
