package transfer

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"gnutella/protocol"
	"gnutella/share"
	"gnutella/testnet/await"
)

// addBigFile shares a sparse 256 MiB file as index 30: a client that GETs
// it and never reads holds its slot for as long as it likes.
func addBigFile(t *testing.T, fx *uploadFixture) {
	t.Helper()
	big := filepath.Join(fx.sharedDir, "big.bin")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(256 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fi, _ := os.Stat(big)
	fx.lib.add(share.File{Index: 30, Path: big, Name: "big.bin", Size: fi.Size(), ModTime: fi.ModTime()})
}

// dialFrom connects to addr from the loopback address from, so the
// server sees different clients.
func dialFrom(t *testing.T, from string, addr netip.AddrPort) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func retryAfter(t *testing.T, r response) time.Duration {
	t.Helper()
	n, err := strconv.Atoi(r.h.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("%s with Retry-After %q", r.status, r.h.Get("Retry-After"))
	}
	return time.Duration(n) * time.Second
}

// A server with one slot, held by a client that does not read, queues
// three downloaders (from three addresses) at positions 1, 2 and 3. When
// the slot frees they come back in the reverse order, each after its
// Retry-After: the later ones are told their place again (no jumping the
// queue), and they are served in queue order, each on the connection it
// kept alive.
func TestParqServesInQueueOrder(t *testing.T) {
	srv := &Server{Slots: 1, QueueRetry: time.Second}
	fx := newUploadFixture(t, srv)
	addBigFile(t, fx)

	holder := dialFrom(t, "127.0.0.1", fx.ts.addr)
	defer holder.Close()
	fmt.Fprintf(holder, "GET /get/30/big.bin HTTP/1.1\r\n\r\n") // and never read
	await.Until(t, "the slot to be taken", srv.Busy)

	type client struct {
		name  string
		conn  net.Conn
		br    *bufio.Reader
		id    string
		first Queued
	}
	names := []string{"A", "B", "C"}
	clients := make([]*client, len(names))
	for i, n := range names {
		c := &client{name: n, conn: dialFrom(t, "127.0.0."+strconv.Itoa(i+2), fx.ts.addr)}
		defer c.conn.Close()
		_ = c.conn.SetDeadline(time.Now().Add(60 * time.Second))
		c.br = bufio.NewReader(c.conn)
		fmt.Fprintf(c.conn, "GET %s HTTP/1.1\r\nX-Queue: 1.1\r\n\r\n", getPath(fx.b))
		r := readResponse(t, c.br, false)
		q, err := ParseQueued(r.h.Get("X-Queued"))
		if r.code != 503 || r.status != "HTTP/1.1 503 Queued" || err != nil {
			t.Fatalf("%s: %s X-Queued %q (%v)", n, r.status, r.h.Get("X-Queued"), err)
		}
		if q.Position != i+1 || q.Length != i+1 || q.Lifetime <= retryAfter(t, r) || q.ETA <= 0 || len(q.ID) != 32 {
			t.Fatalf("%s: X-Queued %q (Retry-After %s)", n, r.h.Get("X-Queued"), r.h.Get("Retry-After"))
		}
		if r.h.Get("X-Gnutella-Content-URN") != fx.b.SHA1.String() || r.h.Get("Connection") == "close" {
			t.Fatalf("%s: a 503 Queued must name the file and keep the connection", n)
		}
		c.id, c.first = q.ID, q
		clients[i] = c
	}
	if st := srv.Stats(); st.Queued != 3 {
		t.Fatalf("Stats().Queued = %d", st.Queued)
	}
	holder.Close()
	await.Until(t, "the slot to be freed", func() bool { return !srv.Busy() })

	// Each comes back after its Retry-After, C first and A last (still
	// within A's lifetime), and keeps asking until it is served.
	var mu sync.Mutex
	var served []string
	var told = map[string][]int{} // the positions each was told
	var wg sync.WaitGroup
	for i, c := range clients {
		extra := time.Duration(len(clients)-1-i) * 700 * time.Millisecond
		wg.Go(func() {
			wait := time.Duration(1+i/2)*time.Second + extra
			for try := 0; try < 20; try++ {
				time.Sleep(wait) // what PARQ asks of a downloader, not a synchronisation
				wait = 0
				fmt.Fprintf(c.conn, "GET %s HTTP/1.1\r\nX-Queue: 1.1\r\nX-Queued: position=%d; ID=%s\r\n\r\n",
					getPath(fx.b), c.first.Position, c.id)
				r := readResponse(t, c.br, false)
				switch r.code {
				case 200:
					if !bytes.Equal(r.body, fx.bData) {
						t.Errorf("%s: wrong body", c.name)
					}
					mu.Lock()
					served = append(served, c.name)
					mu.Unlock()
					c.conn.Close() // frees the slot
					return
				case 503:
					q, err := ParseQueued(r.h.Get("X-Queued"))
					if err != nil || q.ID != c.id {
						t.Errorf("%s: %s X-Queued %q: lost its place", c.name, r.status, r.h.Get("X-Queued"))
						return
					}
					mu.Lock()
					told[c.name] = append(told[c.name], q.Position)
					mu.Unlock()
					wait = retryAfter(t, r)
				default:
					t.Errorf("%s: %s", c.name, r.status)
					return
				}
			}
			t.Errorf("%s: never served", c.name)
		})
	}
	wg.Wait()
	if fmt.Sprint(served) != "[A B C]" {
		t.Errorf("served in the order %v, want [A B C]; positions told on the way: %v", served, told)
	}
	// C came back while A and B waited before it: it heard position 3.
	if len(told["C"]) == 0 || told["C"][0] != 3 {
		t.Errorf("C, back first, was told positions %v; want 3 first", told["C"])
	}
	if st := srv.Stats(); st.Completed < 3 {
		t.Errorf("stats %+v", st)
	}
}

// pipeClient is one client of a server over net.Pipe (in a synctest
// bubble, where time is virtual).
type pipeClient struct {
	conn net.Conn
	br   *bufio.Reader
}

func newPipeClient(srv *Server) *pipeClient {
	client, server := net.Pipe()
	go srv.Serve(server)
	return &pipeClient{conn: client, br: bufio.NewReader(client)}
}

func (c *pipeClient) get(t *testing.T, path, headers string) response {
	t.Helper()
	fmt.Fprintf(c.conn, "GET %s HTTP/1.1\r\n%s\r\n", path, headers)
	return readResponse(t, c.br, false)
}

func queuedOf(t *testing.T, r response) Queued {
	t.Helper()
	q, err := ParseQueued(r.h.Get("X-Queued"))
	if r.status != "HTTP/1.1 503 Queued" || err != nil {
		t.Fatalf("want 503 Queued, got %s X-Queued %q", r.status, r.h.Get("X-Queued"))
	}
	return q
}

// holdSlot takes the server's one slot with a GET of the big file that is
// never read (the server's write waits; IdleTimeout must exceed the test).
func holdSlot(t *testing.T, srv *Server) net.Conn {
	client, server := net.Pipe()
	go srv.Serve(server)
	fmt.Fprintf(client, "GET /get/30/big.bin HTTP/1.1\r\n\r\n")
	synctest.Wait()
	if !srv.Busy() {
		t.Fatal("the holder did not get the slot")
	}
	return client
}

// The queue's rules in virtual time: a request well before its
// Retry-After is early and, the third time in a row, loses its place; a
// place not claimed within its lifetime is dropped and the places behind
// move up; the queue and each address are bounded; without X-Queue a
// client gets the plain 503 Busy; QueueSize -1 turns queueing off.
func TestParqQueueRules(t *testing.T) {
	f := makeShared(t, t.TempDir(), 7, "notes.txt", content(2, 3000))
	big := filepath.Join(t.TempDir(), "big.bin")
	bf, _ := os.Create(big)
	_ = bf.Truncate(64 << 20)
	bf.Close()
	fi, _ := os.Stat(big)
	newLib := func() *fakeLibrary {
		return newFakeLibrary(f, share.File{Index: 30, Path: big, Name: "big.bin", Size: fi.Size(), ModTime: fi.ModTime()})
	}
	path := getPath(f)
	const parq = "X-Queue: 1.1\r\n"
	// Over net.Pipe every client has the same (empty) address: PerIP -1.
	newServer := func() *Server {
		return &Server{Library: newLib(), Slots: 1, PerIP: -1, IdleTimeout: time.Hour}
	}

	t.Run("early requests lose the place", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := newServer()
			defer srv.Close()
			defer holdSlot(t, srv).Close()
			c := newPipeClient(srv)
			defer c.conn.Close()
			q := queuedOf(t, c.get(t, path, parq))
			if q.Position != 1 || q.Lifetime != 90*time.Second {
				t.Fatalf("first answer %+v: want position 1, lifetime 30+60 s", q)
			}
			back := "X-Queued: " + q.FormatRequest() + "\r\n" + parq
			// Within the slack (10 s before Retry-After) is in time.
			time.Sleep(21 * time.Second)
			q2 := queuedOf(t, c.get(t, path, back))
			if q2.ID != q.ID || q2.Position != 1 {
				t.Fatalf("in time: %+v", q2)
			}
			for i := 1; i < queueMaxEarly; i++ {
				time.Sleep(time.Second)
				q3 := queuedOf(t, c.get(t, path, back))
				if q3.ID != q.ID || q3.ETA > 29*time.Second {
					t.Fatalf("early request %d: %+v (the Retry-After stays)", i, q3)
				}
			}
			r := c.get(t, path, back)
			if r.code != 503 || r.h.Has("X-Queued") || r.h.Get("Retry-After") == "" {
				t.Fatalf("early request %d: %s X-Queued %q", queueMaxEarly, r.status, r.h.Get("X-Queued"))
			}
			// A new request starts again at the end, with a new ID.
			c2 := newPipeClient(srv)
			defer c2.conn.Close()
			if q4 := queuedOf(t, c2.get(t, path, back)); q4.ID == q.ID || q4.Position != 1 {
				t.Fatalf("after losing the place: %+v", q4)
			}
		})
	})

	t.Run("unclaimed places expire", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := newServer()
			defer srv.Close()
			defer holdSlot(t, srv).Close()
			a, b := newPipeClient(srv), newPipeClient(srv)
			defer a.conn.Close()
			defer b.conn.Close()
			g := share.File{Index: 8, Path: f.Path, Name: "same.txt", Size: f.Size, ModTime: f.ModTime}
			srv.Library.(*fakeLibrary).add(g) // another file: the queue tells places apart by file
			qa := queuedOf(t, a.get(t, path, parq))
			qb := queuedOf(t, b.get(t, getPath(g), parq))
			if qa.Position != 1 || qb.Position != 2 || qb.Length != 2 {
				t.Fatalf("A %+v, B %+v", qa, qb)
			}
			// B comes back in time, again and again; A never does.
			for range 4 {
				time.Sleep(40 * time.Second)
				queuedOf(t, b.get(t, getPath(g), "X-Queued: "+qb.FormatRequest()+"\r\n"+parq))
			}
			qb2 := queuedOf(t, b.get(t, getPath(g), "X-Queued: "+qb.FormatRequest()+"\r\n"+parq))
			if qb2.ID != qb.ID || qb2.Position != 1 || qb2.Length != 1 {
				t.Fatalf("after A's place expired B has %+v, want position 1 of 1", qb2)
			}
		})
	})

	t.Run("bounds and plain 503", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := newServer()
			srv.QueueSize, srv.QueuePerIP = 3, 2
			defer srv.Close()
			defer holdSlot(t, srv).Close()
			lib := srv.Library.(*fakeLibrary)
			var codes []string
			for i := range 3 {
				// three files (told apart by URN; never served)
				g := share.File{Index: uint32(100 + i), Path: f.Path, Name: fmt.Sprintf("f%d.txt", i), Size: f.Size,
					ModTime: f.ModTime, SHA1: protocol.SHA1{byte(i + 1)}}
				lib.add(g)
				c := newPipeClient(srv)
				defer c.conn.Close()
				r := c.get(t, getPath(g), parq)
				codes = append(codes, r.status)
			}
			// Over the pipe all clients share one address: the third
			// file finds the address's two places taken.
			want := "[HTTP/1.1 503 Queued HTTP/1.1 503 Queued HTTP/1.1 503 Too Many Queued From Your Address]"
			if fmt.Sprint(codes) != want {
				t.Fatalf("got %v, want %v", codes, want)
			}
			c := newPipeClient(srv)
			defer c.conn.Close()
			if r := c.get(t, path, ""); r.status != "HTTP/1.1 503 Busy" || r.h.Get("Retry-After") != "60" || r.h.Has("X-Queued") {
				t.Fatalf("without X-Queue: %s Retry-After %q", r.status, r.h.Get("Retry-After"))
			}
			// Only the first queueKeepAlive places keep their connection.
			srvK := newServer()
			srvK.QueuePerIP = -1
			defer srvK.Close()
			defer holdSlot(t, srvK).Close()
			lib = srvK.Library.(*fakeLibrary)
			for i := range queueKeepAlive + 1 {
				g := share.File{Index: uint32(200 + i), Path: f.Path, Name: fmt.Sprintf("k%d.txt", i), Size: f.Size,
					ModTime: f.ModTime, SHA1: protocol.SHA1{byte(i + 1), 1}}
				lib.add(g)
				c := newPipeClient(srvK)
				defer c.conn.Close()
				r := c.get(t, getPath(g), parq)
				q := queuedOf(t, r)
				if closed := r.h.Get("Connection") == "close"; q.Position != i+1 || closed != (i >= queueKeepAlive) {
					t.Fatalf("place %d: Connection %q", q.Position, r.h.Get("Connection"))
				}
			}
			srv2 := newServer()
			srv2.QueueSize, srv2.QueuePerIP = 1, -1
			defer srv2.Close()
			defer holdSlot(t, srv2).Close()
			c1, c2 := newPipeClient(srv2), newPipeClient(srv2)
			defer c1.conn.Close()
			defer c2.conn.Close()
			queuedOf(t, c1.get(t, path, parq))
			if r := c2.get(t, "/get/30/big.bin", parq); r.status != "HTTP/1.1 503 Queue Full" {
				t.Fatalf("full queue: %s", r.status)
			}
			srv3 := newServer()
			srv3.QueueSize = -1
			defer srv3.Close()
			defer holdSlot(t, srv3).Close()
			c3 := newPipeClient(srv3)
			defer c3.conn.Close()
			if r := c3.get(t, path, parq); r.status != "HTTP/1.1 503 Busy" {
				t.Fatalf("QueueSize -1: %s", r.status)
			}
		})
	})
}

// A connection that got a slot keeps it for its next requests of the same
// file (a downloader fetching chunk after chunk), while others wait in the
// queue; when it closes, the head of the queue gets the slot. A request
// for another file competes again.
func TestParqSlotKeptBetweenChunks(t *testing.T) {
	f := makeShared(t, t.TempDir(), 7, "notes.txt", content(2, 3000))
	g := makeShared(t, t.TempDir(), 8, "other.txt", content(3, 3000))
	synctest.Test(t, func(t *testing.T) {
		srv := &Server{Library: newFakeLibrary(f, g), Slots: 1, PerIP: -1, IdleTimeout: time.Hour}
		defer srv.Close()
		a, b := newPipeClient(srv), newPipeClient(srv)
		defer a.conn.Close()
		defer b.conn.Close()
		if r := a.get(t, getPath(f), "Range: bytes=0-999\r\n"); r.code != 206 {
			t.Fatalf("A's first chunk: %s", r.status)
		}
		qb := queuedOf(t, b.get(t, getPath(f), "X-Queue: 1.1\r\n"))
		for _, rng := range []string{"1000-1999", "2000-2999"} {
			if r := a.get(t, getPath(f), "Range: bytes="+rng+"\r\n"); r.code != 206 {
				t.Fatalf("A's chunk %s while B waits: %s", rng, r.status)
			}
		}
		// Another file: A's slot goes back to the queue, whose head is B.
		if r := a.get(t, getPath(g), "X-Queue: 1.1\r\n"); r.status != "HTTP/1.1 503 Queued" {
			t.Fatalf("A asking for another file while B waits: %s", r.status)
		}
		time.Sleep(30 * time.Second)
		if r := b.get(t, getPath(f), "X-Queued: "+qb.FormatRequest()+"\r\nX-Queue: 1.1\r\n"); r.code != 200 {
			t.Fatalf("B at the head once the slot was free: %s", r.status)
		}
	})
}
