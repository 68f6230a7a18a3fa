package protocol

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/synctest"
)

// flushRecorder is an io.Writer with a Flush method that records what
// reached it and when Flush was called.
type flushRecorder struct {
	bytes.Buffer
	flushes int
	atFlush []int // Len() at each Flush
}

func (f *flushRecorder) Flush() error {
	f.flushes++
	f.atFlush = append(f.atFlush, f.Len())
	return nil
}

func TestWriteRawSetsTheLengthAndBuffersUntilFlush(t *testing.T) {
	dst := &flushRecorder{}
	w := NewWriter(dst)
	h := Header{ID: GUID{1, 2, 3}, Type: TypeVendor, TTL: 1, Hops: 0, Length: 999}
	if err := w.WriteRaw(h, []byte("abcdef")); err != nil {
		t.Fatal(err)
	}
	if w.Buffered() != HeaderLen+6 || dst.Len() != 0 {
		t.Fatalf("Buffered() = %d, underlying has %d bytes; want %d and 0", w.Buffered(), dst.Len(), HeaderLen+6)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	h.Length = 6
	want := append(h.AppendTo(nil), "abcdef"...)
	if !bytes.Equal(dst.Bytes(), want) {
		t.Fatalf("wrote %x, want %x", dst.Bytes(), want)
	}
	if got := dst.Bytes()[19:23]; !bytes.Equal(got, []byte{6, 0, 0, 0}) {
		t.Errorf("length field %x, want 06000000 (little-endian)", got)
	}
	if w.Buffered() != 0 || dst.flushes != 1 || dst.atFlush[0] != len(want) {
		t.Errorf("after Flush: Buffered() = %d, underlying flushed %d times at %v", w.Buffered(), dst.flushes, dst.atFlush)
	}
}

func TestWriteMessageEncodesTypeAndLengthFromThePayload(t *testing.T) {
	var dst bytes.Buffer
	w := NewWriter(&dst)
	m := &Message{Header: Header{ID: GUID{9}, Type: TypePing, TTL: 4, Hops: 2, Length: 12345},
		Payload: &Raw{Kind: TypeHSEP, Data: []byte{1, 2, 3}}}
	if err := w.WriteMessage(m); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := Header{ID: GUID{9}, Type: TypeHSEP, TTL: 4, Hops: 2, Length: 3}
	if !bytes.Equal(dst.Bytes(), append(want.AppendTo(nil), 1, 2, 3)) {
		t.Fatalf("wrote %x", dst.Bytes())
	}
}

func TestWriterPassesDataOnWhenItsBufferFillsButFlushesOnlyOnFlush(t *testing.T) {
	dst := &flushRecorder{}
	w := NewWriter(dst)
	payload := make([]byte, 1000)
	for i := 0; i < 4; i++ { // 4 × 1023 bytes: still under 4096
		if err := w.WriteRaw(Header{Type: TypeHSEP, TTL: 1}, payload); err != nil {
			t.Fatal(err)
		}
	}
	if dst.Len() != 0 {
		t.Fatalf("%d bytes written before the buffer was full", dst.Len())
	}
	if err := w.WriteRaw(Header{Type: TypeHSEP, TTL: 1}, payload); err != nil {
		t.Fatal(err)
	}
	if dst.Len() != 5*1023 || w.Buffered() != 0 {
		t.Fatalf("underlying has %d bytes, %d buffered; want %d and 0", dst.Len(), w.Buffered(), 5*1023)
	}
	if dst.flushes != 0 {
		t.Errorf("underlying Flush called %d times without Flush", dst.flushes)
	}
}

func TestWriterRefusesPayloadsOverTheArchitecturalLimit(t *testing.T) {
	var dst bytes.Buffer
	w := NewWriter(&dst)
	if err := w.WriteRaw(Header{Type: TypeVendor, TTL: 1}, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	before := w.Buffered()
	cases := []struct {
		name string
		do   func() error
	}{
		{"WriteRaw 65536", func() error { return w.WriteRaw(Header{Type: TypeQueryHit}, make([]byte, 0x10000)) }},
		{"WriteMessage 65536", func() error {
			return w.WriteMessage(&Message{Payload: &Raw{Kind: TypeQueryHit, Data: make([]byte, 0x10000)}})
		}},
	}
	for _, c := range cases {
		if err := c.do(); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: err = %v, want ErrTooLarge", c.name, err)
		}
		if w.Buffered() != before {
			t.Errorf("%s: Buffered() = %d, want %d (nothing added)", c.name, w.Buffered(), before)
		}
	}
	// 0xFFFF is the largest payload allowed.
	if err := w.WriteRaw(Header{Type: TypeQueryHit}, make([]byte, 0xFFFF)); err != nil {
		t.Errorf("a 0xFFFF-byte payload: %v", err)
	}
	if err := w.WriteMessage(&Message{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("a message without payload: err = %v, want ErrMalformed", err)
	}
}

type errWriter struct {
	n   int // bytes accepted per call
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if len(p) > e.n {
		return e.n, nil
	}
	return len(p), nil
}

func TestWriterErrorsAreSticky(t *testing.T) {
	cases := []struct {
		name string
		dst  *errWriter
		want error
	}{
		{"write error", &errWriter{err: errors.New("broken pipe")}, nil},
		{"short write", &errWriter{n: 3}, io.ErrShortWrite},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := c.want
			if want == nil {
				want = c.dst.err
			}
			w := NewWriter(c.dst)
			if err := w.WriteRaw(Header{Type: TypePing, TTL: 1}, nil); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); !errors.Is(err, want) {
				t.Fatalf("Flush: %v, want %v", err, want)
			}
			if err := w.WriteRaw(Header{Type: TypePing, TTL: 1}, nil); !errors.Is(err, want) {
				t.Errorf("WriteRaw after the error: %v, want %v", err, want)
			}
			if err := w.WriteMessage(&Message{Payload: &Raw{Kind: TypeHSEP}}); !errors.Is(err, want) {
				t.Errorf("WriteMessage after the error: %v, want %v", err, want)
			}
			if err := w.Flush(); !errors.Is(err, want) {
				t.Errorf("Flush after the error: %v, want %v", err, want)
			}
		})
	}
}

func TestWriterReproducesTheRecordedStreamsThroughTheReader(t *testing.T) {
	for _, f := range descriptorFiles {
		t.Run(f.name, func(t *testing.T) {
			body, _ := recordedDescriptors(t, f.name)
			var raw, decoded bytes.Buffer
			wr, wd := NewWriter(&raw), NewWriter(&decoded)
			r := NewReader(bytes.NewReader(body), DefaultLimits())
			for {
				h, p, err := r.ReadRaw()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := wr.WriteRaw(h, p); err != nil {
					t.Fatal(err)
				}
				payload, err := DecodePayload(h.Type, p)
				if err != nil {
					t.Fatalf("%v at %d: %v", h.Type, r.Offset(), err)
				}
				if err := wd.WriteMessage(&Message{Header: h, Payload: payload}); err != nil {
					t.Fatal(err)
				}
			}
			for _, w := range []*Writer{wr, wd} {
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(raw.Bytes(), body) {
				t.Errorf("WriteRaw output differs from the recording")
			}
			if !bytes.Equal(decoded.Bytes(), body) {
				t.Errorf("WriteMessage output differs from the recording")
			}
		})
	}
}

// TestWriterAndReaderWorkOverAZlibStreamBurstByBurst sends bursts of
// descriptors through a zlib.Writer into a pipe, flushing after each burst,
// and reads each burst on the other side before the next one is written:
// the reader must get every burst from the sync flush alone, without the
// end of the stream.
func TestWriterAndReaderWorkOverAZlibStreamBurstByBurst(t *testing.T) {
	var descs [][]byte
	for _, f := range descriptorFiles {
		body, _ := recordedDescriptors(t, f.name)
		descs = append(descs, splitDescriptors(t, body)...)
	}
	bursts := [][][]byte{descs[:1], descs[1:5], descs[5:6], descs[6:20], descs[20:]}

	// The pipe, the writer and the reader live in a synctest bubble: see below.
	synctest.Test(t, func(t *testing.T) {
		pr, pw := io.Pipe()
		acks := make(chan int)
		writeErr := make(chan error, 1)
		go func() {
			zw := zlib.NewWriter(pw)
			w := NewWriter(zw)
			for i, burst := range bursts {
				for _, d := range burst {
					h, _ := ParseHeader(d)
					if err := w.WriteRaw(h, d[HeaderLen:]); err != nil {
						writeErr <- err
						return
					}
				}
				if err := w.Flush(); err != nil {
					writeErr <- err
					return
				}
				if got, ok := <-acks; !ok || got != i {
					writeErr <- fmt.Errorf("burst %d: ack %d", i, got)
					return
				}
			}
			if err := zw.Close(); err != nil {
				writeErr <- err
				return
			}
			writeErr <- pw.Close()
		}()

		readErr := make(chan error, 1)
		go func() {
			readErr <- func() error {
				defer close(acks)
				zr, err := zlib.NewReader(pr)
				if err != nil {
					return err
				}
				r := NewReader(zr, DefaultLimits())
				for i, burst := range bursts {
					for j, d := range burst {
						h, p, err := r.ReadRaw()
						if err != nil {
							return fmt.Errorf("burst %d descriptor %d: %v", i, j, err)
						}
						got := append(h.AppendTo(nil), p...)
						if !bytes.Equal(got, d) {
							return fmt.Errorf("burst %d descriptor %d differs", i, j)
						}
					}
					acks <- i
				}
				if _, _, err := r.ReadRaw(); err != io.EOF {
					return fmt.Errorf("after the last burst: %v, want io.EOF", err)
				}
				return nil
			}()
		}()

		// A reader that needed the end of the stream would wait for data the
		// writer only sends after the ack: a deadlock. In the synctest bubble
		// every goroutine would then be blocked on the pipe or the acks, and
		// synctest.Test fails the test at once, whatever the machine's speed.
		if err := <-readErr; err != nil {
			pr.CloseWithError(err)
			t.Fatal(err)
		}
		if err := <-writeErr; err != nil {
			t.Fatal(err)
		}
	})
}
