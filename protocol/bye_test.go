package protocol

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestRecordedByeIsServentShutdownAndReencodesExactly(t *testing.T) {
	ds := walkAll(t, TypeBye)
	if len(ds) != 1 {
		t.Fatalf("%d recorded Byes, want 1", len(ds))
	}
	d := ds[0]
	y, err := DecodeBye(d.payload)
	if err != nil {
		t.Fatal(err)
	}
	if y.Code != ByeShutdown || y.Message != "Servent shutdown" || y.NoNUL || y.Trailer != nil {
		t.Fatalf("decoded %+v", y)
	}
	if d.header.TTL != 1 || d.header.Hops != 0 {
		t.Fatalf("recorded Bye has TTL %d hops %d", d.header.TTL, d.header.Hops)
	}
	payloadMustReencode(t, y, d.payload)
	// NewBye writes the same bytes gtk-gnutella wrote.
	payloadMustReencode(t, NewBye(ByeShutdown, "Servent shutdown"), d.payload)
	if got, want := y.String(), `Bye 200 shutdown "Servent shutdown"`; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

func TestDecodeByeKeepsEveryAcceptedFormExactly(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want Bye
	}{
		{"code only", []byte{0xC8, 0x00}, Bye{Code: 200, Message: "", NoNUL: true}},
		{"empty message with NUL", []byte{0x91, 0x01, 0x00}, Bye{Code: 401}},
		{"no NUL", []byte("\x95\x01timeout"), Bye{Code: 405, Message: "timeout", NoNUL: true}},
		{"short form", []byte("\xf6\x01Send queue full\x00"), Bye{Code: 502, Message: "Send queue full"}},
		{"with headers", []byte("\x90\x01Too large\r\nServer: x\r\n\r\n\x00"),
			Bye{Code: 400, Message: "Too large\r\nServer: x\r\n\r\n"}},
		{"bytes after the NUL", []byte("\xc8\x00bye\x00\x00junk"), Bye{Code: 200, Message: "bye", Trailer: []byte("\x00junk")}},
		{"unregistered code", []byte{0x2B, 0x01, 'x', 0}, Bye{Code: 299, Message: "x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y, err := DecodeBye(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*y, tc.want) {
				t.Fatalf("decoded %+v, want %+v", *y, tc.want)
			}
			payloadMustReencode(t, y, tc.in)
		})
	}
}

func TestDecodeByeRejectsShortAndOversizedPayloads(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		kind error
		off  int
	}{
		{"empty", nil, ErrTruncated, 0},
		{"one byte", []byte{0xC8}, ErrTruncated, 1},
		{"over 4096 bytes", append([]byte{0xC8, 0}, bytes.Repeat([]byte{'a'}, MaxByeSize-1)...), ErrTooLarge, MaxByeSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeBye(tc.in)
			payloadWantError(t, err, tc.kind, tc.off)
		})
	}
	exact := append([]byte{0xC8, 0}, bytes.Repeat([]byte{'a'}, MaxByeSize-2)...)
	if _, err := DecodeBye(exact); err != nil {
		t.Fatalf("a %d-byte Bye is rejected: %v", MaxByeSize, err)
	}
}

func TestByeAppendToRefusesWhatCannotRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		bye  Bye
		kind error
		off  int
	}{
		{"NUL inside the message", Bye{Code: 200, Message: "a\x00b"}, ErrMalformed, 3},
		{"trailer without NUL", Bye{Code: 200, Message: "a", NoNUL: true, Trailer: []byte("x")}, ErrMalformed, -1},
		{"too large", Bye{Code: 200, Message: strings.Repeat("a", MaxByeSize-2)}, ErrTooLarge, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.bye.AppendTo([]byte{9})
			payloadWantError(t, err, tc.kind, tc.off)
			if !bytes.Equal(out, []byte{9}) {
				t.Fatalf("failed AppendTo left % x", out)
			}
		})
	}
}

func TestNewByeWritesCodeLEReasonAndNUL(t *testing.T) {
	y := NewBye(ByeInvalidQRPSequence, "No QRP RESET received before PATCH")
	payloadMustReencode(t, y, []byte("\x9d\x01No QRP RESET received before PATCH\x00"))
	if y.Type() != TypeBye {
		t.Fatalf("Type() = %v", y.Type())
	}
}

func TestByeReasonIsTheFirstLine(t *testing.T) {
	for msg, want := range map[string]string{
		"":                                  "",
		"Servent shutdown":                  "Servent shutdown",
		"Too large\r\nServer: gnutella\r\n": "Too large",
	} {
		if got := (&Bye{Message: msg}).Reason(); got != want {
			t.Errorf("Reason() of %q = %q, want %q", msg, got, want)
		}
	}
}

func TestByeCodesHaveTheirRegisteredNumbers(t *testing.T) {
	tests := []struct {
		code ByeCode
		num  uint16
		name string
	}{
		{ByeShutdown, 200, "200 shutdown"},
		{ByeManualRemoval, 201, "201 manual removal"},
		{ByeLocalNodePreferred, 202, "202 local node preferred"},
		{ByeChangingPeerMode, 203, "203 changing peer mode"},
		{ByeMessageTooLarge, 400, "400 message too large"},
		{ByeTooManyDuplicates, 401, "401 too many duplicates"},
		{ByeImproperQueries, 402, "402 improper queries"},
		{ByeHighTTL, 403, "403 high-TTL message"},
		{ByeTooManyUnknown, 404, "404 too many unknown messages"},
		{ByeActivityTimeout, 405, "405 activity timeout"},
		{ByeNoAliveReply, 406, "406 no reply to alive pings"},
		{ByeNotSharing, 407, "407 not sharing"},
		{ByeTTLZero, 408, "408 TTL=0 message"},
		{ByeTooManyErrors, 409, "409 too many errors"},
		{ByeExcessiveMessages, 410, "410 excessive messages"},
		{ByeInvalidPayload, 411, "411 invalid payload"},
		{ByeSecurityViolation, 412, "412 security violation"},
		{ByeInvalidQRPSequence, 413, "413 invalid QRP sequence"},
		{ByeLeafRelaying, 414, "414 leaf relaying"},
		{ByeHostilePeer, 415, "415 hostile peer"},
		{ByeInternalError, 500, "500 internal error"},
		{ByeProtocolDesync, 501, "501 protocol desync"},
		{ByeSendQueueFull, 502, "502 send queue full"},
		{ByeClosing, 503, "503 closing"},
		{ByeLeafUltraSwitch, 504, "504 leaf/ultra switch during handshake"},
		{ByeProtocolNotSupported, 505, "505 protocol not supported"},
		{ByeCode(299), 299, "299"},
	}
	for _, tc := range tests {
		if uint16(tc.code) != tc.num {
			t.Errorf("%s = %d, want %d", tc.name, tc.code, tc.num)
		}
		if got := tc.code.String(); got != tc.name {
			t.Errorf("ByeCode(%d).String() = %q, want %q", tc.num, got, tc.name)
		}
	}
}

func FuzzBye(f *testing.F) {
	walkSeeds(f, TypeBye)
	f.Add([]byte{0xC8, 0x00})
	f.Add([]byte("\x90\x01Too large\r\nServer: x\r\n\r\n\x00"))
	f.Add([]byte("\xc8\x00bye\x00\x00junk"))
	f.Fuzz(func(t *testing.T, b []byte) {
		y, err := DecodeBye(b)
		if err != nil {
			payloadFuzzError(t, err)
			return
		}
		payloadMustReencode(t, y, b)
		_ = y.String()
		_ = y.Reason()
	})
}
