package protocol

import (
	"bytes"
	"io"
	"testing"
)

const benchStreamSize = 1 << 20

// benchStream builds a 1 MiB stream of mixed descriptors: the recorded
// pings, pongs, queries, hits and vendor messages, and the 10-record hit and
// the other descriptors of the tshark test, in turn, closed by one vendor
// message sized to end the stream at exactly 1 MiB.
func benchStream(b *testing.B) (stream []byte, count int) {
	b.Helper()
	var pool [][]byte
	for _, f := range descriptorFiles {
		body, _ := recordedDescriptors(b, f.name)
		for _, d := range splitDescriptors(b, body) {
			switch Type(d[16]) {
			case TypePing, TypePong, TypeQuery, TypeQueryHit, TypeVendor:
				pool = append(pool, d)
			}
		}
	}
	_, ours := encodeAll(b, tsharkMessages(b))
	for _, d := range ours {
		if Type(d[16]) != TypeBye {
			pool = append(pool, d)
		}
	}
	stream = make([]byte, 0, benchStreamSize)
	const fillerMin = HeaderLen + 8
	for i := 0; ; i++ {
		d := pool[i%len(pool)]
		if len(stream)+len(d)+fillerMin > benchStreamSize {
			break
		}
		stream = append(stream, d...)
		count++
	}
	filler := make([]byte, benchStreamSize-len(stream)-HeaderLen)
	copy(filler, "GNUT\xff\xff\x01\x00")
	stream = append(stream, rawDescriptor(TypeVendor, 1, 0, uint32(len(filler)), filler)...)
	count++

	// The benchmark must measure a clean pass.
	r := NewReader(bytes.NewReader(stream), DefaultLimits())
	for n := 0; ; n++ {
		if _, err := r.ReadMessage(); err == io.EOF {
			if n != count || len(stream) != benchStreamSize {
				b.Fatalf("stream of %d bytes reads as %d descriptors, built %d", len(stream), n, count)
			}
			break
		} else if err != nil {
			b.Fatalf("descriptor %d: %v", n, err)
		}
	}
	return stream, count
}

// BenchmarkReaderStream is a full Reader pass over 1 MiB of mixed
// descriptors, decoding every payload.
func BenchmarkReaderStream(b *testing.B) {
	stream, count := benchStream(b)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := NewReader(bytes.NewReader(stream), DefaultLimits())
		for {
			_, err := r.ReadMessage()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(count)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkReadRaw is the same pass without decoding the payloads.
func BenchmarkReadRaw(b *testing.B) {
	stream, count := benchStream(b)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := NewReader(bytes.NewReader(stream), DefaultLimits())
		for {
			_, _, err := r.ReadRaw()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(count)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
