package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// This file cuts the gtk-gnutella recordings into descriptors without the
// stream Reader, so the payload tests do not depend on it: skip the
// handshake text up to the last "\r\n\r\n" before the binary part, then walk
// 23-byte headers and their payloads to the end of the file.

// walkFiles are the recordings that carry descriptors.
var walkFiles = []string{
	"leaf-to-ultrapeer.bin",
	"ultrapeer-to-leaf.bin",
	"ultrapeer-to-other-leaf-1.bin",
	"ultrapeer-to-other-leaf-2.bin",
}

// walkedDescriptor is one descriptor cut out of a recording.
type walkedDescriptor struct {
	file    string
	offset  int // stream offset of its header
	header  Header
	payload []byte
}

// walkHandshakeEnd returns the offset just after the last "\r\n\r\n" that
// comes before the first byte that cannot be handshake text.
func walkHandshakeEnd(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == '\r' || b[i] == '\n' || (b[i] >= 0x20 && b[i] < 0x7F)) {
		i++
	}
	j := bytes.LastIndex(b[:i], []byte("\r\n\r\n"))
	if j < 0 {
		return 0
	}
	return j + 4
}

// walkRecording returns every descriptor of one recording, in stream order.
// The header is read by hand so that the walk does not rely on ParseHeader.
func walkRecording(t testing.TB, name string) []walkedDescriptor {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "gtk-gnutella", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []walkedDescriptor
	off := walkHandshakeEnd(b)
	if off == 0 {
		t.Fatalf("%s: no handshake block", name)
	}
	for off < len(b) {
		if len(b)-off < HeaderLen {
			t.Fatalf("%s: %d stray bytes at %d", name, len(b)-off, off)
		}
		h := b[off : off+HeaderLen]
		d := walkedDescriptor{file: name, offset: off}
		copy(d.header.ID[:], h[:16])
		d.header.Type = Type(h[16])
		d.header.TTL = h[17]
		d.header.Hops = h[18]
		d.header.Length = binary.LittleEndian.Uint32(h[19:23])
		end := off + HeaderLen + int(d.header.Length)
		if end > len(b) {
			t.Fatalf("%s: descriptor at %d claims %d bytes, file ends first", name, off, d.header.Length)
		}
		d.payload = b[off+HeaderLen : end]
		out = append(out, d)
		off = end
	}
	return out
}

// walkAll returns the descriptors of the given types from every recording
// (every descriptor when no type is given).
func walkAll(t testing.TB, types ...Type) []walkedDescriptor {
	t.Helper()
	var out []walkedDescriptor
	for _, f := range walkFiles {
		for _, d := range walkRecording(t, f) {
			if len(types) == 0 {
				out = append(out, d)
				continue
			}
			for _, ty := range types {
				if d.header.Type == ty {
					out = append(out, d)
					break
				}
			}
		}
	}
	return out
}

// walkSeeds adds the recorded payloads of type ty to a fuzz corpus.
func walkSeeds(f *testing.F, ty Type) {
	f.Helper()
	for _, d := range walkAll(f, ty) {
		f.Add(bytes.Clone(d.payload))
	}
}

// payloadMustReencode fails unless p encodes to exactly want.
func payloadMustReencode(t testing.TB, p Payload, want []byte) {
	t.Helper()
	got, err := p.AppendTo(nil)
	if err != nil {
		t.Fatalf("re-encode %v: %v", p, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("re-encode differs:\n got % x\nwant % x", got, want)
	}
}

// payloadWantError fails unless err is an *Error of the given kind at the
// given offset.
func payloadWantError(t testing.TB, err error, kind error, off int) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v at %d", kind, off)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %v is not %v", err, kind)
	}
	if e.Offset != off {
		t.Fatalf("error %v at offset %d, want %d", err, e.Offset, off)
	}
}

// payloadFuzzError fails unless a decode error is an *Error wrapping one of
// the package's kinds.
func payloadFuzzError(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Kind == nil || !errors.Is(err, e.Kind) {
		t.Fatalf("error %v (%T) is not a proper *Error", err, err)
	}
}

func TestWalkCutsEveryRecordingIntoTheDescriptorsItHolds(t *testing.T) {
	want := map[string]int{
		"leaf-to-ultrapeer.bin":         28,
		"ultrapeer-to-leaf.bin":         14,
		"ultrapeer-to-other-leaf-1.bin": 5,
		"ultrapeer-to-other-leaf-2.bin": 7,
	}
	for _, f := range walkFiles {
		ds := walkRecording(t, f)
		if len(ds) != want[f] {
			t.Errorf("%s: %d descriptors, want %d", f, len(ds), want[f])
		}
		for _, d := range ds {
			if d.header.TTL == 0 || d.header.Hops != 0 {
				t.Errorf("%s@%d: TTL %d hops %d, gtk sends hops 0 and TTL ≥ 1", f, d.offset, d.header.TTL, d.header.Hops)
			}
		}
	}
}
