package transfer

import (
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/testnet/await"
)

// swarmRequest is the request for data with the given sources.
func swarmRequest(data []byte, srcs ...*fakeSource) Request {
	r := Request{Name: "swarm.bin", Size: int64(len(data)), SHA1: sha1.Sum(data)}
	for _, s := range srcs {
		r.Sources = append(r.Sources, s.source())
	}
	return r
}

// A download with five sources has requests in flight at three at once (the
// sources hold every request until three are), and the file is right.
func TestSwarmDrawsFromSeveralSources(t *testing.T) {
	data := content(101, 2<<20)
	var mu sync.Mutex
	inflight, most := 0, 0
	reached := make(chan struct{})
	var once sync.Once
	var srcs []*fakeSource
	for i := 0; i < 5; i++ {
		fs := startFake(t, data)
		fs.before = func(fakeReq) {
			mu.Lock()
			inflight++
			most = max(most, inflight)
			mu.Unlock()
			<-reached
		}
		fs.after = func(fakeReq) {
			mu.Lock()
			inflight--
			mu.Unlock()
		}
		srcs = append(srcs, fs)
	}
	t.Cleanup(func() { once.Do(func() { close(reached) }) }) // before the sources close
	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy, ChunkSize: 64 << 10})
	x, err := d.Add(swarmRequest(data, srcs...))
	if err != nil {
		t.Fatal(err)
	}
	// The sources hold every request until three are in flight and the
	// status shows three sources at work.
	await.Until(t, "three requests in flight at once", func() bool {
		mu.Lock()
		n := inflight
		mu.Unlock()
		return n >= 3 && x.Status().ActiveSources >= 3
	})
	once.Do(func() { close(reached) })
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	st := x.Status()
	checkFile(t, st.Path, data)
	var got int64
	for _, ss := range st.SourceStates {
		got += ss.Have
	}
	if got < int64(len(data)) {
		t.Fatalf("the sources' Have add up to %d, less than the file", got)
	}
	used := 0
	for _, fs := range srcs {
		reqs := fs.requests()
		if len(reqs) > 0 {
			used++
		}
		for _, r := range reqs {
			if r.end < 0 || r.end-r.start+1 > 64<<10+Overlap {
				t.Fatalf("request %+v: want one chunk per request", r)
			}
			if r.h.Get("X-Queue") != QueueVersion {
				t.Fatalf("request without X-Queue: %+v", r)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if used < 3 || most < 3 {
		t.Fatalf("%d sources used, at most %d requests at once", used, most)
	}
	// Keep-alive: a source answered several requests on one connection.
	kept := false
	for _, fs := range srcs {
		seen := map[int]int{}
		for _, r := range fs.requests() {
			seen[r.conn]++
			kept = kept || seen[r.conn] > 1
		}
	}
	if !kept {
		t.Fatal("no connection carried two requests")
	}
}

// Chunks are chosen at random, not from the start: two downloads of one
// file from one source ask for different first chunks (1 chance in 64 of
// the same by luck, for each of 3 tries).
func TestSwarmChunksSpread(t *testing.T) {
	data := content(102, 4<<20)
	differ := false
	for try := 0; try < 3 && !differ; try++ {
		var firsts []int64
		for i := 0; i < 2; i++ {
			fs := startFake(t, data)
			d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy, ChunkSize: 64 << 10})
			x, _ := d.Add(swarmRequest(data, fs))
			if err := waitDone(t, x); err != nil {
				t.Fatal(err)
			}
			firsts = append(firsts, fs.requests()[0].start)
		}
		differ = firsts[0] != firsts[1]
	}
	if !differ {
		t.Fatal("two downloads began with the same chunk three times")
	}
}

// A hostile swarm: one source sends wrong bytes, one drips a byte a second,
// one sends more than it announces, one announces an open-ended range; two
// are honest. The file completes right, the partial file never grows past
// the size, and each bad source is named with its reason.
func TestSwarmHostileSources(t *testing.T) {
	const size = 1 << 20
	data := content(103, size)
	sum := protocol.SHA1(sha1.Sum(data))
	wrong := append([]byte(nil), data...)
	for i := range wrong {
		wrong[i] ^= 0x5a
	}
	dir := t.TempDir()
	partial := filepath.Join(dir, partialPrefix+sum.Base32())
	var mu sync.Mutex
	var biggest int64
	watch := func(fakeReq) {
		n := fileSize(partial)
		mu.Lock()
		biggest = max(biggest, n)
		mu.Unlock()
	}

	liar := startFake(t, wrong)
	drip := startFake(t, data)
	drip.answer = func(c net.Conn, r fakeReq) bool {
		fmt.Fprintf(c, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\nContent-Length: %d\r\n\r\n", r.start, r.end, size, r.end-r.start+1)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := r.start; i <= r.end; i++ {
			if _, err := c.Write(data[i : i+1]); err != nil {
				return false
			}
			<-tick.C
		}
		return true
	}
	overrun := startFake(t, data)
	overrun.answer = func(c net.Conn, r fakeReq) bool {
		head := fmt.Sprintf("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\nContent-Length: %d\r\n\r\n", r.start, r.end, size, r.end-r.start+1)
		msg := append([]byte(head), data[r.start:r.end+1]...)
		msg = append(msg, strings.Repeat("X", 1000)...)
		_, err := c.Write(msg)
		return err == nil
	}
	open := startFake(t, data)
	open.answer = func(c net.Conn, r fakeReq) bool {
		fmt.Fprintf(c, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-999999999999/*\r\n\r\n")
		endless(c, 'X')
		return false
	}
	h1, h2 := startFake(t, data), startFake(t, data)
	all := []*fakeSource{liar, drip, overrun, open, h1, h2}
	for _, fs := range all {
		fs.after = watch
	}
	mesh := NewMesh(MeshConfig{AddrPolicy: &lanPolicy})
	mesh.Add(sum, liar.source())
	d := newDownloader(t, &Downloader{Dir: dir, AddrPolicy: lanPolicy, ChunkSize: 64 << 10, RateWindow: 200 * time.Millisecond, Mesh: mesh})
	x, err := d.Add(swarmRequest(data, all...))
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	st := x.Status()
	checkFile(t, st.Path, data)
	for _, ss := range st.SourceStates {
		t.Logf("%s %s: %s", ss.Addr, ss.State, ss.Reason)
	}
	watch(fakeReq{})
	mu.Lock()
	if biggest > size {
		t.Errorf("the partial file grew to %d bytes, past %d", biggest, size)
	}
	mu.Unlock()
	for _, c := range []struct {
		fs    *fakeSource
		state SourceState
		has   string
	}{
		{liar, SourceDropped, "did not match"},
		{drip, SourceWaiting, "too slow"},
		{overrun, SourceDropped, ""},
		{open, SourceDropped, "answered bytes 0-999999999999 for a 1048576-byte file"},
	} {
		ss := sourceStatus(st, c.fs.addr)
		if ss.State != c.state || ss.Reason == "" || !strings.Contains(ss.Reason, c.has) {
			t.Errorf("source %+v: want %s with a reason containing %q", ss, c.state, c.has)
		}
	}
	for _, s := range mesh.Sources(sum) {
		if s.Addr == liar.addr {
			t.Error("the liar is still a source in the mesh")
		}
	}
	for _, fs := range []*fakeSource{h1, h2} {
		if ss := sourceStatus(st, fs.addr); ss.State == SourceDropped {
			t.Errorf("honest source dropped: %+v", ss)
		}
	}
}

// PARQ: a source that queues us is asked again not before its Retry-After
// (a Retry-After of 0 counts as 1 s), with the place's ID and position; a
// queued source is shown as queued with its place and is no failure.
func TestSwarmParqClient(t *testing.T) {
	data := content(104, 200_000)
	fs := startFake(t, data)
	var mu sync.Mutex
	n := 0
	fs.answer = func(c net.Conn, r fakeReq) bool {
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		switch k {
		case 1:
			fmt.Fprintf(c, "HTTP/1.1 503 Busy\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n")
			return false
		case 2, 3:
			q := Queued{ID: "0123456789abcdef0123456789abcdef", Position: 4 - k, Length: 3, Lifetime: 100 * time.Millisecond}
			fmt.Fprintf(c, "HTTP/1.1 503 Queued\r\nX-Queued: %s\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n", q.Format())
			return false
		}
		return fs.honest(c, r)
	}
	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy})
	x, err := d.Add(swarmRequest(data, fs))
	if err != nil {
		t.Fatal(err)
	}
	await.Until(t, "the source to queue us", func() bool {
		ss := sourceStatus(x.Status(), fs.addr)
		return ss.State == SourceQueued && ss.Queue == "2 of 3"
	})
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	checkFile(t, x.Status().Path, data)
	reqs := fs.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4", len(reqs))
	}
	for i, r := range reqs {
		if r.h.Get("X-Queue") != QueueVersion {
			t.Errorf("request %d without X-Queue", i)
		}
		if i > 0 && r.at.Sub(reqs[i-1].at) < time.Second {
			t.Errorf("request %d came %v after the last, before its Retry-After", i, r.at.Sub(reqs[i-1].at))
		}
	}
	for i, want := range []string{"", "", "position=2; ID=0123456789abcdef0123456789abcdef", "position=1; ID=0123456789abcdef0123456789abcdef"} {
		if got := reqs[i].h.Get("X-Queued"); got != want {
			t.Errorf("request %d: X-Queued %q, want %q", i, got, want)
		}
	}
	if ss := sourceStatus(x.Status(), fs.addr); ss.State == SourceDropped || ss.Queue != "" {
		t.Fatalf("source after being served: %+v", ss)
	}
}

// A partial source (X-Available-Ranges) is asked only for what it has,
// once it said what that is; a 416 with its ranges is followed at once by
// a request inside them.
func TestSwarmPartialSourceRanges(t *testing.T) {
	const size = 1 << 20
	data := content(105, size)
	part := startFake(t, data)
	has := Ranges{{0, 256 << 10}, {768 << 10, size}}
	part.has = has
	served := make(chan struct{})
	var once sync.Once
	part.after = func(r fakeReq) {
		if in, _ := run(has, r.start, r.start+1); in {
			once.Do(func() { close(served) })
		}
	}
	full := startFake(t, data)
	full.before = func(fakeReq) { <-served }
	t.Cleanup(func() { once.Do(func() { close(served) }) })
	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy, ChunkSize: 64 << 10})
	x, err := d.Add(swarmRequest(data, part, full))
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	checkFile(t, x.Status().Path, data)
	reqs := part.requests()
	for i, r := range reqs {
		if i == 0 {
			continue // before it said what it has
		}
		if !has.Contains(r.start, r.end+1) {
			t.Errorf("request %d for %d-%d, outside what it has (%s)", i, r.start, r.end, has.FormatAvailable())
		}
	}
	if len(reqs) > 1 && reqs[1].at.Sub(reqs[0].at) >= DefaultRetryAfter {
		t.Errorf("asked again %v after a 416 with ranges", reqs[1].at.Sub(reqs[0].at))
	}
}

// partialServer serves one file from d's PartialFile (the ranges it has),
// or whole once d has it: a stand-in for a Server with Partials.
func partialServer(t *testing.T, d *Downloader, data []byte) *fakeSource {
	fs := startFake(t, data)
	sum := protocol.SHA1(sha1.Sum(data))
	fs.answer = func(c net.Conn, r fakeReq) bool {
		pf, ok := d.PartialFile(sum)
		if !ok {
			for _, st := range d.List() {
				if st.State == StateDone {
					return fs.honest(c, r)
				}
			}
			fmt.Fprintf(c, "HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n")
			return false
		}
		if pf.Size != int64(len(data)) {
			t.Errorf("PartialFile %+v", pf)
		}
		// Serve the bytes from the partial file, as a Server would.
		f, err := os.Open(pf.Path)
		if err != nil {
			return false
		}
		defer f.Close()
		buf := make([]byte, len(data))
		for _, sp := range pf.Have {
			if _, err := f.ReadAt(buf[sp.Start:sp.End], sp.Start); err != nil {
				return false
			}
		}
		return fs.serveBytes(c, r, buf, pf.Have)
	}
	return fs
}

// Three downloaders that each have a different third of a file complete it
// from each other through PartialFile.
func TestSwarmPartialSharing(t *testing.T) {
	const size = 768 << 10
	data := content(106, size)
	sum := protocol.SHA1(sha1.Sum(data))
	var ds []*Downloader
	var servers []*fakeSource
	for i := 0; i < 3; i++ {
		dir := t.TempDir()
		a, b := int64(i)*size/3, int64(i+1)*size/3
		f, err := os.Create(filepath.Join(dir, partialPrefix+sum.Base32()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(data[a:b], a); err != nil {
			t.Fatal(err)
		}
		f.Close()
		// A queue file saying which third the partial file holds.
		state := filepath.Join(dir, "downloads.json")
		q := queueFile{Version: queueVersion, Downloads: []queueEntry{{
			ID: fmt.Sprintf("0000000%d", i), Name: "shared.bin", Size: size, URN: sum.String(), Key: sum.Base32(),
			State: StatePaused, Have: [][2]int64{{a, b}},
		}}}
		js, _ := json.Marshal(q)
		if err := os.WriteFile(state, js, 0o644); err != nil {
			t.Fatal(err)
		}
		d := newDownloader(t, &Downloader{Dir: dir, StateFile: state, AddrPolicy: lanPolicy, ChunkSize: 32 << 10, SharePartials: true})
		if st, _ := d.Get(fmt.Sprintf("0000000%d", i)); st.Have != b-a {
			t.Fatalf("downloader %d has %d bytes, want %d", i, st.Have, b-a)
		}
		ds = append(ds, d)
		servers = append(servers, partialServer(t, d, data))
	}
	if _, ok := (&Downloader{}).PartialFile(sum); ok {
		t.Fatal("PartialFile answers without SharePartials")
	}
	var xs []*Download
	for i, d := range ds {
		var srcs []*fakeSource
		for j, s := range servers {
			if j != i {
				srcs = append(srcs, s)
			}
		}
		x, err := d.Add(swarmRequest(data, srcs...))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Resume(x.ID()); err != nil {
			t.Fatal(err)
		}
		xs = append(xs, x)
	}
	for i, x := range xs {
		if err := waitDone(t, x); err != nil {
			t.Fatalf("downloader %d: %v", i, err)
		}
		checkFile(t, x.Status().Path, data)
	}
	if _, err := ds[0].Get("nope"); !errors.Is(err, ErrUnknownDownload) {
		t.Fatal(err)
	}
}

// The mesh: a source's X-Alt names another source, which the download then
// uses; our requests carry the mesh's X-Alt; a liar found out is reported
// to the mesh (Bad) and not named again.
func TestSwarmMesh(t *testing.T) {
	const size = 512 << 10
	data := content(107, size)
	sum := protocol.SHA1(sha1.Sum(data))
	other := startFake(t, data)
	first := startFake(t, data)
	n := 0
	var mu sync.Mutex
	first.answer = func(c net.Conn, r fakeReq) bool {
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		if k == 1 {
			// One chunk, and the other source's address; then busy for an hour.
			head := fmt.Sprintf("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\nContent-Length: %d\r\nX-Alt: %s\r\nConnection: close\r\n\r\n",
				r.start, r.end, size, r.end-r.start+1, other.addr)
			c.Write(append([]byte(head), data[r.start:r.end+1]...))
			return false
		}
		fmt.Fprintf(c, "HTTP/1.1 503 Busy\r\nRetry-After: 3600\r\nContent-Length: 0\r\n\r\n")
		return false
	}
	mesh := NewMesh(MeshConfig{AddrPolicy: &lanPolicy})
	mesh.Add(sum, Source{Addr: netip.MustParseAddrPort("127.0.0.9:6346")}) // a hit's source, sent on as X-Alt
	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy, ChunkSize: 64 << 10, Mesh: mesh, ConnectTimeout: 5 * time.Second})
	x, err := d.Add(swarmRequest(data, first))
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	checkFile(t, x.Status().Path, data)
	if len(other.requests()) == 0 {
		t.Fatal("the source learnt from X-Alt was never asked")
	}
	if alt := first.requests()[0].h.Get("X-Alt"); !strings.Contains(alt, "127.0.0.9:6346") {
		t.Fatalf("request X-Alt %q", alt)
	}
}

// A swarm takes a firewalled source (by Push) and a direct one at once.
func TestSwarmPushAndDirect(t *testing.T) {
	srv := &Server{PerIP: -1}
	fx := newUploadFixture(t, srv)
	data := content(108, 1<<20)
	f := makeShared(t, fx.sharedDir, 20, "both.bin", data)
	fx.lib.add(f)
	sim := newPushSim(t, srv)
	gate := make(chan struct{})
	var once sync.Once
	direct := startFake(t, data)
	direct.before = func(fakeReq) { <-gate }
	t.Cleanup(func() { once.Do(func() { close(gate) }) })
	sid := protocol.GUID{0x42, 1, 2, 3}
	pushed := Source{Addr: netip.MustParseAddrPort("1.2.3.4:6346"), Index: 20, ServentID: sid, Push: true}
	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy, Push: sim.push, ChunkSize: 64 << 10})
	x, err := d.Add(Request{Name: f.Name, Size: f.Size, SHA1: f.SHA1, Sources: []Source{pushed, direct.source()}})
	if err != nil {
		t.Fatal(err)
	}
	await.Until(t, "bytes through the Push while the direct source holds its answer", func() bool {
		return pushHave(x.Status()) > 0
	})
	once.Do(func() { close(gate) })
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	checkFile(t, x.Status().Path, data)
	if len(direct.requests()) == 0 || sim.calls.Load() == 0 {
		t.Fatalf("direct requests %d, pushes %d", len(direct.requests()), sim.calls.Load())
	}
}

// pushHave is what the push sources of st delivered.
func pushHave(st Status) int64 {
	var n int64
	for _, ss := range st.SourceStates {
		if strings.HasPrefix(ss.Addr, "push:") {
			n += ss.Have
		}
	}
	return n
}
