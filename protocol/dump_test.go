package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

func TestDumpPrintsEveryRecording(t *testing.T) {
	cases := []struct {
		file        string
		descriptors int
		want        []string // lines (or line prefixes) that must appear
	}{
		{"leaf-to-ultrapeer.bin", 28, []string{
			"0 GNUTELLA CONNECT/0.6",
			"    X-Ultrapeer: False",
			"    X-Features: browse/1.0, sflag/0.1, HSEP/0.2",
			"541 GNUTELLA/0.6 200 OK",
			"564 RouteTableUpdate c93331029b983e238f06ddc0d5fc2188 ttl=1 hops=0 len=6 ",
			"1011 Query 68f9771c3102602db232135f79b1c4a5 ttl=4 hops=0 len=19 ",
			"1086 QueryHit 340c91fe3102ac78fa1dac2359015e1b ttl=6 hops=0 len=156 ",
			"1265 HSEP 58933102ddd7e7c448aec0c80f154194 ttl=1 hops=0 len=24 ",
			"1312 Push 740a310207db124026aa4c165675b871 ttl=4 hops=0 len=26 ",
			"2113 Query 5f3f770e3102474d38e29fa393e5da45 ttl=4 hops=0 len=20 ",
		}},
		{"ultrapeer-to-leaf.bin", 14, []string{
			"0 GNUTELLA/0.6 200 OK",
			"    X-Ultrapeer: True",
			"561 Vendor 00000000000000000000000000000000 ttl=1 hops=0 len=218 ",
			"865 Pong 08a031026770a465ff4367d572bb3203 ttl=1 hops=0 len=36 ",
			"983 QueryHit 68f9771c3102602db232135f79b1c4a5 ttl=6 hops=0 len=158 ",
			"1597 Bye d50131026248e73b308ed5542a30eeb4 ttl=1 hops=0 len=19 ",
		}},
		{"ultrapeer-to-other-leaf-1.bin", 5, []string{
			"0 GNUTELLA/0.6 200 OK",
			"504 RouteTableUpdate a9d63102a2e3c0853e702322f2e00f47 ttl=1 hops=0 len=6 ",
			"981 Ping c7d63102bc582841ffa0253cd0dec103 ttl=4 hops=0 len=7 ",
		}},
		{"ultrapeer-to-other-leaf-2.bin", 7, []string{
			"981 Pong fbfbffb30bde63027d67edb4d9aceb31 ttl=1 hops=0 len=36 ",
			"1040 Query 4797ec6c3102d4edbf870e55ce065365 ttl=3 hops=0 len=15 ",
		}},
		{"push-giv-and-upload.bin", 0, []string{
			"0 GIV 0:0efd31026d8def9548ee17f219e07503/file",
			"45 HTTP/1.1 200 OK",
			"    Content-Length: 300000",
			"    X-Gnutella-Content-URN: urn:sha1:X4W42LDG7CDMMJAJT2ODLN7IBG5UYDG7",
			"667 body 300000 bytes urn:sha1:X4W42LDG7CDMMJAJT2ODLN7IBG5UYDG7 (matches X-Gnutella-Content-URN)",
		}},
		{"push-download-request.bin", 0, []string{
			"0 GET /uri-res/N2R?urn:sha1:X4W42LDG7CDMMJAJT2ODLN7IBG5UYDG7 HTTP/1.1",
			"    X-Node: 127.0.0.1:16357",
			"    X-Queue: 1.1",
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			var out bytes.Buffer
			if err := Dump(&out, bytes.NewReader(readRecording(t, c.file))); err != nil {
				t.Fatalf("Dump: %v\n%s", err, out.String())
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			for _, w := range c.want {
				found := false
				for _, l := range lines {
					if strings.HasPrefix(l, w) {
						found = true
						break
					}
				}
				if !found {
					t.Errorf("no line starting with %q in\n%s", w, out.String())
				}
			}
			n := 0
			for _, l := range lines {
				if strings.Contains(l, " ttl=") {
					n++
					if strings.HasSuffix(l, " ") {
						t.Errorf("descriptor line without a payload summary: %q", l)
					}
				}
			}
			if n != c.descriptors {
				t.Errorf("%d descriptor lines, want %d", n, c.descriptors)
			}
		})
	}
}

func TestDumpOfAnEmptyStreamPrintsNothing(t *testing.T) {
	var out bytes.Buffer
	if err := Dump(&out, bytes.NewReader(nil)); err != nil || out.Len() != 0 {
		t.Fatalf("err = %v, output %q", err, out.String())
	}
}

func TestDumpReadsDescriptorsWithoutAHandshake(t *testing.T) {
	body, _ := recordedDescriptors(t, "ultrapeer-to-leaf.bin")
	var out bytes.Buffer
	if err := Dump(&out, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "0 Vendor 00000000000000000000000000000000 ttl=1 hops=0 len=218 ") {
		t.Errorf("output starts %q", out.String()[:min(out.Len(), 80)])
	}
}

func TestDumpReadsALegacyHandshake(t *testing.T) {
	stream := []byte("GNUTELLA CONNECT/0.4\n\nGNUTELLA OK\n\n")
	stream = append(stream, rawDescriptor(TypePing, 1, 0, 0, nil)...)
	var out bytes.Buffer
	if err := Dump(&out, bytes.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	want := "0 GNUTELLA CONNECT/0.4\n22 GNUTELLA OK\n35 Ping 0102030405060708090a0b0c0d0e0f10 ttl=1 hops=0 len=0 "
	if !strings.HasPrefix(out.String(), want) {
		t.Errorf("output\n%s\nwant it to start with\n%s", out.String(), want)
	}
}

// corrupt returns a copy of b with f applied.
func corrupt(b []byte, f func([]byte) []byte) []byte {
	return f(append([]byte(nil), b...))
}

func setByte(off int, v byte) func([]byte) []byte {
	return func(b []byte) []byte { b[off] = v; return b }
}

func TestDumpNamesTheOffsetOfTheFirstBadByte(t *testing.T) {
	leaf := readRecording(t, "leaf-to-ultrapeer.bin")
	up := readRecording(t, "ultrapeer-to-leaf.bin")
	giv := readRecording(t, "push-giv-and-upload.bin")
	get := readRecording(t, "push-download-request.bin")
	// The Pong at 865 in ultrapeer-to-leaf.bin: payload at 888, its GGEP
	// block at 902 (0xC3), the first extension's flags at 903, its ID "VC"
	// at 904 and its length byte at 906.
	const pongGGEP = 902
	ultraLine := bytes.Index(leaf, []byte("X-Ultrapeer: False"))
	cases := []struct {
		name     string
		stream   []byte
		kind     error
		offset   int
		lastLine string // the last line printed before the error
	}{
		{"truncated inside a header", leaf[:1100], ErrTruncated, 1100, "1053 Vendor"},
		{"truncated inside a payload", leaf[:1200], ErrTruncated, 1200, "1053 Vendor"},
		{"truncated one byte before the end", up[:len(up)-1], ErrTruncated, len(up) - 1, "1538 Pong"},
		{"query length over the 1024 cap", corrupt(leaf, func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[1011+19:], 2000)
			return b
		}), ErrTooLarge, 1011 + 19, "948 Vendor"},
		{"marked length", corrupt(up, setByte(1164+22, 0x80)), ErrTooLarge, 1164 + 19, "983 QueryHit"},
		{"garbage length desynchronising the stream", corrupt(leaf, func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[677+19:], 0xDEADBEEF)
			return b
		}), ErrTooLarge, 677 + 19, "593 RouteTableUpdate"},
		{"pong GGEP with the reserved flag", corrupt(up, setByte(pongGGEP+1, 0x12)), ErrBadGGEP, pongGGEP + 1, "802 Vendor"},
		{"pong GGEP length byte with both high bits", corrupt(up, setByte(pongGGEP+4, 0xC5)), ErrBadGGEP, pongGGEP + 4, "802 Vendor"},
		{"pong GGEP ID with a control byte", corrupt(up, setByte(pongGGEP+3, 0x01)), ErrBadGGEP, pongGGEP + 3, "802 Vendor"},
		{"handshake header without a colon", corrupt(leaf, setByte(ultraLine+len("X-Ultrapeer"), ' ')), ErrBadHandshake, ultraLine, ""},
		{"handshake status code not digits", corrupt(leaf, setByte(541+13, 'x')), ErrBadHandshake, 541 + 13, "    X-Features"},
		{"GIV servent ID not hex", corrupt(giv, setByte(10, 'z')), ErrBadHandshake, 10, ""},
		{"HTTP status code not digits", corrupt(giv, setByte(45+9, 'x')), ErrMalformed, 45 + 9, "0 GIV"},
		{"upload body cut short", giv[:100000], ErrTruncated, 100000, "    X-Thex-URI"},
		{"request headers cut short", get[:100], ErrTruncated, 100, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Dump(&out, bytes.NewReader(c.stream))
			if !errors.Is(err, c.kind) {
				t.Fatalf("err = %v, want %v", err, c.kind)
			}
			if off := ErrorOffset(err); off != c.offset {
				t.Errorf("error offset %d, want %d (%v)", off, c.offset, err)
			}
			if !strings.Contains(err.Error(), "(at byte "+strconv.Itoa(c.offset)+")") {
				t.Errorf("message %q does not name byte %d", err.Error(), c.offset)
			}
			text := strings.TrimSuffix(out.String(), "\n")
			last := text[strings.LastIndexByte(text, '\n')+1:]
			if c.lastLine != "" && !strings.HasPrefix(last, c.lastLine) {
				t.Errorf("last line printed %q, want it to start with %q", last, c.lastLine)
			}
		})
	}
}

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestDumpReturnsOutputErrors(t *testing.T) {
	err := Dump(brokenWriter{}, bytes.NewReader(readRecording(t, "ultrapeer-to-leaf.bin")))
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v, want the write error", err)
	}
}

// FuzzDump runs Dump on arbitrary streams: it must not panic, and an error
// must name an offset inside the stream.
func FuzzDump(f *testing.F) {
	for _, name := range []string{"leaf-to-ultrapeer.bin", "ultrapeer-to-leaf.bin", "ultrapeer-to-other-leaf-1.bin",
		"ultrapeer-to-other-leaf-2.bin", "push-download-request.bin"} {
		f.Add(readRecording(f, name))
	}
	giv := readRecording(f, "push-giv-and-upload.bin")
	f.Add(giv[:1000])
	f.Add([]byte("GNUTELLA CONNECT/0.4\n\nGNUTELLA OK\n\n"))
	f.Add([]byte("HEAD / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		err := Dump(io.Discard, bytes.NewReader(in))
		if err == nil {
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %T %v is not an *Error", err, err)
		}
		if e.Offset < 0 || e.Offset > len(in) {
			t.Fatalf("error offset %d outside the %d-byte stream: %v", e.Offset, len(in), err)
		}
	})
}
