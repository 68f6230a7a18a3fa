package protocol

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The outside judge: Wireshark's Gnutella dissector reads what our encoders
// write. It decodes Ping, Pong, Query, QueryHit and Push; Bye, vendor, QRP
// and HSEP descriptors show as unknown payloads, which is not malformed. It
// reads the Query flag bytes as a little-endian "min speed" (docs/protocol.md §10), so that
// field is not checked.

const tsharkPort = 6346

// needTshark skips the test when the Wireshark command-line tools are
// missing and returns their paths.
func needTshark(t *testing.T) (tshark, text2pcap string) {
	t.Helper()
	var err error
	if tshark, err = exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed: apt-get install tshark")
	}
	if text2pcap, err = exec.LookPath("text2pcap"); err != nil {
		t.Skip("text2pcap not installed: apt-get install tshark")
	}
	return tshark, text2pcap
}

// odHex writes packets in the od-style hex dump text2pcap reads: each
// packet starts at offset 000000, 16 bytes a line.
func odHex(packets [][]byte) []byte {
	var b bytes.Buffer
	for _, p := range packets {
		for off := 0; off < len(p); off += 16 {
			fmt.Fprintf(&b, "%06x", off)
			for _, c := range p[off:min(off+16, len(p))] {
				fmt.Fprintf(&b, " %02x", c)
			}
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// writePcap turns packets into a pcap of TCP segments from port 40000 to
// tsharkPort, numbered in sequence so that the stream reassembles.
func writePcap(t *testing.T, text2pcap string, packets [][]byte) string {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "stream.txt"), filepath.Join(dir, "stream.pcap")
	if err := os.WriteFile(in, odHex(packets), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(text2pcap, "-q", "-T", "40000,"+strconv.Itoa(tsharkPort), in, out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("text2pcap: %v\n%s", err, msg)
	}
	return out
}

// runTshark runs tshark on the capture with the Gnutella dissector on
// tsharkPort and returns its standard output.
func runTshark(t *testing.T, tshark, pcap string, args ...string) string {
	t.Helper()
	all := append([]string{"-n", "-r", pcap, "-d", "tcp.port==" + strconv.Itoa(tsharkPort) + ",gnutella"}, args...)
	cmd := exec.Command(tshark, all...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user preferences
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(all, " "), err, stderr.String())
	}
	return stdout.String()
}

// tsharkMessages builds one descriptor of each type the dissector knows,
// plus a Bye, with this package's constructors.
func tsharkMessages(t testing.TB) []*Message {
	t.Helper()
	guid := func(n byte) GUID {
		g := NewGUID()
		g[0] = n
		return g
	}
	servent := GUID{0x0e, 0xfd, 0x31, 0x02, 0x6d, 0x8d, 0xef, 0x95, 0x48, 0xee, 0x17, 0xf2, 0x19, 0xe0, 0x75, 0x03}
	results := make([]Result, 10)
	for i := range results {
		name := fmt.Sprintf("zebraquokka_%02d.txt", i)
		results[i] = Result{
			Index:      uint32(i + 1),
			Size:       uint32(1000 * (i + 1)),
			Name:       []byte(name),
			Extensions: ResultExtensions(SHA1(sha1.Sum([]byte(name))), i%2 == 0, nil),
		}
	}
	pong := &Pong{Port: 16356, IP: [4]byte{192, 0, 2, 7}, Files: 10, KB: UltrapeerKB(5000, true),
		GGEP: GGEP{DailyUptimeExtension(86400), VendorVersion{Vendor: VendorCode{'G', 'N', 'U', 'T'}, Version: 1}.Extension()}}
	hit := NewQueryHit([4]byte{192, 0, 2, 9}, 6346, 1000, results,
		HitTrailer{Vendor: VendorCode{'G', 'N', 'U', 'T'}, Uploaded: true}, servent)
	return []*Message{
		{Header: Header{ID: guid(1), TTL: 4}, Payload: &Ping{}},
		{Header: Header{ID: guid(2), TTL: 1}, Payload: &Ping{GGEP: GGEP{{ID: "SCP", Data: []byte{1}}}}},
		{Header: Header{ID: guid(2), TTL: 1, Hops: 1}, Payload: pong},
		{Header: Header{ID: guid(3), TTL: 4}, Payload: NewQuery("zebra quokka", QueryFlagGGEPH|QueryFlagXML)},
		{Header: Header{ID: guid(3), TTL: 6, Hops: 1}, Payload: hit},
		{Header: Header{ID: guid(4), TTL: 4}, Payload: &Push{ServentID: servent, Index: 7, IP: [4]byte{192, 0, 2, 9}, Port: 6346}},
		{Header: Header{ID: guid(5), TTL: 1}, Payload: NewBye(ByeShutdown, "Servent shutdown")},
	}
}

// encodeAll encodes messages one after the other and returns each
// descriptor's bytes.
func encodeAll(t testing.TB, msgs []*Message) (stream []byte, descs [][]byte) {
	t.Helper()
	for _, m := range msgs {
		var err error
		if stream, err = m.AppendTo(stream); err != nil {
			t.Fatalf("%v: %v", m.Payload.Type(), err)
		}
	}
	return stream, splitDescriptors(t, stream)
}

// noMalformed fails if tshark flags any frame of the capture as malformed or
// with an error-level expert item.
func noMalformed(t *testing.T, tshark, pcap string) {
	t.Helper()
	if out := runTshark(t, tshark, pcap, "-Y", "_ws.malformed || _ws.expert.severity >= error", "-T", "fields", "-e", "frame.number"); strings.TrimSpace(out) != "" {
		t.Errorf("tshark marks frames malformed: %q\n%s", out, runTshark(t, tshark, pcap, "-V"))
	}
	if v := runTshark(t, tshark, pcap, "-V"); strings.Contains(v, "Malformed") {
		t.Errorf("tshark -V mentions a malformed packet:\n%s", v)
	}
}

// tsharkFields returns, per Gnutella descriptor, the listed fields (tshark
// "-T fields" output split into lines and tab-separated columns). With
// -E occurrence unset, a frame with several descriptors gives
// comma-separated values; callers send one descriptor per frame.
func tsharkFields(t *testing.T, tshark, pcap string, fields ...string) [][]string {
	t.Helper()
	args := []string{"-Y", "gnutella", "-T", "fields", "-E", "separator=/t"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(runTshark(t, tshark, pcap, args...)), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

func TestTsharkDecodesOurDescriptorsWithoutMalformedPackets(t *testing.T) {
	tshark, text2pcap := needTshark(t)
	msgs := tsharkMessages(t)
	_, descs := encodeAll(t, msgs)
	pcap := writePcap(t, text2pcap, descs) // one descriptor per segment

	noMalformed(t, tshark, pcap)

	rows := tsharkFields(t, tshark, pcap, "gnutella.header.payload", "gnutella.header.ttl",
		"gnutella.header.hops", "gnutella.header.size", "gnutella.header.id")
	if len(rows) != len(msgs) {
		t.Fatalf("tshark shows %d Gnutella frames, want %d: %q", len(rows), len(msgs), rows)
	}
	for i, m := range msgs {
		h, _ := ParseHeader(descs[i])
		want := []string{strconv.Itoa(int(h.Type)), strconv.Itoa(int(h.TTL)), strconv.Itoa(int(h.Hops)),
			strconv.Itoa(int(h.Length)), fmt.Sprintf("%x", h.ID[:])}
		if strings.Join(rows[i], "|") != strings.Join(want, "|") {
			t.Errorf("frame %d (%v): tshark reads header %q, want %q", i+1, m.Payload.Type(), rows[i], want)
		}
	}

	checks := []struct {
		name   string
		fields []string
		want   [][]string
	}{
		{"pong", []string{"gnutella.pong.port", "gnutella.pong.ip", "gnutella.pong.files", "gnutella.pong.kbytes"},
			[][]string{{"16356", "192.0.2.7", "10", strconv.Itoa(int(UltrapeerKB(5000, true)))}}},
		{"query", []string{"gnutella.query.search"}, [][]string{{"zebra quokka"}}},
		{"queryhit", []string{"gnutella.queryhit.count", "gnutella.queryhit.port", "gnutella.queryhit.ip",
			"gnutella.queryhit.speed", "gnutella.queryhit.servent_id"},
			[][]string{{"10", "6346", "192.0.2.9", "1000", "0efd31026d8def9548ee17f219e07503"}}},
		{"push", []string{"gnutella.push.servent_id", "gnutella.push.index", "gnutella.push.ip", "gnutella.push.port"},
			[][]string{{"0efd31026d8def9548ee17f219e07503", "7", "192.0.2.9", "6346"}}},
	}
	for _, c := range checks {
		var got [][]string
		for _, r := range tsharkFields(t, tshark, pcap, c.fields...) {
			if strings.Join(r, "") != "" {
				got = append(got, r)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: tshark reads %q, want %q", c.name, got, c.want)
		}
	}

	// Every one of the 10 records of the hit, with its index, size and name.
	rows = tsharkFields(t, tshark, pcap, "gnutella.queryhit.hit.index", "gnutella.queryhit.hit.size", "gnutella.queryhit.hit.name")
	var hitRow []string
	for _, r := range rows {
		if strings.Join(r, "") != "" {
			hitRow = r
		}
	}
	if len(hitRow) != 3 {
		t.Fatalf("no hit records in tshark's output: %q", rows)
	}
	names := strings.Split(hitRow[2], ",")
	if idx := strings.Split(hitRow[0], ","); len(idx) != 10 || len(names) != 10 {
		t.Fatalf("tshark shows %d record indexes and %d names, want 10: %q", len(idx), len(names), hitRow)
	}
	for i, n := range names {
		if want := fmt.Sprintf("zebraquokka_%02d.txt", i); n != want {
			t.Errorf("record %d: tshark reads name %q, want %q", i, n, want)
		}
	}
}

func TestTsharkReassemblesOurStreamAcrossSegments(t *testing.T) {
	tshark, text2pcap := needTshark(t)
	msgs := tsharkMessages(t)
	stream, descs := encodeAll(t, msgs)
	// The same stream cut into 100-byte segments, regardless of descriptor
	// boundaries: the dissector must find each descriptor by its length.
	var segs [][]byte
	for off := 0; off < len(stream); off += 100 {
		segs = append(segs, stream[off:min(off+100, len(stream))])
	}
	pcap := writePcap(t, text2pcap, segs)
	noMalformed(t, tshark, pcap)
	var types []string
	for _, r := range tsharkFields(t, tshark, pcap, "gnutella.header.payload") {
		types = append(types, strings.Split(r[0], ",")...)
	}
	var want []string
	for _, d := range descs {
		want = append(want, strconv.Itoa(int(d[16])))
	}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Errorf("tshark finds descriptor types %v, want %v", types, want)
	}
}

func TestTsharkReadsTheRecordedDescriptorsAsWeReencodeThem(t *testing.T) {
	tshark, text2pcap := needTshark(t)
	var packets [][]byte
	for _, f := range descriptorFiles {
		body, _ := recordedDescriptors(t, f.name)
		r := NewReader(bytes.NewReader(body), DefaultLimits())
		for {
			m, err := r.ReadMessage()
			if err != nil {
				break
			}
			b, err := m.AppendTo(nil)
			if err != nil {
				t.Fatal(err)
			}
			packets = append(packets, b)
		}
	}
	pcap := writePcap(t, text2pcap, packets)
	noMalformed(t, tshark, pcap)
	if rows := tsharkFields(t, tshark, pcap, "gnutella.header.payload"); len(rows) != len(packets) {
		t.Errorf("tshark shows %d Gnutella frames, want %d", len(rows), len(packets))
	}
}

// TestTsharkFlagsACorruptedQueryHit calibrates the judge: the same hit with
// its record count raised from 10 to 11 must be reported malformed, so a
// clean result above means something.
func TestTsharkFlagsACorruptedQueryHit(t *testing.T) {
	tshark, text2pcap := needTshark(t)
	_, descs := encodeAll(t, tsharkMessages(t))
	var hit []byte
	for _, d := range descs {
		if Type(d[16]) == TypeQueryHit {
			hit = append([]byte(nil), d...)
		}
	}
	if hit == nil || hit[HeaderLen] != 10 {
		t.Fatalf("no 10-record QueryHit among the test descriptors")
	}
	hit[HeaderLen] = 11
	pcap := writePcap(t, text2pcap, [][]byte{hit})
	out := runTshark(t, tshark, pcap, "-Y", "_ws.malformed || _ws.expert.severity >= error", "-T", "fields", "-e", "frame.number")
	if strings.TrimSpace(out) != "1" {
		t.Errorf("tshark does not flag a hit whose count overstates its records (got %q)", out)
	}
}

// Wireshark's Gnutella dissector is registered for TCP only: tshark refuses
// "-d udp.port==6346,gnutella" ("gnutella" is not a protocol the UDP port
// table accepts), so a capture of our UDP traffic shows bare UDP payloads.
// A datagram holds exactly one descriptor, the same bytes a TCP segment of
// a link would carry, so the descriptors of the UDP side (the host-cache
// ping with SCP and VC, the bare proof ping, the pong with IPP and UDPHC,
// and out-of-band hits: LIME/12 v2 and v3, LIME/11 v2 and v3 with a token,
// and a QueryHit echoing that token in GGEP "SO", as servent/oob.go sends
// them) are judged here as TCP segments, one per segment. The dissector
// shows the vendor messages as unknown payloads: only their framing is
// judged.
func TestTsharkDecodesOurUDPDescriptorsWithoutMalformedPackets(t *testing.T) {
	tshark, text2pcap := needTshark(t)
	hosts := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.10:6346"), netip.MustParseAddrPort("192.0.2.11:6347")}
	pong := &Pong{Port: 6346, IP: [4]byte{192, 0, 2, 7}, Files: 3, KB: UltrapeerKB(100, true), GGEP: GGEP{
		DailyUptimeExtension(3600), VendorVersion{Vendor: VendorCode{'G', 'N', 'U', 'T'}, Version: 1}.Extension(),
		UltrapeerInfo{Version: 2, FreeLeafSlots: 30, FreeUltrapeerSlots: 4}.Extension(),
		{ID: GGEPUDPHostCache}, PackedHostsExtension(hosts)}}
	msgs := []*Message{
		{Header: Header{ID: NewGUID(), TTL: 1}, Payload: NewHostsRequest(SCPUltrapeer, VendorVersion{Vendor: VendorCode{'G', 'N', 'U', 'T'}, Version: 1})},
		{Header: Header{ID: NewGUID(), TTL: 1}, Payload: &Ping{}},
		{Header: Header{ID: NewGUID(), TTL: 1}, Payload: pong},
	}
	muid := NewOOBGUID(netip.MustParseAddrPort("192.0.2.20:6346"))
	token := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	var oobResults []Result
	for i := range 5 {
		oobResults = append(oobResults, Result{Index: uint32(i + 1), Size: 4096, Name: []byte(fmt.Sprintf("oob %d.bin", i))})
	}
	oobHit := NewQueryHit([4]byte{192, 0, 2, 21}, 6346, 1000, oobResults,
		HitTrailer{Vendor: VendorCode{'G', 'N', 'U', 'T'}, GGEP: GGEP{{ID: GGEPSecureOOB, Data: token}}},
		GUID{0x0e, 0xfd, 0x31, 0x02})
	msgs = append(msgs,
		&Message{Header: Header{ID: muid, TTL: 1}, Payload: NewOOBReplyIndication(OOBReplyIndication{Hits: 5, Unsolicited: true})},
		&Message{Header: Header{ID: muid, TTL: 1}, Payload: NewOOBReplyIndication(OOBReplyIndication{Hits: 5, Secure: true})},
		&Message{Header: Header{ID: muid, TTL: 1}, Payload: NewOOBReplyAck(5, nil)},
		&Message{Header: Header{ID: muid, TTL: 1}, Payload: NewOOBReplyAck(5, token)},
		&Message{Header: Header{ID: muid, TTL: 1}, Payload: oobHit},
	)
	_, descs := encodeAll(t, msgs)
	pcap := writePcap(t, text2pcap, descs)
	noMalformed(t, tshark, pcap)
	var hitRows [][]string
	for _, r := range tsharkFields(t, tshark, pcap, "gnutella.queryhit.count", "gnutella.queryhit.ip", "gnutella.header.id") {
		if len(r) == 3 && r[0] != "" {
			hitRows = append(hitRows, r)
		}
	}
	if want := [][]string{{"5", "192.0.2.21", fmt.Sprintf("%x", muid[:])}}; fmt.Sprint(hitRows) != fmt.Sprint(want) {
		t.Errorf("tshark reads the out-of-band hit as %q, want %q", hitRows, want)
	}
	var got [][]string
	for _, r := range tsharkFields(t, tshark, pcap, "gnutella.pong.port", "gnutella.pong.ip", "gnutella.pong.files") {
		if strings.Join(r, "") != "" {
			got = append(got, r)
		}
	}
	if want := [][]string{{"6346", "192.0.2.7", "3"}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tshark reads the UDP pong as %q, want %q", got, want)
	}
	if rows := tsharkFields(t, tshark, pcap, "gnutella.header.payload"); len(rows) != len(msgs) {
		t.Errorf("tshark shows %d Gnutella frames, want %d", len(rows), len(msgs))
	}
}
