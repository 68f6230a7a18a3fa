package protocol

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

// A datagram is one descriptor exactly: short, long, over-cap and marked
// lengths are typed errors, and a good one decodes without copying.
func TestDecodeDatagram(t *testing.T) {
	ping, err := (&Message{Header: Header{ID: NewGUID(), TTL: 1}, Payload: NewHostsRequest(0, VendorVersion{Vendor: VendorCode{'G', 'N', 'U', 'T'}})}).AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, payload, err := DecodeDatagram(ping, Limits{})
	if err != nil || h.Type != TypePing || len(payload) != int(h.Length) || &payload[0] != &ping[HeaderLen] {
		t.Fatalf("good datagram: %v %d bytes %v", h, len(payload), err)
	}
	p, err := DecodePing(payload)
	if err != nil {
		t.Fatal(err)
	}
	if flags, ok := p.HostsRequest(); !ok || flags != 0 {
		t.Errorf("HostsRequest = %d, %v; want 0, true", flags, ok)
	}
	if _, ok := (&Ping{}).HostsRequest(); ok {
		t.Error("a bare ping asks for hosts")
	}
	big := append([]byte(nil), ping[:HeaderLen]...)
	big[16] = byte(TypeQuery)
	big[19], big[20] = 0x01, 0x10 // 4097 > the Query cap of 1024
	marked := append([]byte(nil), ping...)
	marked[22] = 0x80
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"short header", ping[:HeaderLen-1], ErrTruncated},
		{"payload cut", ping[:len(ping)-1], ErrTruncated},
		{"bytes after", append(append([]byte(nil), ping...), 0), ErrMalformed},
		{"over the cap", big, ErrTooLarge},
		{"marked length", marked, ErrTooLarge},
	} {
		if _, _, err := DecodeDatagram(tc.b, Limits{}); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// IPP packs IPv4 addresses 6 bytes each and reads back the same; a length
// that is not a multiple of 6 is malformed; IPv6 addresses are left out.
func TestPackedHostsRoundTrip(t *testing.T) {
	addrs := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:6346"), netip.MustParseAddrPort("198.51.100.2:1")}
	ext := PackedHostsExtension(append(addrs, netip.MustParseAddrPort("[2001:db8::1]:6346")))
	if len(ext.Data) != 12 || ext.Data[4] != 0xca || ext.Data[5] != 0x18 {
		t.Fatalf("IPP data % x: want 12 bytes, port little-endian", ext.Data)
	}
	b, err := (&Pong{Port: 1, IP: [4]byte{192, 0, 2, 9}, GGEP: GGEP{ext, {ID: GGEPUDPHostCache}}}).AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := DecodePong(b)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := p.PackedHosts()
	if !ok || err != nil || !reflect.DeepEqual(got, addrs) || !p.UDPHostCache() {
		t.Errorf("PackedHosts = %v, %v, %v (UDPHC %v); want %v", got, ok, err, p.UDPHostCache(), addrs)
	}
	p.GGEP = GGEP{{ID: GGEPPackedHosts, Data: make([]byte, 7)}}
	if _, ok, err := p.PackedHosts(); !ok || !errors.Is(err, ErrMalformed) {
		t.Errorf("7-byte IPP: %v, %v; want malformed", ok, err)
	}
}
