package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func givMustGUID(t testing.TB, s string) GUID {
	t.Helper()
	g, err := ParseGUID(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestParseGIV(t *testing.T) {
	id := givMustGUID(t, "0efd31026d8def9548ee17f219e07503")
	for _, tc := range []struct {
		name string
		in   string
		want GIV
		off  int // error offset, when an error is expected
		err  bool
	}{
		{name: "gtk-gnutella", in: "GIV 0:0efd31026d8def9548ee17f219e07503/file", want: GIV{0, id, "file"}},
		{name: "upper-case hex", in: "GIV 0:0EFD31026D8DEF9548EE17F219E07503/file", want: GIV{0, id, "file"}},
		{name: "name with spaces and slashes", in: "GIV 42:0efd31026d8def9548ee17f219e07503/a b/c.mp3",
			want: GIV{42, id, "a b/c.mp3"}},
		{name: "empty name", in: "GIV 1:0efd31026d8def9548ee17f219e07503/", want: GIV{1, id, ""}},
		{name: "no name", in: "GIV 1:0efd31026d8def9548ee17f219e07503", want: GIV{1, id, ""}},
		{name: "trailing cr dropped from name", in: "GIV 1:0efd31026d8def9548ee17f219e07503/f\r", want: GIV{1, id, "f"}},
		{name: "largest index", in: "GIV 4294967295:0efd31026d8def9548ee17f219e07503/x", want: GIV{0xFFFFFFFF, id, "x"}},
		{name: "index overflow", in: "GIV 4294967296:0efd31026d8def9548ee17f219e07503/x", err: true, off: 13},
		{name: "no index", in: "GIV :0efd31026d8def9548ee17f219e07503/x", err: true, off: 4},
		{name: "negative index", in: "GIV -1:0efd31026d8def9548ee17f219e07503/x", err: true, off: 4},
		{name: "no colon", in: "GIV 0 0efd31026d8def9548ee17f219e07503/x", err: true, off: 5},
		{name: "short hex", in: "GIV 0:0efd31026d8def9548ee17f219e0750/x", err: true, off: 6 + 31},
		{name: "bad hex", in: "GIV 0:0efd31026d8def9548ee17f219e0750g/x", err: true, off: 6 + 31},
		{name: "long hex", in: "GIV 0:0efd31026d8def9548ee17f219e075031/x", err: true, off: 6 + 32},
		{name: "lower-case giv", in: "giv 0:0efd31026d8def9548ee17f219e07503/x", err: true, off: 0},
		{name: "empty", in: "", err: true, off: 0},
		{name: "http", in: "GET / HTTP/1.1", err: true, off: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := ParseGIV(tc.in)
			if tc.err {
				if !errors.Is(err, ErrBadHandshake) {
					t.Fatalf("accepted: %+v, %v", g, err)
				}
				if ErrorOffset(err) != tc.off {
					t.Errorf("offset %d, want %d (%v)", ErrorOffset(err), tc.off, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g != tc.want {
				t.Errorf("got %+v, want %+v", g, tc.want)
			}
		})
	}
}

func TestReadGIV(t *testing.T) {
	id := givMustGUID(t, "c940310227d6b24c42a0ce563c942dcd")
	for _, tc := range []struct {
		name string
		in   string
		want GIV
		rest string
		err  error
	}{
		{name: "lf lf", in: "GIV 3:c940310227d6b24c42a0ce563c942dcd/song.ogg\n\nGET /", want: GIV{3, id, "song.ogg"}, rest: "GET /"},
		{name: "crlf crlf", in: "GIV 3:c940310227d6b24c42a0ce563c942dcd/song.ogg\r\n\r\nGET /", want: GIV{3, id, "song.ogg"}, rest: "GET /"},
		{name: "nothing after", in: "GIV 3:c940310227d6b24c42a0ce563c942dcd/\n\n", want: GIV{3, id, ""}},
		{name: "no empty line", in: "GIV 3:c940310227d6b24c42a0ce563c942dcd/x\nGET / HTTP/1.1\r\n", err: ErrBadHandshake},
		{name: "eof before empty line", in: "GIV 3:c940310227d6b24c42a0ce563c942dcd/x\n", err: ErrTruncated},
		{name: "eof inside", in: "GIV 3:c9403", err: ErrTruncated},
		{name: "silent close", in: "", err: io.EOF},
		{name: "bad line", in: "GIVE 3\n\n", err: ErrBadHandshake},
		{name: "long name", in: "GIV 3:c940310227d6b24c42a0ce563c942dcd/" + strings.Repeat("n", MaxHandshakeLine) + "\n\n",
			err: ErrLineTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := hsReader(tc.in)
			g, err := ReadGIV(r)
			hsWantKind(t, err, tc.err)
			if tc.err != nil {
				return
			}
			if g != tc.want {
				t.Errorf("got %+v, want %+v", g, tc.want)
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != tc.rest {
				t.Errorf("rest %q, want %q", rest, tc.rest)
			}
		})
	}
}

func TestGIVAppendTo(t *testing.T) {
	id := givMustGUID(t, "0EFD31026D8DEF9548EE17F219E07503")
	g := GIV{Index: 0, ServentID: id, Name: "file"}
	if got := string(g.AppendTo([]byte("x"))); got != "xGIV 0:0efd31026d8def9548ee17f219e07503/file\n\n" {
		t.Errorf("AppendTo = %q", got)
	}
	if got := g.String(); got != "GIV 0:0efd31026d8def9548ee17f219e07503/file" {
		t.Errorf("String = %q", got)
	}
	evil := GIV{Index: 7, ServentID: id, Name: "a\nGET /secret"}
	back, err := ReadGIV(bufio.NewReader(bytes.NewReader(evil.AppendTo(nil))))
	if err != nil || back.Name != "a GET /secret" || back.Index != 7 {
		t.Errorf("name with a line feed: %+v, %v", back, err)
	}
}

func FuzzGIV(f *testing.F) {
	f.Add([]byte("GIV 0:0efd31026d8def9548ee17f219e07503/file\n\n"))
	f.Add([]byte("GIV 4294967295:0EFD31026D8DEF9548EE17F219E07503\r\n\r\nGET / HTTP/1.1\r\n"))
	f.Add([]byte("GIV 12:0efd31026d8def9548ee17f219e07503/a/b c\r\r\n\n"))
	f.Add(hsReadFile(f, "push-giv-and-upload.bin")[:200])
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), 16)
		g, err := ReadGIV(r)
		if err != nil {
			var e *Error
			if err != io.EOF && !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		// The first line alone parses to the same GIV.
		line, _, _ := strings.Cut(string(data), "\n")
		if g1, err := ParseGIV(strings.TrimSuffix(line, "\r")); err != nil || g1 != g {
			t.Fatalf("ParseGIV of the first line: %+v, %v; ReadGIV gave %+v", g1, err, g)
		}
		enc := g.AppendTo(nil)
		g2, err := ReadGIV(bufio.NewReader(bytes.NewReader(enc)))
		if err != nil {
			t.Fatalf("%q does not read back: %v", enc, err)
		}
		if g2 != g {
			t.Fatalf("round trip %+v -> %q -> %+v", g, enc, g2)
		}
		if !bytes.Equal(g2.AppendTo(nil), enc) {
			t.Fatalf("encoding not stable")
		}
	})
}
