package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// benchQueries are typical queries: gtk-gnutella's flags, about 20 bytes
// of text, and either its "PR" GGEP block or one urn:sha1.
func benchQueries(b *testing.B) []struct {
	name string
	q    *Query
} {
	withGGEP := NewQuery("red kangaroo jumping", 0x3900)
	withGGEP.Extensions = ExtensionArea{GGEPItem(GGEP{{ID: "PR"}})}
	return []struct {
		name string
		q    *Query
	}{
		{"ggep", withGGEP},
		{"urn", NewQuery("red kangaroo jumping", QueryFlagGGEPH, testSHA1(0x21))},
	}
}

func BenchmarkQueryDecode(b *testing.B) {
	for _, bq := range benchQueries(b) {
		p, err := bq.q.AppendTo(nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bq.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				if _, err := DecodeQuery(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkQueryEncode(b *testing.B) {
	for _, bq := range benchQueries(b) {
		p, err := bq.q.AppendTo(nil)
		if err != nil {
			b.Fatal(err)
		}
		q, err := DecodeQuery(p) // a decoded query, as a relay re-encodes it
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bq.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			buf := make([]byte, 0, 256)
			for b.Loop() {
				if _, err := q.AppendTo(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchHit is a hit of 10 records, each with a urn:sha1, and gtk-gnutella's
// trailer with a GGEP block holding two push proxies.
func benchHit() *QueryHit {
	res := make([]Result, 10)
	for i := range res {
		res[i] = Result{
			Index:      uint32(i + 1),
			Size:       uint32(1000000 + i),
			Name:       []byte(fmt.Sprintf("some shared file number %02d.mp3", i)),
			Extensions: ResultExtensions(testSHA1(byte(i+1)), false, nil),
		}
	}
	proxies := []byte{10, 0, 0, 1, 0xCA, 0x18, 10, 0, 0, 2, 0xCA, 0x18}
	t := HitTrailer{Vendor: VendorGTKG, Push: true, GGEP: GGEP{{ID: "PUSH", Data: proxies}, {ID: "BH"}}}
	return NewQueryHit([4]byte{192, 0, 2, 7}, 6346, 1000, res, t, NewGUID())
}

func BenchmarkQueryHitDecode(b *testing.B) {
	p, err := benchHit().AppendTo(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := DecodeQueryHit(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkQueryHitEncode(b *testing.B) {
	h := benchHit()
	p, err := h.AppendTo(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	buf := make([]byte, 0, 2*len(p))
	for b.Loop() {
		if _, err := h.AppendTo(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// The GGEP inflate bomb against a plain message of the same size class
// (inflate.go): the previous tester's 197-byte Query of two deflated blocks
// inflating to 65,000 bytes each, and its 15.6 KB QueryHit of 121 records
// each inflating to 65,000 bytes. The plain message has the same layout
// with each deflated value replaced by as many plain bytes.

// benchDeflatedLen is how many bytes n zeros deflate to.
func benchDeflatedLen(b *testing.B, n int) int {
	z, err := (GGEP{{ID: "Z", Data: make([]byte, n), Deflate: true}}).AppendTo(nil)
	if err != nil {
		b.Fatal(err)
	}
	return len(z) - 4 // magic, flags, ID, one length byte
}

// benchValue is a GGEP extension of a bomb (zeros inflating to 65,000
// bytes) or of its plain twin.
func benchValue(b *testing.B, id string, bomb bool) Extension {
	if bomb {
		return Extension{ID: id, Data: make([]byte, 65000), Deflate: true}
	}
	return Extension{ID: id, Data: bytes.Repeat([]byte{'a'}, benchDeflatedLen(b, 65000))}
}

func benchBombQuery(b *testing.B, bomb bool) []byte {
	q := NewQuery("kangaroo", QueryFlagMark)
	for _, id := range []string{"Z1", "Z2"} {
		q.Extensions = append(q.Extensions, GGEPItem(GGEP{benchValue(b, id, bomb)}))
	}
	p, err := q.AppendTo(nil)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func benchBombHit(b *testing.B, bomb bool) []byte {
	res := make([]Result, 121)
	for i := range res {
		res[i] = Result{Index: uint32(i), Size: 100, Name: []byte("kangaroo.mp3"),
			Extensions: ExtensionArea{GGEPItem(GGEP{benchValue(b, "Z", bomb)})}}
	}
	p, err := NewQueryHit([4]byte{192, 0, 2, 1}, 6346, 100, res, HitTrailer{Vendor: VendorGTKG}, NewGUID()).AppendTo(nil)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func benchDecode(b *testing.B, p []byte, decode func([]byte) error, bomb bool) {
	b.ReportAllocs()
	b.ReportMetric(float64(len(p)), "payload-bytes")
	for b.Loop() {
		err := decode(p)
		if bomb != errors.Is(err, ErrInflateBudget) {
			b.Fatalf("bomb %v: err %v", bomb, err)
		}
	}
}

func decodeQueryErr(p []byte) error    { _, err := DecodeQuery(p); return err }
func decodeQueryHitErr(p []byte) error { _, err := DecodeQueryHit(p); return err }

func BenchmarkQueryPlain(b *testing.B) {
	benchDecode(b, benchBombQuery(b, false), decodeQueryErr, false)
}
func BenchmarkQueryBomb(b *testing.B) { benchDecode(b, benchBombQuery(b, true), decodeQueryErr, true) }
func BenchmarkQueryHitPlain(b *testing.B) {
	benchDecode(b, benchBombHit(b, false), decodeQueryHitErr, false)
}
func BenchmarkQueryHitBomb(b *testing.B) {
	benchDecode(b, benchBombHit(b, true), decodeQueryHitErr, true)
}
