package servent

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/zlib"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	kflate "github.com/klauspost/compress/flate"

	"gnutella/protocol"
)

// BenchmarkDeflateWire is what compressing a link costs in bytes on the
// wire and in time, for each way of doing it (issue 14): link traffic
// (queries of one to three words from a 2,000-word vocabulary, with
// gtk-gnutella's flags; hits of one to five files with a SHA-1 URN each; a
// few pings and pongs) is written in bursts of 1 or 10 messages, each
// burst ending with a sync flush as a link's writer does when its queue
// empties. It reports the bytes per message, the ratio to the plain bytes,
// and the time per message, for:
//
//   - ours: deflateWriter, the stateless encoder with deflateHistory bytes
//     of history;
//
//   - nohistory: the same encoder without history;
//
//   - gopool: Go's compress/flate at BestSpeed, a compressor taken from a
//     pool for every burst (what deflateWriter did before);
//
//   - gostream: one Go zlib stream kept for the link's life at BestSpeed
//     (hundreds of KiB per link);
//
//   - gostream6: the same at zlib's default level, 6, what gtk-gnutella's
//     links use.
//
//     go test -run '^$' -bench DeflateWire ./servent/
func BenchmarkDeflateWire(b *testing.B) {
	msgs := linkTraffic(rand.New(rand.NewPCG(14, 1)), 2000)
	plain := 0
	for _, m := range msgs {
		plain += len(m)
	}
	for _, burst := range []int{1, 10} {
		for _, way := range []string{"ours", "nohistory", "gopool", "gostream", "gostream6"} {
			b.Run(fmt.Sprintf("burst=%d/%s", burst, way), func(b *testing.B) {
				var wire int
				for b.Loop() {
					var out bytes.Buffer
					write, flush := burstWriter(&out, way)
					var pending []byte
					for i, m := range msgs {
						pending = append(pending, m...)
						if (i+1)%burst == 0 || i == len(msgs)-1 {
							if err := write(pending); err != nil {
								b.Fatal(err)
							}
							if err := flush(); err != nil {
								b.Fatal(err)
							}
							pending = pending[:0]
						}
					}
					wire = out.Len()
				}
				b.ReportMetric(float64(wire)/float64(len(msgs)), "wire-B/msg")
				b.ReportMetric(float64(wire)/float64(plain), "ratio")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(msgs)), "ns/msg")
			})
		}
	}
}

// burstWriter returns the write and end-of-burst functions of a way of
// compressing a link (see BenchmarkDeflateWire).
func burstWriter(out *bytes.Buffer, way string) (write func([]byte) error, flush func() error) {
	werr := func(w io.Writer) func([]byte) error {
		return func(p []byte) error { _, err := w.Write(p); return err }
	}
	switch way {
	case "ours":
		d := newDeflateWriter(out)
		return werr(d), d.Release
	case "nohistory":
		out.Write([]byte{0x78, 0x01})
		return func(p []byte) error { return kflate.StatelessDeflate(out, p, false, nil) }, func() error { return nil }
	case "gopool":
		out.Write([]byte{0x78, 0x01})
		var fw *flate.Writer
		return func(p []byte) error {
				if fw == nil {
					fw = goFlatePool.Get().(*flate.Writer)
					fw.Reset(out)
				}
				_, err := fw.Write(p)
				return err
			}, func() error {
				err := fw.Flush()
				goFlatePool.Put(fw)
				fw = nil
				return err
			}
	}
	level := zlib.BestSpeed
	if way == "gostream6" {
		level = zlib.DefaultCompression
	}
	z, _ := zlib.NewWriterLevel(out, level)
	return werr(z), z.Flush
}

var goFlatePool = sync.Pool{New: func() any {
	fw, _ := flate.NewWriter(io.Discard, flate.BestSpeed)
	return fw
}}

// What deflateWriter writes is a zlib stream whose every burst inflates as
// soon as it is written (the sync flush), which compress/zlib reads to the
// end with its checksum, and after each burst of which our inflater stands
// at a sync point, where it may park.
func TestDeflateWriterStream(t *testing.T) {
	msgs := linkTraffic(rand.New(rand.NewPCG(14, 2)), 300)
	bursts := make([][]byte, len(msgs))
	for i, m := range msgs {
		bursts[i] = m
		if i%3 == 0 {
			bursts[i] = bytes.Repeat(m, 40) // longer than the history, some than a block
		}
	}
	pr, pw := io.Pipe()
	var wire bytes.Buffer
	d := newDeflateWriter(io.MultiWriter(&wire, pw))
	// The writer writes a burst only when the reader asks for it: were a
	// burst not decodable before the next is written, the test would hang.
	next := make(chan struct{})
	written := make(chan struct{})
	go func() {
		defer close(written)
		for _, b := range bursts {
			if _, ok := <-next; !ok {
				break
			}
			if _, err := d.Write(b); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		_ = d.Close()
		pw.Close()
	}()
	next <- struct{}{}
	r, err := zlib.NewReader(pr)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range bursts {
		if i > 0 {
			next <- struct{}{}
		}
		got := make([]byte, len(b))
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatalf("burst %d: %v", i, err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("burst %d decoded wrong", i)
		}
	}
	close(next)
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Fatalf("after Close: %d more bytes, %v; want the end of the stream", len(rest), err)
	}
	<-written
	// our inflater, reading the same bytes burst by burst
	src := bufio.NewReader(bytes.NewReader(wire.Bytes()))
	z := newInflater(src)
	for i, b := range bursts {
		got := make([]byte, len(b))
		if _, err := io.ReadFull(z, got); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("inflater, burst %d: %v", i, err)
		}
		if !z.quiet() {
			t.Fatalf("inflater not at a sync point after burst %d", i)
		}
		if i%7 == 0 {
			z.park() // and resumes with its window at the next read
		}
	}
	if _, err := z.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("inflater at the end: %v, want io.EOF", err)
	}
}

// linkTraffic is n descriptors such as an ultrapeer link carries: 70 %
// queries, 20 % hits, 10 % pings and pongs.
func linkTraffic(rng *rand.Rand, n int) [][]byte {
	vocab := make([]string, 2000)
	for i := range vocab {
		w := make([]byte, 3+rng.IntN(7))
		for j := range w {
			w[j] = byte('a' + rng.IntN(26))
		}
		vocab[i] = string(w)
	}
	words := func(k int) string {
		s := vocab[rng.IntN(len(vocab))]
		for range k - 1 {
			s += " " + vocab[rng.IntN(len(vocab))]
		}
		return s
	}
	var out [][]byte
	for range n {
		var p protocol.Payload
		ttl, hops := uint8(1+rng.IntN(3)), uint8(1+rng.IntN(3))
		switch r := rng.IntN(10); {
		case r < 7:
			p = protocol.NewQuery(words(1+rng.IntN(3)), protocol.QueryFlagGGEPH|protocol.QueryFlagOOB)
		case r < 9:
			results := make([]protocol.Result, 1+rng.IntN(5))
			for i := range results {
				var sha protocol.SHA1
				for j := range sha {
					sha[j] = byte(rng.Uint32())
				}
				results[i] = protocol.Result{Index: rng.Uint32N(1 << 16), Size: rng.Uint32(),
					Name:       []byte(words(2+rng.IntN(3)) + ".mp3"),
					Extensions: protocol.ExtensionArea{protocol.TextItem(sha.String())}}
			}
			p = protocol.NewQueryHit([4]byte{10, byte(rng.IntN(256)), byte(rng.IntN(256)), 1}, 6346, 1000, results,
				protocol.HitTrailer{Vendor: protocol.VendorCode{'G', 'T', 'K', 'G'}, Uploaded: true}, protocol.NewGUID())
		case r < 10 && rng.IntN(2) == 0:
			p = &protocol.Ping{}
		default:
			p = &protocol.Pong{Port: 6346, IP: [4]byte{10, byte(rng.IntN(256)), byte(rng.IntN(256)), 1},
				Files: rng.Uint32N(1000), KB: rng.Uint32N(1 << 20)}
		}
		m := protocol.Message{Header: protocol.Header{ID: protocol.NewGUID(), TTL: ttl, Hops: hops}, Payload: p}
		raw, err := m.AppendTo(nil)
		if err != nil {
			panic(err)
		}
		out = append(out, raw)
	}
	return out
}
