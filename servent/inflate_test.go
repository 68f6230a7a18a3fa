package servent

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// compressedBursts is a zlib stream of bursts, each ended by a sync flush
// as a peer's deflater sends them, and the stream's length after each.
func compressedBursts(t testing.TB, bursts [][]byte) (stream []byte, ends []int) {
	t.Helper()
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	for _, p := range bursts {
		zw.Write(p)
		if err := zw.Flush(); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, b.Len())
	}
	zw.Close()
	return b.Bytes(), ends
}

// repetitiveBursts: the second and third repeat most of the first, so
// that their blocks refer back into the window of earlier bursts.
func repetitiveBursts() [][]byte {
	// words of a small vocabulary, as link traffic repeats its search
	// words and headers: the parked window compresses, yet no burst is a
	// copy of another
	rng := rand.New(rand.NewPCG(14, 1))
	vocab := make([][]byte, 300)
	for i := range vocab {
		for range 3 + rng.IntN(6) {
			vocab[i] = append(vocab[i], byte('a'+rng.IntN(26)))
		}
	}
	var first []byte
	for len(first) < 20<<10 {
		first = append(append(first, vocab[rng.IntN(len(vocab))]...), ' ')
	}
	first = first[:20<<10]
	second := append([]byte("a query for "), first[1000:9000]...)
	third := append(bytes.Clone(first[12000:20000]), "and a little more"...)
	return [][]byte{first, second, third}
}

func TestInflaterParksBetweenBurstsAndKeepsItsWindow(t *testing.T) {
	bursts := repetitiveBursts()
	stream, ends := compressedBursts(t, bursts)
	if got := ends[1] - ends[0]; got > len(bursts[1])/4 {
		t.Fatalf("the second burst takes %d bytes for %d: it does not refer back, the test tests nothing", got, len(bursts[1]))
	}
	z := newInflater(nil)
	if !z.quiet() {
		t.Error("an inflater that has read nothing is not quiet")
	}
	start, total := 0, 0
	var all []byte
	for i, want := range bursts {
		total += len(want)
		all = append(all, want...)
		z.setSource(bufio.NewReader(bytes.NewReader(stream[start:ends[i]])))
		start = ends[i]
		got := make([]byte, len(want))
		half := len(want) / 2
		if _, err := io.ReadFull(z, got[:half]); err != nil {
			t.Fatalf("burst %d: %v", i, err)
		}
		if z.quiet() {
			t.Errorf("burst %d: quiet with half the burst unread", i)
		}
		if _, err := io.ReadFull(z, got[half:]); err != nil {
			t.Fatalf("burst %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("burst %d decoded wrong", i)
		}
		if !z.quiet() {
			t.Fatalf("burst %d: not quiet after the sync flush", i)
		}
		first, second := z.win.history()
		if win := append(bytes.Clone(first), second...); !bytes.Equal(win, all[max(len(all)-windowSize, 0):]) {
			t.Fatalf("burst %d: the window does not hold the last %d bytes of output", i, windowSize)
		}
		z.park()
		if z.fr != nil || z.win != nil || z.out != nil {
			t.Fatalf("burst %d: parked, but the reader or a buffer is still held", i)
		}
		if raw := min(total, windowSize); len(z.saved) == 0 || len(z.saved) >= raw {
			t.Errorf("burst %d: the parked window of %d bytes takes %d", i, raw, len(z.saved))
		}
		t.Logf("burst %d: %d bytes in, window kept in %d bytes", i, len(want), len(z.saved))
	}
	// the end of the stream: the final block and the checksum
	z.setSource(bufio.NewReader(bytes.NewReader(stream[start:])))
	if n, err := z.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("at the end: %d, %v; want 0, EOF", n, err)
	}
}

// Without its window the resumed reader cannot decode what refers back:
// what the test above relies on.
func TestInflaterResumedWithoutItsWindowFails(t *testing.T) {
	bursts := repetitiveBursts()
	stream, ends := compressedBursts(t, bursts)
	z := newInflater(bufio.NewReader(bytes.NewReader(stream[:ends[0]])))
	if _, err := io.ReadFull(z, make([]byte, len(bursts[0]))); err != nil {
		t.Fatal(err)
	}
	z.park()
	z.saved = nil // lose the window
	z.setSource(bufio.NewReader(bytes.NewReader(stream[ends[0]:ends[1]])))
	got := make([]byte, len(bursts[1]))
	if _, err := io.ReadFull(z, got); err == nil && bytes.Equal(got, bursts[1]) {
		t.Fatal("decoded the second burst without the first one's window")
	}
}

func TestInflaterChecksTheStream(t *testing.T) {
	stream, _ := compressedBursts(t, [][]byte{[]byte("hello, hello, hello")})
	for _, c := range []struct {
		name   string
		stream []byte
		want   error
	}{
		{"bad header", append([]byte{0x78, 0x02}, stream[2:]...), errZlibHeader},
		{"preset dictionary", append([]byte{0x78, 0xBB}, stream[2:]...), errZlibHeader},
		{"checksum", append(bytes.Clone(stream[:len(stream)-1]), stream[len(stream)-1]^1), errors.New("zlib checksum does not match")},
		{"cut", stream[:len(stream)-2], io.ErrUnexpectedEOF},
	} {
		z := newInflater(bufio.NewReader(bytes.NewReader(c.stream)))
		_, err := io.ReadAll(z)
		if err == nil || !(errors.Is(err, c.want) || err.Error() == c.want.Error()) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// a peer that closes before its stream begins ends it cleanly
	if n, err := newInflater(bufio.NewReader(bytes.NewReader(nil))).Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("empty stream: %d, %v; want 0, EOF", n, err)
	}
}
