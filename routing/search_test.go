package routing

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gnutella/protocol"
)

// A hit goes through the control API as JSON and comes back the same, less
// what stays inside the servent (At, Proxies).
func TestHitJSONRoundTrip(t *testing.T) {
	urn, err := protocol.ParseURN("urn:sha1:AKU5OW7KOKET6POPSPYZN4VYZNGJ4MEJ")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []Hit{
		{Name: "zebra quokka.ogg", Size: 5000, URN: urn, Index: 3, Host: netip.MustParseAddrPort("192.0.2.7:6346"),
			ServentID: protocol.NewGUID(), Speed: 1000, Push: true, Busy: true, Hops: 2},
		{Name: "no urn.txt", Size: 1, Host: netip.MustParseAddrPort("[2001:db8::1]:6347"), ServentID: protocol.NewGUID()},
	} {
		b, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		if h.URN.IsZero() == strings.Contains(string(b), `"urn"`) {
			t.Errorf("urn in %s", b)
		}
		var back Hit
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		h2 := h
		h2.At, h2.Proxies = time.Time{}, nil
		if back.Name != h2.Name || back.Size != h2.Size || back.URN != h2.URN || back.Index != h2.Index ||
			back.Host != h2.Host || back.ServentID != h2.ServentID || back.Speed != h2.Speed ||
			back.Push != h2.Push || back.Busy != h2.Busy || back.Hops != h2.Hops {
			t.Errorf("round trip of %s: %+v", b, back)
		}
	}
	var h Hit
	if err := json.Unmarshal([]byte(`{"name":"x","host":"nowhere","servent_id":"00"}`), &h); err == nil {
		t.Error("bad host accepted")
	}
}
