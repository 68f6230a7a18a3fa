//go:build linux

package servent

import (
	"compress/zlib"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gnutella/testnet/await"
)

// BenchmarkIdleLinkMemory measures the servent's memory per idle
// ultrapeer link over 1,000 loopback links, with and without deflate (see
// linkMemory; BenchmarkLeafLinkMemory has the leaves).
//
//	go test -run '^$' -bench IdleLinkMemory -benchtime 1x ./servent/
func BenchmarkIdleLinkMemory(b *testing.B) {
	for _, deflate := range []bool{false, true} {
		b.Run(fmt.Sprintf("deflate=%v", deflate), func(b *testing.B) {
			for b.Loop() {
				linkMemory(b, 1000, func(int) benchPeer { return benchPeer{deflate: deflate} })
			}
		})
	}
}

// BenchmarkLeafLinkMemory is what one leaf costs an ultrapeer, measured the
// way real leaves connect (issue 14): n leaves dial over loopback TCP, each
// runs the 0.6 handshake (with deflate both ways, or none), sends a QRP
// RESET and PATCH of a 2^16-slot table with about 150 slots present (a
// leaf sharing 50 words: 50 five-letter words, three prefixes each), a
// Ping, and goes idle. It reports, per link, the growth of the Go heap and
// goroutine stacks (heap-B/link: HeapInuse + StackInuse, after two GCs), of
// the stacks alone (stack-B/link), and of the process's resident memory
// (rss-B/link: VmRSS, after debug.FreeOSMemory), and the process's RSS at
// the end (rss-MiB). The RSS can be less than the heap: a fresh allocation's
// pages are only resident once written, and an idle link's inflater has
// written a few hundred bytes of its 32 KiB window. The leaves' own sockets are in the same process
// and counted too (a net.TCPConn, a few hundred bytes); their unread bytes
// stay in the kernel.
//
// 5,000 links take 10,000 file descriptors: the soft RLIMIT_NOFILE is
// raised to the hard one, and the sizes that do not fit are skipped.
//
//	go test -run '^$' -bench LeafLinkMemory -benchtime 1x ./servent/
func BenchmarkLeafLinkMemory(b *testing.B) {
	fds := raiseFileLimit(b)
	for _, n := range []int{1000, 5000} {
		for _, deflate := range []bool{false, true} {
			b.Run(fmt.Sprintf("links=%d/deflate=%v", n, deflate), func(b *testing.B) {
				if need := uint64(2*n + 256); fds < need {
					b.Skipf("RLIMIT_NOFILE %d, %d links need about %d", fds, n, need)
				}
				rng := rand.New(rand.NewPCG(uint64(n), 14))
				var zw *zlib.Writer
				if deflate {
					zw = zlib.NewWriter(io.Discard)
				}
				for b.Loop() {
					linkMemory(b, n, func(int) benchPeer {
						return benchPeer{deflate: deflate, leaf: true, msgs: leafTableMessages(rng), zw: zw}
					})
				}
			})
		}
	}
}

// leafTableMessages is the RESET and PATCH of a leafTable, as descriptors.
func leafTableMessages(rng *rand.Rand) [][]byte {
	return descriptors(leafTable(rng).Messages(qrpInfinity, qrpChunk))
}

// linkMemory starts an ultrapeer, links n peers to it by dialBench (peer(i)
// says how the i-th connects), waits until each link has handled all its
// peer sent (and holds its QRP table, when it sent one), and reports the
// memory per link (see BenchmarkLeafLinkMemory).
func linkMemory(b *testing.B, n int, peer func(i int) benchPeer) {
	c := DefaultConfig()
	c.ListenAddr = "127.0.0.1:0"
	c.WantLinks = 0
	c.MaxLinks = n + 16
	c.MaxLeaves = n + 16
	c.Deflate = true
	c.PongCaching = true
	c.IdleTimeout = time.Hour // the peers never answer
	// every peer dials from 127.0.0.1, the next before the servent may have
	// finished with the last: the admission caps are not what this measures
	c.MaxPending, c.MaxPendingPerAddr = 1024, 1024
	s, err := New(c)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	heap0, stack0, rss0 := memNow(b)
	conns := make([]net.Conn, 0, n)
	msgs := -1 // descriptors each peer sent, the same for all
	for i := range n {
		p := peer(i)
		if msgs >= 0 && len(p.msgs) != msgs {
			b.Fatalf("peer %d sends %d descriptors, the others %d", i, len(p.msgs), msgs)
		}
		msgs = len(p.msgs)
		conn, err := dialBench(s.Addr(), p)
		if err != nil {
			b.Fatalf("peer %d: %v", i, err)
		}
		conns = append(conns, conn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	if err := s.WaitLinks(ctx, n); err != nil {
		b.Fatal(err)
	}
	cancel()
	await.Until(b, "every link to handle what its peer sent and go idle", func() bool {
		for _, l := range s.Links() {
			st := l.Stats()
			if st.RxMessages < uint64(msgs+1) || st.TxMessages < 2 || (msgs > 0 && l.PeerTable() == nil) {
				return false
			}
		}
		return true
	})
	if pollerSupported && c.ParkAfter > 0 {
		await.Until(b, "every plain link to park its reader", func() bool {
			for _, l := range s.Links() {
				if l.parkable() && !l.parked() {
					return false
				}
			}
			return true
		})
	}
	heap1, stack1, rss1 := memNow(b)
	writeHeapProfile(b, n)
	b.ReportMetric(float64(heap1-heap0)/float64(n), "heap-B/link")
	b.ReportMetric(float64(stack1-stack0)/float64(n), "stack-B/link")
	b.ReportMetric(float64(rss1-rss0)/float64(n), "rss-B/link")
	b.ReportMetric(float64(rss1)/(1<<20), "rss-MiB")
	if l := s.Links()[0]; l.Kind == LinkLeaf {
		b.ReportMetric(float64(l.PeerTable().Count()), "qrp-slots")
	}
	for _, c := range conns {
		go io.Copy(io.Discard, c) // take the Byes, so that Stop does not wait
	}
	s.cfg.ByeGrace = 100 * time.Millisecond
	_ = s.Stop()
	for _, c := range conns {
		c.Close()
	}
}

// memNow is the Go heap and goroutine stacks in use, and the process's
// resident memory, once everything unreachable, pooled buffers included
// (sync.Pool survives one GC, not two), is collected and given back to the
// system.
func memNow(b *testing.B) (heap, stack, rss int64) {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse), int64(m.StackInuse), int64(vmRSS(b)) << 10
}

// writeHeapProfile writes the heap profile of the idle links to the file
// $GNUTELLA_BENCH_HEAPPROFILE names, when set, with the link count in its
// name (-memprofile writes its profile after the servent has stopped). Run
// with -memprofilerate 1 to have every allocation in it:
//
//	GNUTELLA_BENCH_HEAPPROFILE=/tmp/leaf.prof go test -run '^$' \
//	    -bench 'LeafLinkMemory/links=1000/deflate=false' -benchtime 1x -memprofilerate 1 ./servent/
//	go tool pprof -sample_index=inuse_space -top /tmp/leaf.prof.1000
func writeHeapProfile(b *testing.B, n int) {
	name := os.Getenv("GNUTELLA_BENCH_HEAPPROFILE")
	if name == "" {
		return
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", name, n))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// raiseFileLimit raises the soft limit on open files to the hard one and
// returns it.
func raiseFileLimit(b *testing.B) uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		b.Fatal(err)
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			b.Logf("RLIMIT_NOFILE stays at %d: %v", rl.Cur, err)
		}
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	return rl.Cur
}

// BenchmarkUltrapeerCapacity holds 5,000 leaves and 64 ultrapeer links on
// one ultrapeer (issue 14), the servent alone in a child process (this
// test binary again, see runBenchServent) so that its resident memory is
// its own. Every peer connects as BenchmarkLeafLinkMemory's do (0.6
// handshake, deflate both ways or none, a QRP RESET and PATCH of a
// 2^16-slot table, a Ping) and then stays idle; the ultrapeers announce
// X-Ultrapeer-Query-Routing, as gtk-gnutella's do, so their tables are
// kept too. Once the servent holds
// every link, every table, and every reader parked, it reports its
// resident memory (rss-MiB: VmRSS after a GC that gives memory back), its
// peak (peak-rss-MiB: VmHWM), its Go heap and stacks (heap-MiB), the
// growth of its RSS per link, and its goroutines.
//
//	go test -run '^$' -bench UltrapeerCapacity -benchtime 1x ./servent/
func BenchmarkUltrapeerCapacity(b *testing.B) {
	const n = capacityLeaves + capacityUps
	if fds := raiseFileLimit(b); fds < n+256 {
		b.Skipf("RLIMIT_NOFILE %d, %d links need about %d in each process", fds, n, n+256)
	}
	for _, deflate := range []bool{false, true} {
		b.Run(fmt.Sprintf("deflate=%v", deflate), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(n, 14))
			var zw *zlib.Writer
			if deflate {
				zw = zlib.NewWriter(io.Discard)
			}
			for b.Loop() {
				ultrapeerCapacity(b, func(leaf bool) benchPeer {
					return benchPeer{deflate: deflate, leaf: leaf, upQRP: !leaf, msgs: leafTableMessages(rng), zw: zw}
				})
			}
		})
	}
}

// capacityState is a status line of the capacity servent (capacityStatus).
type capacityState struct {
	leaves, ups, tables, parked int
	heap                        int64
	goroutines                  int
}

func ultrapeerCapacity(b *testing.B, peer func(leaf bool) benchPeer) {
	pid, addr, in, out := startBenchServentKind(b, "capacity")
	status := func() capacityState {
		b.Helper()
		if _, err := io.WriteString(in, "status\n"); err != nil {
			b.Fatal(err)
		}
		line, err := out.ReadString('\n')
		if err != nil {
			b.Fatalf("servent process: %v", err)
		}
		var st capacityState
		if _, err := fmt.Sscan(line, &st.leaves, &st.ups, &st.tables, &st.parked, &st.heap, &st.goroutines); err != nil {
			b.Fatalf("servent process said %q: %v", line, err)
		}
		return st
	}
	status()
	rss0, _ := procMemory(b, pid)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range capacityLeaves + capacityUps {
		conn, err := dialBench(addr, peer(i >= capacityUps))
		if err != nil {
			b.Fatalf("peer %d: %v", i, err)
		}
		conns = append(conns, conn)
	}
	var st capacityState
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st = status()
		if st.leaves == capacityLeaves && st.ups == capacityUps && st.tables == len(conns) && st.parked == len(conns) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("after 3 minutes the servent holds %+v, want %d leaves and %d ultrapeers, each with its table, parked",
				st, capacityLeaves, capacityUps)
		}
		time.Sleep(500 * time.Millisecond)
	}
	rss, peak := procMemory(b, pid)
	b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(st.heap)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(rss-rss0)/float64(len(conns)), "rss-B/link")
	b.ReportMetric(float64(st.goroutines), "goroutines")
}

// procMemory is process pid's resident memory and its peak (VmRSS and
// VmHWM of /proc/PID/status), in bytes.
func procMemory(b *testing.B, pid int) (rss, peak int64) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		for name, v := range map[string]*int64{"VmRSS:": &rss, "VmHWM:": &peak} {
			if f, ok := strings.CutPrefix(line, name); ok {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(f), " kB"), 10, 64)
				if err != nil {
					b.Fatalf("%s %q: %v", name, f, err)
				}
				*v = kb << 10
			}
		}
	}
	return rss, peak
}
