package protocol

import (
	"errors"
	"fmt"
	"testing"
)

// deflated returns an extension that deflates to a few bytes and inflates
// to size zeros.
func deflatedZeros(id string, size int) Extension {
	return Extension{ID: id, Data: make([]byte, size), Deflate: true}
}

// bombQuery is a Query whose extension area holds one GGEP block per size,
// each with one deflated extension inflating to that many zeros.
func bombQuery(t testing.TB, sizes ...int) []byte {
	q := NewQuery("red kangaroo", QueryFlagMark)
	for i, n := range sizes {
		q.Extensions = append(q.Extensions, GGEPItem(GGEP{deflatedZeros(fmt.Sprintf("Z%d", i), n)}))
	}
	b, err := q.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestQueryInflateBudgetIsPerMessage(t *testing.T) {
	// each block alone fits the budget; the two together do not
	half := MaxInflatedPerMessage/2 - inflateSetupCost
	one := bombQuery(t, half)
	if _, err := DecodeQuery(one); err != nil {
		t.Fatalf("one block of %d bytes: %v", half, err)
	}
	two := bombQuery(t, half, half+1)
	_, err := DecodeQuery(two)
	if !errors.Is(err, ErrInflateBudget) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("two blocks of %d bytes in a %d-byte query: err %v, want ErrInflateBudget (a kind of ErrTooLarge)", half, len(two), err)
	}
	// the previous tester's bomb: two blocks of 65,000 bytes in under 256
	big := bombQuery(t, 65000, 65000)
	if len(big) > 256 {
		t.Fatalf("bomb query of %d bytes, want one that a servent would relay", len(big))
	}
	if _, err := DecodeQuery(big); !errors.Is(err, ErrInflateBudget) {
		t.Fatalf("65,000-byte blocks: err %v, want ErrInflateBudget", err)
	}
}

func TestInflateBudgetChargesEachInflation(t *testing.T) {
	// deflated extensions of one byte each (9 bytes deflated): 14 fit
	// (14 × (256 + 2×9 + 1) bytes), 16 do not, though their output is only
	// 16 bytes
	var g GGEP
	for i := 0; i < 16; i++ {
		g = append(g, deflatedZeros(fmt.Sprintf("Z%d", i), 1))
	}
	q := NewQuery("red kangaroo", QueryFlagMark)
	q.Extensions = ExtensionArea{GGEPItem(g)}
	b, err := q.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeQuery(b); !errors.Is(err, ErrInflateBudget) {
		t.Fatalf("%d tiny inflations: err %v, want ErrInflateBudget", len(g), err)
	}
	q.Extensions = ExtensionArea{GGEPItem(g[:14])}
	b, _ = q.AppendTo(nil)
	if _, err := DecodeQuery(b); err != nil {
		t.Fatalf("14 tiny inflations: %v", err)
	}
}

// Deflated input is charged too: a stream of many small deflate blocks
// costs a table build per block however little it inflates to.
func TestInflateBudgetChargesInput(t *testing.T) {
	random := make([]byte, 1500) // does not compress: ~1500 bytes deflated
	for i := range random {
		random[i] = byte(i*7919>>3) ^ byte(i*31)
	}
	for _, tt := range []struct {
		size int
		bomb bool
	}{{1000, false}, {1500, true}} {
		res := []Result{{Index: 1, Size: 100, Name: []byte("a.mp3"),
			Extensions: ExtensionArea{GGEPItem(GGEP{{ID: "Z", Data: random[:tt.size], Deflate: true}})}}}
		b, err := NewQueryHit([4]byte{192, 0, 2, 1}, 6346, 100, res, HitTrailer{Vendor: VendorGTKG}, NewGUID()).AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = DecodeQueryHit(b)
		if tt.bomb != errors.Is(err, ErrInflateBudget) {
			t.Errorf("%d incompressible bytes (%d-byte hit): err %v, want budget exceeded %v", tt.size, len(b), err, tt.bomb)
		}
	}
}

func TestGarbledDeflateIsNotABomb(t *testing.T) {
	z := ggepTestZlib(t, make([]byte, 100))
	z[len(z)-3] ^= 0xFF // break the stream (and its checksum)
	in := ggepTestBlock(ggepTestExt(0x20, "Z", AppendGGEPLength(nil, len(z)), z))
	_, _, err := DecodeGGEP(in)
	if !errors.Is(err, ErrBadGGEP) || errors.Is(err, ErrInflateBudget) {
		t.Fatalf("err %v, want ErrBadGGEP and not ErrInflateBudget", err)
	}
}

// bombHit is a hit of len(sizes) records, each with one deflated extension
// inflating to that many zeros, and a trailer GGEP with one inflating to
// trailer zeros (none when 0).
func bombHit(t testing.TB, trailer int, sizes ...int) []byte {
	res := make([]Result, len(sizes))
	for i, n := range sizes {
		res[i] = Result{Index: uint32(i), Size: 1000, Name: []byte(fmt.Sprintf("file%03d.mp3", i)),
			Extensions: ExtensionArea{GGEPItem(GGEP{deflatedZeros("Z", n)})}}
	}
	tr := HitTrailer{Vendor: VendorGTKG, GGEP: GGEP{{ID: "BH"}}}
	if trailer > 0 {
		tr.GGEP = append(tr.GGEP, deflatedZeros("Z", trailer))
	}
	b, err := NewQueryHit([4]byte{192, 0, 2, 1}, 6346, 100, res, tr, NewGUID()).AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestQueryHitInflateBudgetIsPerMessage(t *testing.T) {
	const part = 1000 // 1000 + 256 charged per inflation
	for _, tt := range []struct {
		name    string
		trailer int
		records int
		bomb    bool
	}{
		{"three records", 0, 3, false},
		{"four records", 0, 4, true},
		{"two records and the trailer", part, 2, false},
		{"three records and the trailer", part, 3, true},
	} {
		sizes := make([]int, tt.records)
		for i := range sizes {
			sizes[i] = part
		}
		b := bombHit(t, tt.trailer, sizes...)
		h, err := DecodeQueryHit(b)
		if tt.bomb {
			if !errors.Is(err, ErrInflateBudget) {
				t.Errorf("%s: err %v, want ErrInflateBudget", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if tt.trailer > 0 {
			if d, ok := h.TrailerGGEP().Get("Z"); !ok || len(d) != tt.trailer {
				t.Errorf("%s: trailer Z of %d bytes, %v", tt.name, len(d), ok)
			}
		}
	}
}

func TestQueryHitGarbledTrailerIsNoError(t *testing.T) {
	b := bombHit(t, 0, 10)
	// the trailer GGEP block starts after vendor(4), open size(1), open data(2)
	at := len(b) - 16 - 5 // "BH" block is C3 82 42 48 40
	if b[at] != GGEPMagic {
		t.Fatalf("no trailer block at %d: % x", at, b[at:])
	}
	b[at+1] |= ggepReserved
	h, err := DecodeQueryHit(b)
	if err != nil {
		t.Fatalf("garbled trailer: %v", err)
	}
	if g := h.TrailerGGEP(); g != nil {
		t.Fatalf("TrailerGGEP = %v, want nil", g)
	}
}

func TestQueryHasGGEP(t *testing.T) {
	q := NewQuery("red kangaroo", QueryFlagMark, testSHA1(1))
	q.Extensions = append(q.Extensions,
		GGEPItem(GGEP{{ID: "PR"}}),
		GGEPItem(GGEP{{ID: "M", Data: []byte{4}}, deflatedZeros("GNUT.RW", 60000)}))
	b, err := q.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"PR": true, "M": true, "GNUT.RW": true, "H": false, "GNUT": false} {
		if got := QueryHasGGEP(b, id); got != want {
			t.Errorf("QueryHasGGEP(%q) = %v, want %v", id, got, want)
		}
	}
	// the decode refuses it; the scan did not inflate it
	if _, err := DecodeQuery(b); !errors.Is(err, ErrInflateBudget) {
		t.Errorf("DecodeQuery: %v, want ErrInflateBudget", err)
	}
	for _, bad := range [][]byte{nil, {0x80}, []byte("\x80\x00abc"), b[:len(b)-3]} {
		if QueryHasGGEP(bad, "GNUT.RW") {
			t.Errorf("QueryHasGGEP(% x) = true for a payload that does not frame", bad)
		}
	}
}
