package protocol

import "bytes"

// COBS (Consistent Overhead Byte Stuffing) removes every 0x00 from a byte
// string, as GGEP needs for extension data inside QueryHit records (docs/protocol.md §1.10).
// Each block is a code byte n (1..255) followed by n-1 non-zero bytes; a
// code below 0xFF stands for those bytes plus a zero, and the final zero is
// implied. A final block that ends on code 0xFF needs no closing code.

// cobsEncode appends the COBS encoding of src to dst, the way gtk-gnutella
// writes it (lib/cobs.c): the algorithm of the COBS paper, except that a
// final 0xFF block is not followed by a closing code. Empty input encodes
// as the single byte 0x01.
func cobsEncode(dst, src []byte) []byte {
	codeAt := len(dst)
	dst = append(dst, 0)
	code := byte(1)
	lastCode := byte(0)
	for _, c := range src {
		if c == 0 {
			dst[codeAt], lastCode = code, code
			codeAt = len(dst)
			dst = append(dst, 0)
			code = 1
			continue
		}
		dst = append(dst, c)
		code++
		if code == 0xFF {
			dst[codeAt], lastCode = code, code
			codeAt = len(dst)
			dst = append(dst, 0)
			code = 1
		}
	}
	if lastCode == 0xFF && code == 1 {
		return dst[:codeAt] // drop the placeholder: nothing follows the 0xFF block
	}
	dst[codeAt] = code
	return dst
}

// cobsDecode appends the decoding of src to dst. It fails on empty input, on
// a zero byte or on a code that runs past the end of src. It accepts both
// gtk-gnutella's form and the COBS paper's, which closes a final 0xFF block
// with an extra 0x01. The decoding is never longer than src.
func cobsDecode(dst, src []byte) ([]byte, error) {
	if len(src) == 0 {
		return dst, errAt("cobs", 0, ErrBadGGEP, "empty COBS data")
	}
	var last byte
	for i := 0; i < len(src); {
		code := src[i]
		if code == 0 {
			return dst, errAt("cobs", i, ErrBadGGEP, "zero byte in COBS data")
		}
		last = code
		i++
		n := int(code) - 1
		if n > len(src)-i {
			return dst, errAt("cobs", i-1, ErrBadGGEP, "COBS block runs past the end")
		}
		if k := bytes.IndexByte(src[i:i+n], 0); k >= 0 {
			return dst, errAt("cobs", i+k, ErrBadGGEP, "zero byte in COBS data")
		}
		dst = append(dst, src[i:i+n]...)
		i += n
		if code < 0xFF {
			dst = append(dst, 0)
		}
	}
	if last < 0xFF {
		dst = dst[:len(dst)-1] // the implied final zero
	}
	return dst, nil
}
