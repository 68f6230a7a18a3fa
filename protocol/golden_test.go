package protocol

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

const recordingsDir = "testdata/gtk-gnutella"

// descriptorFiles are the recordings that carry descriptors after their
// handshake blocks. The README gives 28 for the leaf side and 14 for the
// ultrapeer side; the two other-leaf counts are as recorded.
var descriptorFiles = []struct {
	name        string
	descriptors int
	blocks      int // handshake blocks before the first descriptor
}{
	{"leaf-to-ultrapeer.bin", 28, 2},
	{"ultrapeer-to-leaf.bin", 14, 1},
	{"ultrapeer-to-other-leaf-1.bin", 5, 1},
	{"ultrapeer-to-other-leaf-2.bin", 7, 1},
}

func readRecording(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(recordingsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recordedDescriptors returns the descriptor part of a recording (after its
// handshake blocks) and the stream offset where it starts. It splits the
// blocks by their blank line on its own, so that it does not depend on the
// code under test.
func recordedDescriptors(t testing.TB, name string) ([]byte, int) {
	t.Helper()
	b := readRecording(t, name)
	off := 0
	for bytes.HasPrefix(b[off:], []byte("GNUTELLA")) {
		i := bytes.Index(b[off:], []byte("\r\n\r\n"))
		if i < 0 {
			t.Fatalf("%s: handshake block at %d has no end", name, off)
		}
		off += i + 4
	}
	return b[off:], off
}

// splitDescriptors cuts a descriptor stream by its length fields alone.
func splitDescriptors(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		h, err := ParseHeader(b)
		if err != nil || int(h.Length) > len(b)-HeaderLen {
			t.Fatalf("cannot split descriptors: %v, %d bytes left", err, len(b))
		}
		n := HeaderLen + int(h.Length)
		out = append(out, b[:n:n])
		b = b[n:]
	}
	return out
}

// concreteType is the payload type a descriptor must decode to; payload is
// needed for route-table updates, whose first byte picks RESET or PATCH.
func concreteType(t Type, payload []byte) string {
	switch t {
	case TypeRouteTable:
		if len(payload) > 0 && payload[0] == 0 {
			return "*protocol.RouteTableReset"
		}
		return "*protocol.RouteTablePatch"
	case TypePing:
		return "*protocol.Ping"
	case TypePong:
		return "*protocol.Pong"
	case TypeBye:
		return "*protocol.Bye"
	case TypePush:
		return "*protocol.Push"
	case TypeQuery:
		return "*protocol.Query"
	case TypeQueryHit:
		return "*protocol.QueryHit"
	case TypeVendor, TypeStdVendor:
		return "*protocol.Vendor"
	}
	return "*protocol.Raw"
}

// isPlaceholder reports whether p is still one of the placeholder payloads:
// a struct whose only field is an embedded Raw.
func isPlaceholder(p Payload) bool {
	v := reflect.TypeOf(p)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return false
	}
	s := v.Elem()
	return s.NumField() == 1 && s.Field(0).Anonymous && s.Field(0).Type == reflect.TypeOf(Raw{})
}

func TestGoldenEveryRecordedDescriptorDecodesAndReencodesExactly(t *testing.T) {
	for _, f := range descriptorFiles {
		t.Run(f.name, func(t *testing.T) {
			body, base := recordedDescriptors(t, f.name)
			descs := splitDescriptors(t, body)
			if len(descs) != f.descriptors {
				t.Errorf("%d descriptors, want %d", len(descs), f.descriptors)
			}
			off := base
			for i, d := range descs {
				h, _ := ParseHeader(d)
				where := fmt.Sprintf("descriptor %d (%v, offset %d)", i, h.Type, off)
				off += len(d)
				m, err := NewReader(bytes.NewReader(d), DefaultLimits()).ReadMessage()
				if err != nil {
					t.Errorf("%s: %v", where, err)
					continue
				}
				if got, want := fmt.Sprintf("%T", m.Payload), concreteType(h.Type, d[HeaderLen:]); got != want {
					t.Errorf("%s: decodes to %s, want %s", where, got, want)
				}
				if isPlaceholder(m.Payload) {
					t.Errorf("%s: %T is still the placeholder decoder", where, m.Payload)
				}
				if _, ok := m.Payload.(fmt.Stringer); !ok && h.Type.Known() {
					t.Errorf("%s: %T does not implement fmt.Stringer", where, m.Payload)
				}
				enc, err := m.AppendTo(nil)
				if err != nil {
					t.Errorf("%s: re-encoding: %v", where, err)
					continue
				}
				if !bytes.Equal(enc, d) {
					t.Errorf("%s: re-encoding differs\n got %x\nwant %x", where, enc, d)
				}
			}
		})
	}
}

func TestGoldenRecordedStreamsReadToACleanEOF(t *testing.T) {
	for _, f := range descriptorFiles {
		t.Run(f.name, func(t *testing.T) {
			body, _ := recordedDescriptors(t, f.name)
			r := NewReader(bytes.NewReader(body), DefaultLimits())
			var types []Type
			for {
				h, _, err := r.ReadRaw()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				types = append(types, h.Type)
			}
			if len(types) != f.descriptors || r.Offset() != int64(len(body)) {
				t.Errorf("%d descriptors over %d bytes, want %d over %d", len(types), r.Offset(), f.descriptors, len(body))
			}
		})
	}
}
