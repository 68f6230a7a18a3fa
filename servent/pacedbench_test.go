package servent

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
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
// BenchmarkRoutePacedServent it runs a servent on 127.0.0.1, configured as
// benchRoutePaced's, writes its address on stdout, serves until stdin
// closes, stops and reports true; elsewhere it does nothing and reports false.
func runBenchServent() bool {
	if os.Getenv(benchServentEnv) == "" {
		return false
	}
	c := DefaultConfig()
	c.ListenAddr = "127.0.0.1:0"
	c.SendQueueBytes = 1 << 20
	s, err := New(c)
	if err == nil {
		err = s.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(s.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
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
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), benchServentEnv+"=1")
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
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("servent process: %v", err)
	}
	addr, err := netip.ParseAddrPort(strings.TrimSpace(line))
	if err != nil {
		b.Fatalf("servent process said %q: %v", line, err)
	}
	return cmd.Process.Pid, addr
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
