package protocol

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Parsers of handshake header values and of the WALKCHECK line that had no
// fuzz target of their own: X-Try / X-Try-Ultrapeers (the servent feeds
// every peer's into its host cache), Listen-IP and friends, and the GUID of
// the GUID header and of "WALKCHECK <guid>".

// FuzzParseTryList: no panic; every address is usable (port ≠ 0, not
// unspecified, no zone, IPv4 not mapped) and the list written back with
// FormatTryList reads back the same.
func FuzzParseTryList(f *testing.F) {
	f.Add("1.2.3.4:6346,5.6.7.8:6347")
	f.Add("1.2.3.4:6346 2024-01-01T00:00Z, 9.9.9.9 ,[2001:db8::1]:6348")
	f.Add("2001:db8::1,[2001:db8::2]:0,8.8.8.8:65536,8.8.8.8:9999999")
	f.Add("[fe80::1%eth0]:6346,::ffff:1.2.3.4,[::ffff:5.6.7.8]:80,0.0.0.0:1")
	f.Add("1.2.3.4junk,1.2.3.4:80junk,garbage,,:,[,]")
	f.Add(strings.Repeat("8.8.8.8:1,", 100))
	f.Fuzz(func(t *testing.T, v string) {
		got := ParseTryList(v)
		for _, a := range got {
			if a.Port() == 0 || a.Addr().IsUnspecified() || a.Addr().Zone() != "" || a.Addr().Is4In6() {
				t.Fatalf("ParseTryList(%q) gave %v", v, a)
			}
		}
		if back := ParseTryList(FormatTryList(got)); !slices.Equal(back, got) {
			t.Fatalf("ParseTryList(%q) = %v; written back and read again: %v", v, got, back)
		}
	})
}

// FuzzParseListenAddr: no panic; an accepted address has a port, no zone,
// an unmapped IPv4, and reads back from its own String.
func FuzzParseListenAddr(f *testing.F) {
	f.Add("1.2.3.4:6346")
	f.Add("  [2001:db8::1]:6346\t")
	f.Add("[::ffff:1.2.3.4]:6346")
	f.Add("1.2.3.4:0")
	f.Add("[fe80::1%eth0]:1")
	f.Add("host.example:6346")
	f.Fuzz(func(t *testing.T, v string) {
		a, err := ParseListenAddr(v)
		if err != nil {
			return
		}
		if a.Port() == 0 || a.Addr().Zone() != "" || a.Addr().Is4In6() {
			t.Fatalf("ParseListenAddr(%q) = %v", v, a)
		}
		if b, err := ParseListenAddr(a.String()); err != nil || b != a {
			t.Fatalf("ParseListenAddr(%q) = %v; ParseListenAddr(%q) = %v, %v", v, a, a.String(), b, err)
		}
	})
}

// FuzzParseGUID: no panic; a parsed GUID prints as hex that parses back to
// it, and any error is a *Error.
func FuzzParseGUID(f *testing.F) {
	f.Add("0123456789abcdef0123456789ABCDEF")
	f.Add("0123456789abcdef0123456789abcde")
	f.Add("0123456789abcdef0123456789abcdefg")
	f.Add(" 0123456789abcdef0123456789abcdef ")
	f.Add("zz")
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGUID(s)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("ParseGUID(%q): error %T is not *Error", s, err)
			}
			return
		}
		if len(s) != 32 {
			t.Fatalf("ParseGUID(%q) accepted %d characters", s, len(s))
		}
		back, err := ParseGUID(g.String())
		if err != nil || back != g {
			t.Fatalf("ParseGUID(%q) = %v; ParseGUID(%q) = %v, %v", s, g, g.String(), back, err)
		}
	})
}

// FuzzDecodeDatagram: any bytes either decode as exactly one descriptor
// whose payload is the rest of the datagram, or give a typed error.
func FuzzDecodeDatagram(f *testing.F) {
	ping, _ := (&Message{Header: Header{TTL: 1}, Payload: &Ping{GGEP: GGEP{{ID: "SCP", Data: []byte{1}}}}}).AppendTo(nil)
	f.Add(ping)
	f.Add(ping[:HeaderLen])
	f.Add(append(append([]byte(nil), ping...), 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, payload, err := DecodeDatagram(b, Limits{})
		if err != nil {
			var pe *Error
			if len(b) >= HeaderLen && !errors.As(err, &pe) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(payload) != int(h.Length) || HeaderLen+len(payload) != len(b) {
			t.Fatalf("payload of %d bytes, header says %d, datagram %d", len(payload), h.Length, len(b))
		}
	})
}

// FuzzOOBVendor: any payload read as LIME/12, LIME/11 or LIME/13 (every version)
// gives a typed error or values that build back into a message reading
// the same.
func FuzzOOBVendor(f *testing.F) {
	f.Add(uint16(2), []byte{3, 1})
	f.Add(uint16(3), []byte{255, 0})
	f.Add(uint16(1), []byte{1})
	f.Add(uint16(2), []byte{0, 1})
	ack3 := NewOOBReplyAck(7, []byte("tok"))
	f.Add(uint16(3), ack3.Data)
	f.Add(uint16(3), []byte{7, 0xC3, 0x82, 'S', 'O', 0x40})
	f.Add(uint16(3), []byte{7})
	f.Add(uint16(1), []byte{})
	f.Add(uint16(1), []byte{2})
	f.Add(uint16(1), []byte{255, 9})
	f.Fuzz(func(t *testing.T, version uint16, data []byte) {
		ind := &Vendor{Kind: TypeVendor, Vendor: VendorLIME, Selector: 12, Version: version, Data: data}
		if i, err := ind.OOBReplyIndication(); err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("LIME/12: untyped error %v", err)
			}
		} else if back, err := NewOOBReplyIndication(i).OOBReplyIndication(); err != nil || (version > 1 && back != i) {
			t.Fatalf("LIME/12 %+v rebuilt as %+v, %v", i, back, err)
		}
		veto := &Vendor{Kind: TypeVendor, Vendor: VendorLIME, Selector: 13, Version: version, Data: data}
		if v, err := veto.OOBProxyVeto(); err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("LIME/13: untyped error %v", err)
			}
		} else if len(data) > 0 {
			if back, err := NewOOBProxyVeto(data[0]).OOBProxyVeto(); err != nil || back != v {
				t.Fatalf("LIME/13 %x veto=%v rebuilt as %v, %v", data, v, back, err)
			}
		}
		ack := &Vendor{Kind: TypeVendor, Vendor: VendorLIME, Selector: 11, Version: version, Data: data}
		want, token, err := ack.OOBReplyAck()
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("LIME/11: untyped error %v", err)
			}
			return
		}
		if len(token) > MaxOOBToken {
			t.Fatalf("token of %d bytes", len(token))
		}
		w2, t2, err := NewOOBReplyAck(want, token).OOBReplyAck()
		if err != nil || w2 != want || string(t2) != string(token) {
			t.Fatalf("LIME/11 want=%d token=%x rebuilt as %d %x, %v", want, token, w2, t2, err)
		}
	})
}
