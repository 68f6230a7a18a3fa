package protocol

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// cobsPaperEncode is Listing 1 of Cheshire and Baker, "Consistent Overhead
// Byte Stuffing" (1999), written out independently of the code under test:
// every block is finished by a zero or by 254 non-zero bytes, and the final
// block is always finished, even when it is empty after a 0xFF block.
func cobsPaperEncode(src []byte) []byte {
	out := []byte{0}
	codeAt, code := 0, byte(1)
	finish := func() {
		out[codeAt] = code
		codeAt = len(out)
		out = append(out, 0)
		code = 1
	}
	for _, c := range src {
		if c == 0 {
			finish()
			continue
		}
		out = append(out, c)
		code++
		if code == 0xFF {
			finish()
		}
	}
	finish()
	return out[:len(out)-1] // the placeholder after the last finished block
}

// cobsPaperDecode is Listing 2 of the paper: each code n copies n-1 bytes
// and, below 0xFF, adds a zero. The encoder's implied final zero is removed.
func cobsPaperDecode(src []byte) []byte {
	var out []byte
	for i := 0; i < len(src); {
		code := int(src[i])
		i++
		for k := 1; k < code; k++ {
			out = append(out, src[i])
			i++
		}
		if code < 0xFF {
			out = append(out, 0)
		}
	}
	if len(src) > 0 && len(out) > 0 && out[len(out)-1] == 0 {
		out = out[:len(out)-1]
	}
	return out
}

// cobsTestRun returns n bytes counting up from 1 and skipping 0.
func cobsTestRun(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i%255 + 1)
	}
	return b
}

func cobsTestCat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestCOBSVectors(t *testing.T) {
	r254, r255, r253 := cobsTestRun(254), cobsTestRun(255), cobsTestRun(253)
	tests := []struct {
		name string
		in   []byte
		want []byte // gtk-gnutella's form
		// paperExtra: the paper's encoder closes a final 0xFF block with
		// one more 0x01, which gtk-gnutella (and cobsEncode) leave out.
		paperExtra bool
	}{
		{"empty", []byte{}, []byte{0x01}, false},
		{"single zero", []byte{0x00}, []byte{0x01, 0x01}, false},
		{"two zeros", []byte{0x00, 0x00}, []byte{0x01, 0x01, 0x01}, false},
		{"zero in the middle", []byte{0x11, 0x22, 0x00, 0x33}, []byte{0x03, 0x11, 0x22, 0x02, 0x33}, false},
		{"no zero", []byte{0x11, 0x22, 0x33, 0x44}, []byte{0x05, 0x11, 0x22, 0x33, 0x44}, false},
		{"trailing zeros", []byte{0x11, 0x00, 0x00, 0x00}, []byte{0x02, 0x11, 0x01, 0x01, 0x01}, false},
		{"253 non-zero", r253, cobsTestCat([]byte{0xFE}, r253), false},
		{"254 non-zero (0xFF block ends the data)", r254, cobsTestCat([]byte{0xFF}, r254), true},
		{"255 non-zero", r255, cobsTestCat([]byte{0xFF}, r255[:254], []byte{0x02, r255[254]}), false},
		{"254 non-zero then a zero", cobsTestCat(r254, []byte{0}), cobsTestCat([]byte{0xFF}, r254, []byte{0x01, 0x01}), false},
		{"zero then 254 non-zero", cobsTestCat([]byte{0}, r254), cobsTestCat([]byte{0x01, 0xFF}, r254), true},
		{"508 non-zero", cobsTestCat(r254, r254), cobsTestCat([]byte{0xFF}, r254, []byte{0xFF}, r254), true},
		{"all 0xFF bytes", bytes.Repeat([]byte{0xFF}, 300),
			cobsTestCat([]byte{0xFF}, bytes.Repeat([]byte{0xFF}, 254), []byte{47}, bytes.Repeat([]byte{0xFF}, 46)), false},
	}
	for _, tt := range tests {
		got := cobsEncode(nil, tt.in)
		if !bytes.Equal(got, tt.want) {
			t.Errorf("%s: cobsEncode = % x, want % x", tt.name, got, tt.want)
		}
		paper := cobsPaperEncode(tt.in)
		wantPaper := tt.want
		if tt.paperExtra {
			wantPaper = cobsTestCat(tt.want, []byte{0x01})
		}
		if !bytes.Equal(paper, wantPaper) {
			t.Errorf("%s: the paper's encoder gives % x, want % x", tt.name, paper, wantPaper)
		}
		// Both forms decode to the input, with our decoder and the paper's.
		for _, enc := range [][]byte{tt.want, paper} {
			dec, err := cobsDecode(nil, enc)
			if err != nil || !bytes.Equal(dec, tt.in) {
				t.Errorf("%s: cobsDecode(% x) = % x, %v; want % x", tt.name, enc, dec, err, tt.in)
			}
			if len(dec) > len(enc) {
				t.Errorf("%s: decoding is longer than its input", tt.name)
			}
			if pd := cobsPaperDecode(enc); !bytes.Equal(pd, tt.in) && !(len(tt.in) == 0 && len(pd) == 0) {
				t.Errorf("%s: the paper's decoder gives % x for % x", tt.name, pd, enc)
			}
		}
	}
}

func TestCOBSEncodeAppendsToDst(t *testing.T) {
	got := cobsEncode([]byte("ab"), []byte{0x00, 0x05})
	if want := []byte{'a', 'b', 0x01, 0x02, 0x05}; !bytes.Equal(got, want) {
		t.Fatalf("cobsEncode(\"ab\", 00 05) = % x, want % x", got, want)
	}
	dec, err := cobsDecode([]byte("xy"), []byte{0x01, 0x02, 0x05})
	if want := []byte{'x', 'y', 0x00, 0x05}; err != nil || !bytes.Equal(dec, want) {
		t.Fatalf("cobsDecode(\"xy\", 01 02 05) = % x, %v; want % x", dec, err, want)
	}
}

func TestCOBSDecodeRejects(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		offset int
	}{
		{"empty input", []byte{}, 0},
		{"zero code", []byte{0x00}, 0},
		{"zero code after a block", []byte{0x02, 0x11, 0x00}, 2},
		{"zero inside a block", []byte{0x04, 0x11, 0x00, 0x22}, 2},
		{"zero at the end of a block", []byte{0x01, 0x03, 0x11, 0x00}, 3},
		{"block runs past the end", []byte{0x05, 0x11, 0x22}, 0},
		{"second block runs past the end", []byte{0x02, 0x11, 0xFF, 0x22}, 2},
		{"0xFF block one byte short", cobsTestCat([]byte{0xFF}, cobsTestRun(253)), 0},
	}
	for _, tt := range tests {
		_, err := cobsDecode(nil, tt.in)
		if !errors.Is(err, ErrBadGGEP) {
			t.Errorf("%s: err = %v, want ErrBadGGEP", tt.name, err)
			continue
		}
		if off := ErrorOffset(err); off != tt.offset {
			t.Errorf("%s: offset %d, want %d (%v)", tt.name, off, tt.offset, err)
		}
	}
}

// TestCOBSRandomRoundTrip checks decode(encode(x)) == x, that the encoding
// has no zero, its overhead bound, and agreement with the paper's encoder.
func TestCOBSRandomRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		x := make([]byte, rng.IntN(1100))
		zeroEvery := 1 + rng.IntN(600) // from dense zeros to long runs without
		for k := range x {
			if rng.IntN(zeroEvery) != 0 {
				x[k] = byte(1 + rng.IntN(255))
			}
		}
		enc := cobsEncode(nil, x)
		if bytes.IndexByte(enc, 0) >= 0 {
			t.Fatalf("encoding of % x has a zero: % x", x, enc)
		}
		if max := len(x) + len(x)/254 + 1; len(enc) > max {
			t.Fatalf("encoding of %d bytes has %d bytes, bound %d", len(x), len(enc), max)
		}
		dec, err := cobsDecode(nil, enc)
		if err != nil || !bytes.Equal(dec, x) {
			t.Fatalf("decode(encode(% x)) = % x, %v", x, dec, err)
		}
		paper := cobsPaperEncode(x)
		if !bytes.Equal(paper, enc) && !bytes.Equal(paper, cobsTestCat(enc, []byte{1})) {
			t.Fatalf("encoding of % x differs from the paper's beyond the final 0x01:\n% x\n% x", x, enc, paper)
		}
	}
}

func FuzzCOBS(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{0x11, 0x22, 0x00, 0x33})
	f.Add(cobsTestRun(254))
	f.Add(cobsTestCat([]byte{0xFF}, cobsTestRun(254), []byte{0x01}))
	f.Add(cobsTestCat(cobsTestRun(300), []byte{0, 0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		// b as data: the round trip.
		enc := cobsEncode(nil, b)
		if bytes.IndexByte(enc, 0) >= 0 {
			t.Fatalf("encoding has a zero: % x", enc)
		}
		dec, err := cobsDecode(nil, enc)
		if err != nil || !bytes.Equal(dec, b) {
			t.Fatalf("decode(encode(x)) = % x, %v; want % x", dec, err, b)
		}
		// b as an encoding: if it decodes, re-encoding gives it back, or
		// it was the paper's form with its extra final 0x01.
		dec, err = cobsDecode(nil, b)
		if err != nil {
			if !errors.Is(err, ErrBadGGEP) || ErrorOffset(err) < 0 || ErrorOffset(err) > len(b) {
				t.Fatalf("cobsDecode error %v (offset %d)", err, ErrorOffset(err))
			}
			return
		}
		if len(dec) > len(b) {
			t.Fatalf("decoding of %d bytes has %d bytes", len(b), len(dec))
		}
		re := cobsEncode(nil, dec)
		if !bytes.Equal(re, b) && !(bytes.Equal(cobsTestCat(re, []byte{1}), b) && len(re) >= 255 && re[len(re)-255] == 0xFF) {
			t.Fatalf("cobsDecode(% x) = % x re-encodes as % x", b, dec, re)
		}
	})
}
