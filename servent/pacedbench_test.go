package servent

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"gnutella/protocol"
)

// benchServentEnv, set in the environment of the test binary, makes it run
// a servent for BenchmarkRoutePacedServent instead of the tests.
const benchServentEnv = "GNUTELLA_BENCH_SERVENT"

// runBenchServent is called by TestMain. In a child started by
// startBenchServent it runs a servent on 127.0.0.1, configured as
// benchRoutePaced's (or, when the variable says "capacity",
// BenchmarkUltrapeerCapacity's), writes its address on stdout, serves until
// stdin closes, stops and reports true; elsewhere it does nothing and
// reports false. A "status" line on stdin is answered on stdout
// (capacityStatus).
func runBenchServent() bool {
	kind := os.Getenv(benchServentEnv)
	if kind == "" {
		return false
	}
	c := DefaultConfig()
	c.ListenAddr = "127.0.0.1:0"
	c.SendQueueBytes = 1 << 20
	if kind == "capacity" {
		c = capacityConfig()
	}
	s, err := New(c)
	if err == nil {
		err = s.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(s.Addr())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "status" {
			fmt.Println(capacityStatus(s))
		}
	}
	s.cfg.ByeGrace = 100 * time.Millisecond // the peers do not read
	_ = s.Stop()
	return true
}

// BenchmarkRoutePacedServent is BenchmarkRoutePaced with the servent alone
// in a child process (this test binary again, see runBenchServent): it
// reports the servent's CPU time per query (user and system, from
// /proc/PID/stat), and the raw peers' separately. The counter ticks every
// 10 ms: run a few seconds (-benchtime 5s) for a figure to 1-2 %.
func BenchmarkRoutePacedServent(b *testing.B) {
	for _, rate := range []int{2000, 4000, 8000} {
		b.Run(fmt.Sprintf("qps=%d", rate), func(b *testing.B) { benchRoutePacedServent(b, rate) })
	}
}

func benchRoutePacedServent(b *testing.B, rate int) {
	const outs = 4
	pid, addr := startBenchServent(b)
	in, err := dialBenchPeer(addr, false)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	// Each peer's first message from the servent (its handshake ping) says
	// the servent has added the link: no query can miss it.
	up := make(chan struct{}, 1+outs)
	go func() {
		var hdr [protocol.HeaderLen]byte
		if _, err := io.ReadFull(in, hdr[:]); err == nil {
			up <- struct{}{}
		}
		_, _ = io.Copy(io.Discard, in)
	}()
	got := make(chan int, outs)
	for range outs {
		out, err := dialBenchPeer(addr, false)
		if err != nil {
			b.Fatal(err)
		}
		defer out.Close()
		go func() {
			r := protocol.NewReader(bufio.NewReaderSize(out, 64<<10), protocol.DefaultLimits())
			n, first := 0, true
			for n < b.N {
				h, _, err := r.ReadRaw()
				if err != nil {
					break
				}
				if first {
					up <- struct{}{}
					first = false
				}
				if h.Type == protocol.TypeQuery {
					n++
				}
			}
			got <- n
		}()
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for range 1 + outs {
		select {
		case <-up:
		case <-timeout.C:
			b.Fatal("the servent did not greet every peer")
		}
	}
	cpu0, own0 := procCPU(b, pid), processCPU(b)
	b.ResetTimer()
	sendPaced(b, in, rate, outs, got)
	b.StopTimer()
	perQuery := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(b.N) }
	b.ReportMetric(perQuery(procCPU(b, pid)-cpu0), "cpu-µs/query")
	b.ReportMetric(perQuery(processCPU(b)-own0), "peers-cpu-µs/query")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "q/s")
}

// startBenchServent starts the servent's process and returns its pid and
// address; the process ends when the benchmark does.
func startBenchServent(b *testing.B) (int, netip.AddrPort) {
	pid, addr, _, _ := startBenchServentKind(b, "route")
	return pid, addr
}

// startBenchServentKind is startBenchServent for a kind of servent (see
// runBenchServent); it also returns the child's stdin and stdout, for
// status lines.
func startBenchServentKind(b *testing.B, kind string) (int, netip.AddrPort, io.Writer, *bufio.Reader) {
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), benchServentEnv+"="+kind)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close() // the servent stops and exits
		_ = cmd.Wait()
	})
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil {
		b.Fatalf("servent process: %v", err)
	}
	addr, err := netip.ParseAddrPort(strings.TrimSpace(line))
	if err != nil {
		b.Fatalf("servent process said %q: %v", line, err)
	}
	return cmd.Process.Pid, addr, stdin, out
}

// procCPU is the CPU time (user and system) process pid has used, from
// /proc/PID/stat: fields 14 and 15, in clock ticks of 1/100 s (Linux's
// USER_HZ).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// the command name, field 2, is in parentheses and may hold spaces
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	if len(f) < 13 {
		b.Fatalf("/proc/%d/stat: %q", pid, raw)
	}
	var ticks int64
	for _, s := range f[11:13] { // utime, stime: fields 14 and 15 of the whole line
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// capacityConfig is the servent of BenchmarkUltrapeerCapacity: an
// ultrapeer with room for capacityLeaves leaves and capacityUps ultrapeer
// links, all from 127.0.0.1, whose peers never answer its pings.
func capacityConfig() Config {
	c := DefaultConfig()
	c.ListenAddr = "127.0.0.1:0"
	c.Mode = ModeUltrapeer
	c.WantLinks = 0
	c.MaxLeaves = capacityLeaves
	c.MaxLinks = capacityUps
	c.IdleTimeout = time.Hour
	c.AlivePingInterval = time.Hour
	c.MaxPending, c.MaxPendingPerAddr = 1024, 1024
	return c
}

// The figure of issue 14: 5,000 leaves and 64 ultrapeer links.
const capacityLeaves, capacityUps = 5000, 64

// capacityStatus is what the servent of BenchmarkUltrapeerCapacity says
// of itself after collecting its garbage: its leaf and ultrapeer links,
// those holding their peer's QRP table, the parked ones, its Go heap and
// stacks, and its goroutines.
func capacityStatus(s *Servent) string {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	var leaves, ups, tables, parked int
	for _, l := range s.Links() {
		if l.Kind == LinkLeaf {
			leaves++
		} else {
			ups++
		}
		if l.PeerTable() != nil {
			tables++
		}
		if l.parked() {
			parked++
		}
	}
	return fmt.Sprintf("%d %d %d %d %d %d", leaves, ups, tables, parked, m.HeapInuse+m.StackInuse, runtime.NumGoroutine())
}
