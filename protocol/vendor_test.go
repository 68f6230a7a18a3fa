package protocol

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"
)

func TestEveryRecordedVendorMessageDecodesAndReencodesExactly(t *testing.T) {
	ds := walkAll(t, TypeVendor, TypeStdVendor)
	if len(ds) != 11 {
		t.Fatalf("%d recorded vendor messages, want 11", len(ds))
	}
	seen := map[string]int{}
	for _, d := range ds {
		v, err := DecodeVendor(d.header.Type, d.payload)
		if err != nil {
			t.Fatalf("%s@%d: %v", d.file, d.offset, err)
		}
		payloadMustReencode(t, v, d.payload)
		seen[v.ID().String()]++
		t.Logf("%s@%d: %v", d.file, d.offset, v)
	}
	want := map[string]int{"null/0v0": 4, "null/10v0": 4, "BEAR/12v1": 1, "GTKG/9v1": 1, "GTKG/10v1": 1}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("recorded vendor IDs %v, want %v", seen, want)
	}
}

func TestRecordedMessagesSupportedListsGtkMessages(t *testing.T) {
	var found bool
	for _, d := range walkAll(t, TypeVendor) {
		v, err := DecodeVendor(d.header.Type, d.payload)
		if err != nil {
			t.Fatal(err)
		}
		if !v.Is(MessagesSupportedID) {
			continue
		}
		found = true
		ids, err := v.MessagesSupported()
		if err != nil {
			t.Fatalf("%s@%d: %v", d.file, d.offset, err)
		}
		if len(ids) != 26 {
			t.Fatalf("%d entries, want 26", len(ids))
		}
		has := map[VendorMessageID]bool{}
		for _, id := range ids {
			has[id] = true
		}
		for _, id := range []VendorMessageID{HopsFlowID, TCPConnectBackID, QueryStatusRequestID,
			QueryStatusResponseID, PushProxyRequestID, PushProxyAckID, {VendorLIME, 21, 2}} {
			if !has[id] {
				t.Errorf("gtk does not list %v", id)
			}
		}
		// Re-building the list gives gtk's bytes back.
		payloadMustReencode(t, NewMessagesSupported(ids), d.payload)
	}
	if !found {
		t.Fatal("no Messages-Supported in the recordings")
	}
}

func TestRecordedQueryStatusResponseReadsOneHit(t *testing.T) {
	for _, d := range walkAll(t, TypeVendor) {
		v, _ := DecodeVendor(d.header.Type, d.payload)
		if v.ID() != QueryStatusResponseID {
			continue
		}
		hits, err := v.QueryStatusResponse()
		if err != nil || hits != 1 {
			t.Fatalf("hits = %d, %v", hits, err)
		}
		payloadMustReencode(t, NewQueryStatusResponse(1), d.payload)
		return
	}
	t.Fatal("no BEAR/12 in the recordings")
}

func TestVendorBuildersWriteTheWireFormAndReadersReadItBack(t *testing.T) {
	tests := []struct {
		name string
		v    *Vendor
		id   VendorMessageID
		wire []byte
		read func(v *Vendor) (any, error)
		want any
	}{
		{"Hops-Flow", NewHopsFlow(3), HopsFlowID, []byte("BEAR\x04\x00\x01\x00\x03"),
			func(v *Vendor) (any, error) { return v.HopsFlow() }, uint8(3)},
		{"TCP Connect-Back", NewTCPConnectBack(6346), TCPConnectBackID, []byte("BEAR\x07\x00\x01\x00\xca\x18"),
			func(v *Vendor) (any, error) { return v.TCPConnectBack() }, uint16(6346)},
		{"Query Status Request", NewQueryStatusRequest(), QueryStatusRequestID, []byte("BEAR\x0b\x00\x01\x00"),
			func(v *Vendor) (any, error) { return nil, v.QueryStatusRequest() }, nil},
		{"Query Status Response", NewQueryStatusResponse(QueryStatusStop), QueryStatusResponseID,
			[]byte("BEAR\x0c\x00\x01\x00\xff\xff"),
			func(v *Vendor) (any, error) { return v.QueryStatusResponse() }, uint16(0xFFFF)},
		{"Push-Proxy Request", NewPushProxyRequest(), PushProxyRequestID, []byte("LIME\x15\x00\x01\x00"),
			func(v *Vendor) (any, error) { return nil, v.PushProxyRequest() }, nil},
		{"Push-Proxy Ack", NewPushProxyAck([4]byte{192, 0, 2, 1}, 6346), PushProxyAckID,
			[]byte("LIME\x16\x00\x02\x00\xc0\x00\x02\x01\xca\x18"),
			func(v *Vendor) (any, error) { return v.PushProxyAck() }, netip.MustParseAddrPort("192.0.2.1:6346")},
		{"Messages-Supported", NewMessagesSupported([]VendorMessageID{HopsFlowID, PushProxyAckID}), MessagesSupportedID,
			[]byte("\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00BEAR\x04\x00\x01\x00LIME\x16\x00\x02\x00"),
			func(v *Vendor) (any, error) { return v.MessagesSupported() }, []VendorMessageID{HopsFlowID, PushProxyAckID}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.v.ID() != tc.id || tc.v.Type() != TypeVendor {
				t.Fatalf("ID %v type %v, want %v on 0x31", tc.v.ID(), tc.v.Type(), tc.id)
			}
			payloadMustReencode(t, tc.v, tc.wire)
			d, err := DecodeVendor(TypeVendor, tc.wire)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.read(d)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("read %v, want %v", got, tc.want)
			}
		})
	}
}

func TestVendorMessageIDsAreTheVersionsServentsAccept(t *testing.T) {
	tests := map[VendorMessageID]string{
		MessagesSupportedID:   "null/0v0",
		HopsFlowID:            "BEAR/4v1",
		TCPConnectBackID:      "BEAR/7v1",
		QueryStatusRequestID:  "BEAR/11v1",
		QueryStatusResponseID: "BEAR/12v1",
		PushProxyRequestID:    "LIME/21v1", // LimeWire refuses v2
		PushProxyAckID:        "LIME/22v2", // LimeWire refuses v1
	}
	for id, want := range tests {
		if got := id.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", id, got, want)
		}
	}
}

func TestVendorReadersRejectOtherMessagesVersionsAndShortData(t *testing.T) {
	dec := func(wire string) *Vendor {
		v, err := DecodeVendor(TypeVendor, []byte(wire))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		err  error
		kind error
		off  int
	}{
		{"Hops-Flow read from BEAR/7", func() error { _, err := dec("BEAR\x07\x00\x01\x00\x01\x00").HopsFlow(); return err }(), ErrMalformed, 0},
		{"Hops-Flow v2", func() error { _, err := dec("BEAR\x04\x00\x02\x00\x01").HopsFlow(); return err }(), ErrMalformed, 6},
		{"Hops-Flow without data", func() error { _, err := dec("BEAR\x04\x00\x01\x00").HopsFlow(); return err }(), ErrTruncated, 8},
		{"Connect-Back one byte", func() error { _, err := dec("BEAR\x07\x00\x01\x00\x01").TCPConnectBack(); return err }(), ErrTruncated, 9},
		{"Connect-Back port 0", func() error { _, err := dec("BEAR\x07\x00\x01\x00\x00\x00").TCPConnectBack(); return err }(), ErrMalformed, 8},
		{"Query Status Request v2", dec("BEAR\x0b\x00\x02\x00").QueryStatusRequest(), ErrMalformed, 6},
		{"Query Status Response short", func() error { _, err := dec("BEAR\x0c\x00\x01\x00\x01").QueryStatusResponse(); return err }(), ErrTruncated, 9},
		{"Push-Proxy Request v3", dec("LIME\x15\x00\x03\x00").PushProxyRequest(), ErrMalformed, 6},
		{"Push-Proxy Request from GTKG", dec("GTKG\x15\x00\x01\x00").PushProxyRequest(), ErrMalformed, 0},
		{"Push-Proxy Ack v1", func() error { _, err := dec("LIME\x16\x00\x01\x00\xca\x18").PushProxyAck(); return err }(), ErrMalformed, 6},
		{"Push-Proxy Ack 5 bytes", func() error { _, err := dec("LIME\x16\x00\x02\x00\x01\x02\x03\x04\x05").PushProxyAck(); return err }(), ErrTruncated, 13},
		{"Messages-Supported v1", func() error {
			_, err := dec("\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00").MessagesSupported()
			return err
		}(), ErrMalformed, 6},
		{"Messages-Supported no count", func() error { _, err := dec("\x00\x00\x00\x00\x00\x00\x00\x00\x01").MessagesSupported(); return err }(), ErrTruncated, 9},
		{"Messages-Supported count too high", func() error {
			_, err := dec("\x00\x00\x00\x00\x00\x00\x00\x00\xff\xffBEAR\x04\x00\x01\x00").MessagesSupported()
			return err
		}(), ErrTruncated, 18},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { payloadWantError(t, tc.err, tc.kind, tc.off) })
	}
}

func TestVendorReadersAcceptLongerDataAndPushProxyRequestV2(t *testing.T) {
	v, _ := DecodeVendor(TypeVendor, []byte("BEAR\x04\x00\x01\x00\x05\xff"))
	if h, err := v.HopsFlow(); err != nil || h != 5 {
		t.Errorf("Hops-Flow with an extra byte = %d, %v; gtk reads it", h, err)
	}
	v, _ = DecodeVendor(TypeVendor, []byte("LIME\x15\x00\x02\x00"))
	if err := v.PushProxyRequest(); err != nil {
		t.Errorf("LIME/21v2: %v; gtk accepts it", err)
	}
	v, _ = DecodeVendor(TypeVendor, []byte("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07"))
	if ids, err := v.MessagesSupported(); err != nil || len(ids) != 0 {
		t.Errorf("empty Messages-Supported with a stray byte = %v, %v", ids, err)
	}
}

func TestDecodeVendorNeedsTheEightBytePrefixAndAVendorType(t *testing.T) {
	_, err := DecodeVendor(TypeVendor, []byte("BEAR\x04\x00\x01"))
	payloadWantError(t, err, ErrTruncated, 7)
	_, err = DecodeVendor(TypePing, []byte("BEAR\x04\x00\x01\x00"))
	payloadWantError(t, err, ErrMalformed, -1)

	in := []byte("GTKG\x09\x00\x01\x00\x00")
	v, err := DecodeVendor(TypeStdVendor, in)
	if err != nil {
		t.Fatal(err)
	}
	if v.Type() != TypeStdVendor || v.Kind != TypeStdVendor {
		t.Fatalf("0x32 message decoded as %v", v.Type())
	}
	if !bytes.Equal(v.Data, in[8:]) || &v.Data[0] != &in[8] {
		t.Fatal("Data does not alias the input's data bytes")
	}
	payloadMustReencode(t, v, in)
	if got, want := v.String(), "StdVendor GTKG/9v1 Time-Sync-Request (1 data bytes)"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

func TestVendorCodeString(t *testing.T) {
	tests := map[VendorCode]string{
		VendorNull:               "null",
		VendorGTKG:               "GTKG",
		{'L', 'I', 'M', 'E'}:     "LIME",
		{'a', 0, 'b', 'c'}:       "0x61006263",
		{'R', 'A', 'Z', 0xA9}:    "0x52415aa9",
		{' ', 'A', 'B', 'C'}:     "0x20414243",
		{'G', 'N', 'U', 'T'}:     "GNUT",
		{'b', 'e', 'a', 'r'}:     "bear",
		{0xFF, 0xFF, 0xFF, 0xFF}: "0xffffffff",
	}
	for c, want := range tests {
		if got := c.String(); got != want {
			t.Errorf("%v.String() = %q, want %q", [4]byte(c), got, want)
		}
	}
}

func TestVendorStringNamesAndDecodesKnownMessages(t *testing.T) {
	tests := []struct {
		v    *Vendor
		want string
	}{
		{NewHopsFlow(0), "Vendor BEAR/4v1 Hops-Flow hops<0"},
		{NewQueryStatusResponse(QueryStatusStop), "Vendor BEAR/12v1 Query-Status-Response stop"},
		{NewQueryStatusResponse(7), "Vendor BEAR/12v1 Query-Status-Response hits=7"},
		{NewPushProxyAck([4]byte{10, 0, 0, 1}, 1), "Vendor LIME/22v2 Push-Proxy-Ack 10.0.0.1:1"},
		{NewMessagesSupported([]VendorMessageID{HopsFlowID}), "Vendor null/0v0 Messages-Supported [BEAR/4v1]"},
		{&Vendor{Vendor: VendorBEAR, Selector: 4, Version: 9, Data: []byte{1}}, "Vendor BEAR/4v9 Hops-Flow (1 data bytes)"},
		{&Vendor{Vendor: VendorCode{'X', 'X', 'X', 'X'}, Selector: 1, Version: 1}, "Vendor XXXX/1v1"},
	}
	for _, tc := range tests {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func FuzzVendor(f *testing.F) {
	for _, d := range walkAll(f, TypeVendor, TypeStdVendor) {
		f.Add(byte(d.header.Type), bytes.Clone(d.payload))
	}
	f.Add(byte(TypeVendor), []byte("LIME\x16\x00\x02\x00\xc0\x00\x02\x01\xca\x18"))
	f.Add(byte(TypeStdVendor), []byte("BEAR\x07\x00\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, ty byte, b []byte) {
		v, err := DecodeVendor(Type(ty), b)
		if err != nil {
			payloadFuzzError(t, err)
			return
		}
		payloadMustReencode(t, v, b)
		if v.Type() != Type(ty) {
			t.Fatalf("type 0x%02x decoded as %v", ty, v.Type())
		}
		_ = v.String()
		for _, read := range []func() error{
			func() error { _, err := v.MessagesSupported(); return err },
			func() error { _, err := v.HopsFlow(); return err },
			func() error { _, err := v.TCPConnectBack(); return err },
			v.QueryStatusRequest,
			func() error { _, err := v.QueryStatusResponse(); return err },
			v.PushProxyRequest,
			func() error { _, err := v.PushProxyAck(); return err },
		} {
			if err := read(); err != nil {
				payloadFuzzError(t, err)
			}
		}
	})
}

// LIME/13 (OOB Proxy Veto) read as gtk-gnutella reads it: no byte, or a
// byte of 3 or more, vetoes; a byte below 3 allows proxying (of OOB v3
// queries). Another version is refused.
func TestOOBProxyVeto(t *testing.T) {
	for data, want := range map[string]bool{"": true, "\x00": false, "\x02": false, "\x03": true, "\xff": true} {
		v := &Vendor{Kind: TypeVendor, Vendor: VendorLIME, Selector: 13, Version: 1, Data: []byte(data)}
		if got, err := v.OOBProxyVeto(); err != nil || got != want {
			t.Errorf("LIME/13 %x: veto %v (%v), want %v", data, got, err, want)
		}
	}
	if veto, err := NewOOBProxyVeto(255).OOBProxyVeto(); err != nil || !veto {
		t.Errorf("NewOOBProxyVeto(255) reads veto=%v, %v", veto, err)
	}
	v2 := &Vendor{Kind: TypeVendor, Vendor: VendorLIME, Selector: 13, Version: 2}
	if _, err := v2.OOBProxyVeto(); err == nil {
		t.Error("LIME/13v2 read")
	}
}
