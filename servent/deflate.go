package servent

import (
	"encoding/binary"
	"hash"
	"hash/adler32"
	"io"

	"github.com/klauspost/compress/flate"
)

// deflateWriter writes one direction of a compressed link: a zlib stream
// (RFC 1950) whose deflate body is written by klauspost/compress's
// stateless encoder, which keeps no compressor between calls.
//
// Go's flate compressor holds hundreds of KiB of tables, too much to keep
// per link, and taking one from a pool for every burst cost 10-18 µs a
// message. The stateless encoder compresses each Write on its own and ends
// it with a sync flush (an empty stored block), so the peer can inflate
// everything written so far; the next Write starts a new block on that
// byte boundary. It may refer back to the last deflateHistory bytes we
// sent, given as its dictionary: the peer's inflater holds them in its
// window (32 KiB). Without that history a single query compresses to more
// than its plain size; with 512 bytes a burst of one message takes 0.97 of
// its plain bytes and a burst of ten 0.87 (BenchmarkDeflateWire,
// BENCHMARKS.md). The Adler-32 of everything written is kept so Close can
// end the stream properly.
type deflateWriter struct {
	dst        io.Writer
	hist       []byte // the last deflateHistory bytes written, plain
	adler      hash.Hash32
	headerSent bool
	err        error
}

// deflateHistory is how much of what a link sent the next burst may refer
// back to: it is kept per link, and the encoder's time grows with it.
const deflateHistory = 512

func newDeflateWriter(dst io.Writer) *deflateWriter {
	return &deflateWriter{dst: dst, adler: adler32.New()}
}

// Write compresses p and sync-flushes: p is on the wire, decodable, when
// Write returns.
func (d *deflateWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !d.headerSent {
		// CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (fastest, check bits).
		if _, d.err = d.dst.Write([]byte{0x78, 0x01}); d.err != nil {
			return 0, d.err
		}
		d.headerSent = true
	}
	d.adler.Write(p)
	if d.err = flate.StatelessDeflate(d.dst, p, false, d.hist); d.err != nil {
		return 0, d.err
	}
	if len(p) >= deflateHistory {
		d.hist = append(d.hist[:0], p[len(p)-deflateHistory:]...)
	} else {
		if keep := deflateHistory - len(p); len(d.hist) > keep {
			d.hist = append(d.hist[:0], d.hist[len(d.hist)-keep:]...)
		}
		d.hist = append(d.hist, p...)
	}
	return len(p), nil
}

// Release is called at the end of every burst. Each Write has already
// flushed, so there is nothing left to do but report the stream's error.
func (d *deflateWriter) Release() error { return d.err }

// Close ends the zlib stream: a final empty block and the Adler-32.
func (d *deflateWriter) Close() error {
	if d.err != nil || !d.headerSent {
		return d.err
	}
	if err := d.Release(); err != nil {
		return err
	}
	// A final, empty, fixed-Huffman block: BFINAL=1, BTYPE=01, then the
	// end-of-block code (7 zero bits): bits 1,1,0 + 0000000 = 0x03 0x00.
	var tail [6]byte
	tail[0], tail[1] = 0x03, 0x00
	binary.BigEndian.PutUint32(tail[2:], d.adler.Sum32())
	_, d.err = d.dst.Write(tail[:])
	return d.err
}
