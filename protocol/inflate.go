package protocol

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/adler32"
	"io"
	"sync"
)

// Inflating deflated GGEP data (docs/protocol.md §1.10) is the one place
// where a few bytes of a peer's payload can cost us much more than their
// size: a zlib stream of 250 bytes inflates to 256 KiB. So every message
// gets one inflate budget, shared by all its deflated extensions, and each
// inflation is charged what it costs to decode: a fixed setup cost (so a
// message cannot buy thousands of tiny inflations), twice its deflated
// input (each deflate block header costs a Huffman table build, so a
// stream of many tiny blocks costs much for little output) and its output.

const (
	// MaxInflatedPerMessage is the inflate budget of one Query or QueryHit:
	// all the deflated GGEP extensions of a Query's extension area, or of
	// all a QueryHit's records and its trailer, share it.
	//
	// Why 4 KiB: a Query is at most 256 bytes on the wire (gtk-gnutella
	// relays nothing bigger, docs/protocol.md §8.5) and its GGEP values are
	// a few bytes (§1.8); a QueryHit carries at most 10 records of at most
	// 10 alternate locations of 6 bytes each (§1.9), a hash, a size and a
	// few push proxies. Deflating such values saves little, and honest
	// servents deflate only when it makes the value shorter, so what they
	// send inflates to well under a kilobyte per message. 4 KiB is several
	// times that, and bounds what one message costs to a few microseconds.
	MaxInflatedPerMessage = 4 << 10

	// inflateSetupCost is what each inflation is charged before its input
	// and output: 256 bytes, so a message pays for at most 16 inflations.
	inflateSetupCost = 256
	// inflateInputCost is what each byte of deflated input is charged, so
	// that a message inflates at most 2 KiB of deflated data.
	inflateInputCost = 2
)

// inflateBudget is what the deflated extensions of one message (or one
// stand-alone block) may still inflate to. The decoders pass one along by
// pointer: there is no budget outside a decode.
type inflateBudget struct {
	left  int
	total int // for error messages
}

func newInflateBudget(total int) *inflateBudget {
	return &inflateBudget{left: total, total: total}
}

// zlibInflater is a reusable flate reader: a fresh one allocates a 32 KiB
// window and its Huffman tables, which would cost more than most
// inflations do. The zlib framing around the deflate data (RFC 1950: two
// header bytes, then the Adler-32 of the output) is read by inflate itself,
// so that the checksum is computed once on a finished output rather than
// on every chunk of a bomb's.
type zlibInflater struct {
	src bytes.Reader
	fr  io.ReadCloser // implements flate.Resetter
	out []byte        // scratch output, copied out on success
}

// maxPooledScratch is the largest scratch buffer kept in the pool.
const maxPooledScratch = MaxGGEPInflated + inflateSetupCost + 1

var zlibInflaters = sync.Pool{New: func() any { return new(zlibInflater) }}

// flateWindow is the size of compress/flate's history window, which it
// fills before it hands over any output; zeroWindow presets it (inflate).
const flateWindow = 1 << 15

var zeroWindow [flateWindow]byte

// inflate undoes the deflate (zlib) of an extension's data and charges it
// to the budget, never holding more output than the budget has left (plus
// one byte). Going over the budget is ErrInflateBudget; a broken stream is
// ErrBadGGEP. Offsets in errors are relative to data.
func (b *inflateBudget) inflate(data []byte) ([]byte, error) {
	if len(data) < 6 {
		return nil, errAt("ggep", 0, ErrBadGGEP, "deflated data of %d bytes, need at least 6", len(data))
	}
	if charge := inflateSetupCost + inflateInputCost*len(data); b.left < charge {
		return nil, errAt("ggep", 0, ErrInflateBudget, "too much deflated data for a budget of %d bytes", b.total)
	} else {
		b.left -= charge
	}
	limit := b.left
	z := zlibInflaters.Get().(*zlibInflater)
	defer func() {
		z.src.Reset(nil) // keep no payload alive in the pool
		zlibInflaters.Put(z)
	}()
	cmf, flg := data[0], data[1]
	switch {
	case cmf&0x0F != 8 || cmf>>4 > 7 || (uint16(cmf)<<8|uint16(flg))%31 != 0:
		return nil, errAt("ggep", 0, ErrBadGGEP, "bad zlib header %02x %02x", cmf, flg)
	case flg&0x20 != 0:
		return nil, errAt("ggep", 0, ErrBadGGEP, "zlib stream wants a preset dictionary")
	}
	z.src.Reset(data[2:])
	// compress/flate decodes until its 32 KiB window is full before it
	// returns anything, so a bomb would cost a whole window however small
	// the budget. A preset dictionary of zeros fills the window but for
	// limit+1 bytes: flate then hands over its output, and we stop, after
	// limit+1 bytes. (A corrupt stream that refers back past its own start
	// reads these zeros instead of failing; honest streams never do.)
	var dict []byte
	if limit+1 < flateWindow {
		dict = zeroWindow[:flateWindow-(limit+1)]
	}
	if z.fr == nil {
		z.fr = flate.NewReaderDict(&z.src, dict)
	} else if err := z.fr.(flate.Resetter).Reset(&z.src, dict); err != nil {
		return nil, errAt("ggep", 0, ErrBadGGEP, "inflate: %v", err)
	}
	// Inflate into the pooled scratch, growing it up to limit+1 bytes, so
	// that a bomb allocates nothing and a success allocates its result once.
	out := z.out[:0:min(cap(z.out), limit+1)]
	defer func() {
		if cap(out) > cap(z.out) && cap(out) <= maxPooledScratch {
			z.out = out[:0]
		}
	}()
	if cap(out) == 0 {
		out = make([]byte, 0, min(max(4*len(data), 512), limit+1))
	}
	for {
		if len(out) == cap(out) {
			if len(out) > limit {
				return nil, errAt("ggep", 0, ErrInflateBudget, "inflates past the budget of %d bytes", b.total)
			}
			out = append(out, 0)[:len(out)]
			out = out[:len(out):min(cap(out), limit+1)]
		}
		n, err := z.fr.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errAt("ggep", 0, ErrBadGGEP, "inflate: %v", err)
		}
	}
	if len(out) > limit {
		return nil, errAt("ggep", 0, ErrInflateBudget, "inflates past the budget of %d bytes", b.total)
	}
	var sum [4]byte
	if _, err := io.ReadFull(&z.src, sum[:]); err != nil {
		return nil, errAt("ggep", 0, ErrBadGGEP, "zlib checksum missing")
	}
	if binary.BigEndian.Uint32(sum[:]) != adler32.Checksum(out) {
		return nil, errAt("ggep", 0, ErrBadGGEP, "zlib checksum does not match")
	}
	b.left -= len(out)
	return bytes.Clone(out), nil
}
