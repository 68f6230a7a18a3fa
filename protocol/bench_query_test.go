package protocol

import (
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
