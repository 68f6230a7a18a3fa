package protocol

import "io"

// writerBufferSize is the number of bytes a Writer gathers before it passes
// them on without being asked; gtk-gnutella flushes its deflate stream at the
// same size (NODE_TX_FLUSH, §2.5).
const writerBufferSize = 4096

// Writer writes descriptors to one direction of a Gnutella connection.
//
// It gathers whole descriptors in a buffer and passes them to the
// underlying writer when the buffer passes 4 KiB or on Flush. Flush also
// calls Flush on the underlying writer if it has one: over a *zlib.Writer
// that is the sync flush that lets the peer inflate everything sent so far
// (§2.5). Callers Flush at the end of every burst.
//
// After a write error every later call returns that error.
type Writer struct {
	w   io.Writer
	buf []byte
	err error
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, buf: make([]byte, 0, writerBufferSize)}
}

// WriteMessage encodes m (setting its Type and Length from the payload, see
// Message.AppendTo) and buffers it. A payload longer than 0xFFFF bytes is
// refused with ErrTooLarge: no peer accepts it without sflag.
func (w *Writer) WriteMessage(m *Message) error {
	if w.err != nil {
		return w.err
	}
	if m.Payload == nil {
		return errAt("message", -1, ErrMalformed, "no payload")
	}
	start := len(w.buf)
	b, err := m.AppendTo(w.buf)
	if err != nil {
		w.buf = b[:start]
		return err
	}
	if n := len(b) - start - HeaderLen; n > MaxPayloadLength {
		w.buf = b[:start]
		return errAt("message", -1, ErrTooLarge, "%v payload of %d bytes is over 0xFFFF", m.Payload.Type(), n)
	}
	w.buf = b
	return w.spill()
}

// WriteRaw buffers a descriptor made of h and payload, setting h.Length to
// len(payload). A payload longer than 0xFFFF bytes is refused with
// ErrTooLarge.
func (w *Writer) WriteRaw(h Header, payload []byte) error {
	if w.err != nil {
		return w.err
	}
	if len(payload) > MaxPayloadLength {
		return errAt("message", -1, ErrTooLarge, "%v payload of %d bytes is over 0xFFFF", h.Type, len(payload))
	}
	h.Length = uint32(len(payload))
	w.buf = h.AppendTo(w.buf)
	w.buf = append(w.buf, payload...)
	return w.spill()
}

// Buffered returns the number of bytes written to w but not yet passed on.
func (w *Writer) Buffered() int { return len(w.buf) }

// Flush passes every buffered byte to the underlying writer, then calls its
// Flush method if it has one (Flush() error, as *zlib.Writer and
// *bufio.Writer have).
func (w *Writer) Flush() error {
	if err := w.writeOut(); err != nil {
		return err
	}
	if f, ok := w.w.(interface{ Flush() error }); ok {
		if err := f.Flush(); err != nil {
			w.err = err
			return err
		}
	}
	return nil
}

// spill passes the buffer on once it has reached writerBufferSize.
func (w *Writer) spill() error {
	if len(w.buf) < writerBufferSize {
		return nil
	}
	return w.writeOut()
}

func (w *Writer) writeOut() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.w.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = err
		return err
	}
	if cap(w.buf) > 4*writerBufferSize {
		// A large descriptor grew the buffer; do not keep 64 KiB per link.
		w.buf = make([]byte, 0, writerBufferSize)
	} else {
		w.buf = w.buf[:0]
	}
	return nil
}
