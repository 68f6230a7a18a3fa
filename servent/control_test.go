package servent

import (
	"context"
	"net/http"
	"testing"
	"time"

	"gnutella/protocol"
)

func TestControlAPISearchStreamsResultsAndNeedsToken(t *testing.T) {
	ca := testConfig()
	ca.DataDir = t.TempDir()
	cb := testConfig()
	cb.Library = StaticLibrary{Results: func(q *protocol.Query, h protocol.Header) []protocol.Result {
		if s, _ := q.SearchString(); s == "zebra quokka" {
			return []protocol.Result{{Index: 3, Size: 10, Name: []byte("zebra quokka.ogg")}}
		}
		return nil
	}}
	a, b := startServent(t, ca), startServent(t, cb)
	if _, err := a.Connect(ctxT(t), b.Addr()); err != nil {
		t.Fatal(err)
	}
	ctl, err := a.StartControl("127.0.0.1:0", ControlExtras{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := ReadControlInfo(ca.DataDir)
	if err != nil || info.Token != ctl.Token() || info.Addr != ctl.Addr() {
		t.Fatalf("control.json: %+v, %v", info, err)
	}
	cc := &ControlClient{Info: info}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var st StatusJSON
	if err := cc.Do(ctx, "GET", "/api/v1/status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.ServentID != a.ID().String() || st.Links != 1 {
		t.Fatalf("status %+v", st)
	}
	var links []LinkJSON
	if err := cc.Do(ctx, "GET", "/api/v1/links", nil, &links); err != nil || len(links) != 1 || links[0].ServentID != b.ID().String() {
		t.Fatalf("links %+v, %v", links, err)
	}
	var started map[string]string
	if err := cc.Do(ctx, "POST", "/api/v1/searches", SearchRequest{Query: "zebra quokka", TTL: 2, TimeoutMS: 2000, MaxResults: 1}, &started); err != nil {
		t.Fatal(err)
	}
	var got []HitJSON
	if err := cc.StreamResults(ctx, started["id"], func(h HitJSON) { got = append(got, h) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "zebra quokka.ogg" || got[0].ServentID != b.ID().String() {
		t.Fatalf("streamed %+v", got)
	}
	var sj SearchJSON
	if err := cc.Do(ctx, "GET", "/api/v1/searches/"+started["id"], nil, &sj); err != nil || len(sj.Hits) != 1 || sj.Running {
		t.Fatalf("search %+v, %v", sj, err)
	}
	// bad requests
	if err := cc.Do(ctx, "POST", "/api/v1/searches", SearchRequest{Query: "x", Strategy: "teleport"}, nil); err == nil {
		t.Error("unknown strategy accepted")
	}
	bad := &ControlClient{Info: ControlInfo{Addr: info.Addr, Token: "nope"}}
	if err := bad.Do(ctx, "GET", "/api/v1/status", nil, nil); err == nil {
		t.Error("wrong token accepted")
	}
	resp, err := http.Get("http://" + info.Addr + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %s", resp.Status)
	}
	if _, err := a.StartControl("0.0.0.0:0", ControlExtras{}); err == nil {
		t.Error("control API accepted a non-loopback address")
	}
}
