package servent

import (
	"compress/flate"
	"encoding/binary"
	"hash"
	"hash/adler32"
	"io"
	"sync"
)

// deflateWriter writes one direction of a compressed link: a zlib stream
// (RFC 1950) whose deflate body is produced by pooled flate writers.
//
// Go's flate compressor holds hundreds of KiB of tables, too much to keep per
// idle link. After a sync flush the deflate stream sits on a byte boundary
// between blocks, and a fresh compressor may start the next block there: the
// receiver's inflater carries its own window, and the new blocks simply make
// no back-references before their own start. So the compressor goes back to
// a pool whenever the link goes quiet and is taken again for the next burst.
// The Adler-32 of everything written is kept so Close can end the stream
// properly.
type deflateWriter struct {
	dst        io.Writer
	fw         *flate.Writer
	adler      hash.Hash32
	headerSent bool
	err        error
}

// deflateLevel is fast and light; links carry small, repetitive messages.
const deflateLevel = flate.BestSpeed

var flatePool = sync.Pool{New: func() any {
	fw, _ := flate.NewWriter(io.Discard, deflateLevel)
	return fw
}}

func newDeflateWriter(dst io.Writer) *deflateWriter {
	return &deflateWriter{dst: dst, adler: adler32.New()}
}

func (d *deflateWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if !d.headerSent {
		// CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (fastest, check bits).
		if _, d.err = d.dst.Write([]byte{0x78, 0x01}); d.err != nil {
			return 0, d.err
		}
		d.headerSent = true
	}
	if d.fw == nil {
		d.fw = flatePool.Get().(*flate.Writer)
		d.fw.Reset(d.dst)
	}
	d.adler.Write(p)
	n, err := d.fw.Write(p)
	if err != nil {
		d.err = err
	}
	return n, err
}

// Flush sync-flushes the compressor so the peer can inflate everything
// written so far.
func (d *deflateWriter) Flush() error {
	if d.err != nil {
		return d.err
	}
	if d.fw == nil {
		return nil
	}
	d.err = d.fw.Flush()
	return d.err
}

// Release flushes and hands the compressor back to the pool.
func (d *deflateWriter) Release() error {
	if d.fw == nil {
		return d.err
	}
	err := d.Flush()
	d.fw.Reset(io.Discard)
	flatePool.Put(d.fw)
	d.fw = nil
	return err
}

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
