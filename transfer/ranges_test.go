package transfer

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestRangesAddRemove(t *testing.T) {
	var r Ranges
	r = r.Add(10, 20).Add(30, 40).Add(20, 30) // adjacent spans merge
	if len(r) != 1 || r[0] != (Span{10, 40}) {
		t.Fatalf("merged: %v", r)
	}
	r = r.Remove(15, 25)
	if want := (Ranges{{10, 15}, {25, 40}}); !equalRanges(r, want) {
		t.Fatalf("remove: %v, want %v", r, want)
	}
	if !r.Contains(25, 40) || r.Contains(14, 16) || !r.Contains(12, 12) {
		t.Errorf("contains wrong on %v", r)
	}
	if got := r.Covered(); got != 20 {
		t.Errorf("covered %d, want 20", got)
	}
	if m := r.Missing(50); !equalRanges(m, Ranges{{0, 10}, {15, 25}, {40, 50}}) {
		t.Errorf("missing %v", m)
	}
	if i := r.Intersect(Ranges{{0, 12}, {30, 100}}); !equalRanges(i, Ranges{{10, 12}, {30, 40}}) {
		t.Errorf("intersect %v", i)
	}
}

// TestRangesAgainstBitmap checks Add, Remove, Missing and Intersect against
// a plain byte map on random operations.
func TestRangesAgainstBitmap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const size = 200
	for round := 0; round < 200; round++ {
		var r, o Ranges
		var bm, om [size]bool
		for op := 0; op < 20; op++ {
			a := rng.Int64N(size)
			b := a + rng.Int64N(size-a+1)
			switch rng.IntN(3) {
			case 0, 1:
				r = r.Add(a, b)
				for i := a; i < b; i++ {
					bm[i] = true
				}
			case 2:
				r = r.Remove(a, b)
				for i := a; i < b; i++ {
					bm[i] = false
				}
			}
			a = rng.Int64N(size)
			b = a + rng.Int64N(size-a+1)
			o = o.Add(a, b)
			for i := a; i < b; i++ {
				om[i] = true
			}
		}
		var want, inter Ranges
		for i := int64(0); i < size; i++ {
			if bm[i] {
				want = want.Add(i, i+1)
				if om[i] {
					inter = inter.Add(i, i+1)
				}
			}
		}
		if !equalRanges(r, want) {
			t.Fatalf("round %d: %v, want %v", round, r, want)
		}
		for i := 1; i < len(r); i++ {
			if r[i-1].End >= r[i].Start || r[i].Start >= r[i].End {
				t.Fatalf("not normal: %v", r)
			}
		}
		if got := r.Intersect(o); !equalRanges(got, inter) {
			t.Fatalf("intersect %v, want %v", got, inter)
		}
		if got := r.Missing(size).Covered() + r.Covered(); got != size {
			t.Fatalf("missing+covered = %d", got)
		}
	}
}

func equalRanges(a, b Ranges) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAvailableRanges(t *testing.T) {
	r := Ranges{{0, 1024}, {4096, 8192}}
	v := r.FormatAvailable()
	if v != "bytes 0-1023,4096-8191" {
		t.Fatalf("format %q", v)
	}
	got, err := ParseAvailableRanges(v, 10000)
	if err != nil || !equalRanges(got, r) {
		t.Fatalf("parse %q: %v %v", v, got, err)
	}
	// gtk-gnutella style with spaces and "bytes=", an end past the file.
	got, err = ParseAvailableRanges("bytes=0-99, 200-99999", 1000)
	if err != nil || !equalRanges(got, Ranges{{0, 100}, {200, 1000}}) {
		t.Fatalf("lenient parse: %v %v", got, err)
	}
	for _, bad := range []string{"", "bytes", "bits 0-1", "bytes 5-1", "bytes 0-1,x", "bytes -5", "bytes 1-2-3"} {
		if _, err := ParseAvailableRanges(bad, 100); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// A huge header is read up to its first maxAvailableSpans items.
	var many Ranges
	for i := int64(0); i < 1000; i++ {
		many = many.Add(i*10, i*10+5)
	}
	got, err = ParseAvailableRanges("bytes "+many.FormatAvailable()[6:], 1<<40)
	if err != nil || len(got) != maxAvailableSpans {
		t.Fatalf("long header: %d spans, %v", len(got), err)
	}
}

func TestQueued(t *testing.T) {
	q, err := ParseQueued("position=1503; length=1840; ETA=4200; lifetime=3600;\tID=6a074979f3201edbf323b6425fef4a53")
	if err != nil {
		t.Fatal(err)
	}
	want := Queued{ID: "6a074979f3201edbf323b6425fef4a53", Position: 1503, Length: 1840, ETA: 4200 * time.Second, Lifetime: time.Hour}
	if q != want {
		t.Fatalf("got %+v", q)
	}
	back, err := ParseQueued(q.Format())
	if err != nil || back != q {
		t.Fatalf("round trip %q: %+v %v", q.Format(), back, err)
	}
	// gtk-gnutella's uploader order, and what a downloader sends back.
	if q.Format() != "ID=6a074979f3201edbf323b6425fef4a53; position=1503; lifetime=3600; length=1840; ETA=4200" {
		t.Errorf("format %q", q.Format())
	}
	if q.FormatRequest() != "position=1503; ID=6a074979f3201edbf323b6425fef4a53" {
		t.Errorf("request %q", q.FormatRequest())
	}
	for _, bad := range []string{"", "position=1", "ID=abc", "id=a b; position=1", "ID=x; position=-1",
		"ID=" + string(make([]byte, 65)) + "; position=1"} {
		if _, err := ParseQueued(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	q, err = ParseQueued("id=AB; POSITION=99999999999; eta=99999999")
	if err != nil || q.Position != 1_000_000 || q.ETA != 24*time.Hour {
		t.Errorf("bounds: %+v %v", q, err)
	}
}
