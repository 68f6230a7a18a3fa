package servent

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/adler32"
	"io"
	"sync"
	"sync/atomic"

	kflate "github.com/klauspost/compress/flate"
)

// inflater reads the compressed direction of a link (Content-Encoding:
// deflate): a zlib stream (RFC 1950) whose deflate body compress/flate
// decodes, and which can be parked between messages (issue 14).
//
// A flate reader holds its 32 KiB window and Huffman tables, about 41 KiB,
// for as long as the stream lasts: more than everything else an idle leaf
// costs us together. But a peer's deflater sync-flushes after each burst
// (an empty stored block: the bytes 00 00 FF FF), and there the stream sits
// on a byte boundary between blocks. All the next block can need from the
// past is the window, the last 32 KiB of output. So once the reader has
// passed a sync flush and handed over everything it decoded, the window is
// all its state: parking keeps it compressed (a link's recent messages
// compress well: a QRP patch of zeros, repeated headers), gives the reader,
// the copy of the window and the output buffer back to pools, and the next
// read takes a reader again and presets the window with
// flate.Resetter.Reset(src, dict).
//
// The sync point is seen from the source side: compress/flate reads the
// bytes of a stored block's header and data with Read, and everything else
// (block headers, Huffman codes) with ReadByte, one byte at a time and
// never ahead of what the block needs. So when the last bytes the reader
// took were 00 00 FF FF, taken by Read, it has just read the header of an
// empty stored block and stands at the start of the next one. (A stored
// block whose data ends in 00 00 FF FF at the very edge of the window would
// look the same in the middle of the block; a sync-flushing deflater has no
// reason to send such data. Should it happen, the resumed reader fails and
// the link ends as a garbled stream.)
type inflater struct {
	src    syncSpotter
	fr     io.ReadCloser     // compress/flate's reader; nil before the first read and while parked
	win    *window           // the last 32 KiB of output; nil when fr is
	out    *[windowSize]byte // what fr decodes into; nil once buf is read out
	buf    []byte            // decoded, not yet read: the end of out
	saved  []byte            // the window, deflated, while parked
	header bool              // the zlib header has been read
	adler  hash.Hash32
	err    error // sticky: io.EOF after the checksum, or what broke the stream
	// active counts, across the servent, the inflaters holding a reader
	// and window (park.go parks sooner when they are many); may be nil
	active *atomic.Int64
}

// windowSize is deflate's largest window (RFC 1951 §3.2.5): the most any
// block can refer back.
const windowSize = 32 << 10

var (
	flateReaders = sync.Pool{}
	windows      = sync.Pool{New: func() any { return new(window) }}
	inflateOuts  = sync.Pool{New: func() any { return new([windowSize]byte) }}
)

// errZlibHeader is a compressed link whose stream does not start with a
// zlib header we can read.
var errZlibHeader = errors.New("bad zlib header")

func newInflater(br *bufio.Reader) *inflater {
	return &inflater{src: syncSpotter{br: br}, adler: adler32.New()}
}

// setSource points the inflater at the link's read buffer, a new one after
// each wake-up.
func (z *inflater) setSource(br *bufio.Reader) { z.src.br = br }

// Read hands over decoded bytes.
func (z *inflater) Read(p []byte) (int, error) {
	if len(z.buf) == 0 {
		if z.err != nil {
			return 0, z.err
		}
		if err := z.fill(); err != nil && len(z.buf) == 0 {
			return 0, err
		}
	}
	n := copy(p, z.buf)
	z.buf = z.buf[n:]
	if len(z.buf) == 0 && z.out != nil {
		// the output buffer is only held while it holds something: a
		// link that is busy but not reading out a burst keeps flate's
		// state and the window, 73 KiB, not 105
		inflateOuts.Put(z.out)
		z.out, z.buf = nil, nil
	}
	return n, nil
}

// fill decodes the next bytes into z.buf.
func (z *inflater) fill() error {
	if !z.header {
		var h [2]byte
		if _, err := io.ReadFull(&z.src, h[:]); err != nil {
			return z.fail(err)
		}
		cmf, flg := h[0], h[1]
		if cmf&0x0F != 8 || cmf>>4 > 7 || (uint16(cmf)<<8|uint16(flg))%31 != 0 || flg&0x20 != 0 {
			return z.fail(fmt.Errorf("%w: %02x %02x", errZlibHeader, cmf, flg))
		}
		z.header = true
	}
	if z.fr == nil {
		if err := z.resume(); err != nil {
			return z.fail(err)
		}
	}
	// compress/flate never holds more decoded bytes than its window, so
	// a window-sized buffer takes all it has: it holds nothing after this
	if z.out == nil {
		z.out = inflateOuts.Get().(*[windowSize]byte)
	}
	n, err := z.fr.Read(z.out[:])
	z.buf = z.out[:n]
	z.win.write(z.buf)
	z.adler.Write(z.buf)
	switch {
	case err == io.EOF:
		// the final block: the Adler-32 of all the output follows
		var sum [4]byte
		if _, err := io.ReadFull(&z.src, sum[:]); err != nil {
			return z.fail(io.ErrUnexpectedEOF)
		}
		if binary.BigEndian.Uint32(sum[:]) != z.adler.Sum32() {
			return z.fail(errors.New("zlib checksum does not match"))
		}
		return z.fail(io.EOF)
	case err != nil:
		return z.fail(err)
	}
	return nil
}

// fail makes err the stream's last word. compress/flate reports a source
// that ends inside the stream as io.ErrUnexpectedEOF; io.EOF is a stream
// that ended properly, or a peer that closed before it began.
func (z *inflater) fail(err error) error {
	z.err = err
	return err
}

// quiet says whether the inflater holds nothing but its window: it has
// passed a sync flush and every decoded byte has been read, or it has not
// begun. Only then may it park.
func (z *inflater) quiet() bool {
	if z.err != nil || len(z.buf) != 0 {
		return false
	}
	return z.fr == nil || z.src.atSync()
}

// park keeps the window, deflated, and gives the reader and buffers back.
// The caller has checked quiet.
func (z *inflater) park() {
	if z.fr == nil {
		return
	}
	var b bytes.Buffer
	first, second := z.win.history()
	// the stateless encoder needs no compressor of hundreds of KiB; the
	// second piece may refer back into the first
	_ = kflate.StatelessDeflate(&b, first, len(second) == 0, nil)
	if len(second) != 0 {
		_ = kflate.StatelessDeflate(&b, second, true, first)
	}
	z.saved = bytes.Clone(b.Bytes())
	z.release()
}

// resume takes a reader and presets its window with what park kept.
func (z *inflater) resume() error {
	z.win = windows.Get().(*window)
	z.win.reset()
	fr, _ := flateReaders.Get().(io.ReadCloser)
	var dict []byte
	if z.saved != nil {
		r := bytes.NewReader(z.saved)
		if fr == nil {
			fr = flate.NewReader(r)
		} else if err := fr.(flate.Resetter).Reset(r, nil); err != nil {
			return err
		}
		n, err := io.ReadFull(fr, z.win.buf[:])
		if err != io.ErrUnexpectedEOF && err != nil {
			return fmt.Errorf("restoring the inflate window: %w", err)
		}
		z.win.n, z.win.at = n, n%windowSize
		dict = z.win.buf[:n]
		z.saved = nil
	}
	if fr == nil {
		fr = flate.NewReaderDict(&z.src, dict)
	} else if err := fr.(flate.Resetter).Reset(&z.src, dict); err != nil {
		return err
	}
	z.fr = fr
	if z.active != nil {
		z.active.Add(1)
	}
	return nil
}

// release gives the reader and the buffers back to their pools: at park,
// and when the link ends.
func (z *inflater) release() {
	if z.fr == nil {
		return
	}
	// no reference to the link's socket buffer stays in the pool
	_ = z.fr.(flate.Resetter).Reset(bytes.NewReader(nil), nil)
	flateReaders.Put(z.fr)
	if z.active != nil {
		z.active.Add(-1)
	}
	windows.Put(z.win)
	if z.out != nil {
		inflateOuts.Put(z.out)
	}
	z.fr, z.win, z.out, z.buf = nil, nil, nil, nil
}

// window is the last windowSize bytes of a stream's output, a ring.
type window struct {
	buf [windowSize]byte
	n   int // bytes held, up to windowSize
	at  int // where the next byte goes
}

func (w *window) reset() { w.n, w.at = 0, 0 }

func (w *window) write(p []byte) {
	if len(p) >= windowSize {
		p = p[len(p)-windowSize:]
	}
	c := copy(w.buf[w.at:], p)
	copy(w.buf[:], p[c:])
	w.at = (w.at + len(p)) % windowSize
	w.n = min(w.n+len(p), windowSize)
}

// history is the window's bytes, oldest first, in two pieces.
func (w *window) history() (first, second []byte) {
	if w.n < windowSize {
		return w.buf[:w.n], nil
	}
	return w.buf[w.at:], w.buf[:w.at]
}

// syncSpotter is the inflater's source: the link's read buffer, watched for
// the sync flush that ends a burst (see inflater).
type syncSpotter struct {
	br     *bufio.Reader
	last   uint32 // the last four bytes taken, the latest in the low byte
	byRead bool   // and the latest of them was taken by Read
}

// syncMarker is the header of an empty stored block: LEN 0, NLEN 0xFFFF.
const syncMarker = 0x0000FFFF

func (s *syncSpotter) ReadByte() (byte, error) {
	c, err := s.br.ReadByte()
	if err == nil {
		s.last = s.last<<8 | uint32(c)
		s.byRead = false
	}
	return c, err
}

func (s *syncSpotter) Read(p []byte) (int, error) {
	n, err := s.br.Read(p)
	for _, c := range p[max(n-4, 0):n] {
		s.last = s.last<<8 | uint32(c)
	}
	if n > 0 {
		s.byRead = true
	}
	return n, err
}

func (s *syncSpotter) atSync() bool { return s.byRead && s.last == syncMarker }
