package testnet

import (
	"context"
	"crypto/sha1"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent"
	"gnutella/testnet/await"
)

// The soak test: a loopback two-tier testnet under honest and hostile load
// for a long time, reporting memory, goroutines, descriptors and search
// success as it goes. It is opt-in (not for CI):
//
//	GNUTELLA_SOAK=1h go test -run TestSoak -timeout 0 -v ./testnet/
//
// GNUTELLA_SOAK is the duration of the load; GNUTELLA_SOAK_EVERY the report
// interval (10s); GNUTELLA_SOAK_OUT the folder for soak.csv (default: a new
// folder under the system temporary folder, named in the log);
// GNUTELLA_SOAK_ATTACKS a comma-separated subset of the attacks to run
// (their names are in the report; "none" runs the honest load alone).
//
// Honest load: leaves search for files another leaf shares (each search
// must find the file by its SHA-1), and every fifth successful search
// downloads it and verifies the SHA-1 (each seeker downloads each file at
// most once). Hostile load (hostile_test.go), at
// bounded rates against the servents' 127.0.0.1 ports: garbage handshakes,
// idle and slow connections, connect+close floods, bad descriptors,
// duplicate-query floods, GGEP deflate bombs, QRP tables reset to 2^21
// slots and never finished, Pushes with foreign (127.0.0.x) callbacks,
// dripped and overlong HTTP requests, random walkers with a huge budget.
//
// At the end it asserts that honest searches succeeded at least 95% of the
// time, that goroutines and descriptors came back near where they started
// once every servent stopped, and that RSS grew by less than 2 GiB.
func TestSoak(t *testing.T) {
	env := os.Getenv("GNUTELLA_SOAK")
	if env == "" {
		t.Skip("set GNUTELLA_SOAK=1h to run the soak test")
	}
	dur, err := time.ParseDuration(env)
	if err != nil || dur <= 0 {
		t.Fatalf("GNUTELLA_SOAK=%q: want a duration such as 2m or 1h", env)
	}
	every := 10 * time.Second
	if v := os.Getenv("GNUTELLA_SOAK_EVERY"); v != "" {
		if every, err = time.ParseDuration(v); err != nil || every <= 0 {
			t.Fatalf("GNUTELLA_SOAK_EVERY=%q: want a duration", v)
		}
	}
	outDir := os.Getenv("GNUTELLA_SOAK_OUT")
	if outDir == "" {
		if outDir, err = os.MkdirTemp("", "gnutella-soak-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}

	base := sample()
	t.Logf("soak: %v of load, a report every %v, CSV in %s", dur, every, filepath.Join(outDir, "soak.csv"))
	t.Logf("before the network: rss=%.1f MiB heap=%.1f MiB goroutines=%d fds=%d", mib(base.rss), mib(base.heap), base.goroutines, base.fds)

	// --- the network ---------------------------------------------------
	const ups, leaves = 3, 12
	const n = ups + leaves
	type soakFile struct {
		keyword string
		sha1    protocol.SHA1
		holder  int
	}
	const perLeaf = 4
	var files []soakFile // perLeaf per leaf, each found nowhere else
	shareDirs := make([]string, n)
	dlDirs := make([]string, n)
	for i := ups; i < n; i++ {
		shareDirs[i] = t.TempDir()
		dlDirs[i] = t.TempDir()
		for k := 0; k < perLeaf; k++ {
			kw := fmt.Sprintf("soakfile%02dx%d", i, k)
			name := fmt.Sprintf("%s %s.bin", kw, contentWords[(i+k)%len(contentWords)])
			path := filepath.Join(shareDirs[i], name)
			if err := writeDemoFile(path, name, 20_000+i*1000+k*5000); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, soakFile{keyword: kw, sha1: sha1.Sum(data), holder: i})
		}
	}
	// A servent downloads a file once (its downloader keeps one entry per
	// file): each (seeker, file) pair is downloaded at most once, so in a
	// long soak downloads stop once every pair has been.
	var dlMu sync.Mutex
	downloaded := map[[2]int]bool{}
	netw, err := Start(ctxFor(t, 120*time.Second), Options{
		N: n, Transport: TCP, Seed: 7,
		Topology: TwoTier{Ultrapeers: ups, UltrapeerDegree: ups - 1, LeafUltrapeers: 2},
		Configure: func(i int, c *servent.NodeConfig) {
			if shareDirs[i] != "" {
				c.ShareDirs = []string{shareDirs[i]}
				c.DownloadDir = dlDirs[i]
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stopNet := func() {
		if !stopped {
			stopped = true
			if err := netw.Stop(); err != nil {
				t.Logf("stopping the network: %v", err)
			}
		}
	}
	t.Cleanup(stopNet)
	for i := ups; i < n; i++ {
		lib := netw.Nodes[i].Library
		if err := lib.Rescan(); err != nil {
			t.Fatal(err)
		}
		if err := lib.HashAll(ctxFor(t, 60*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	waitTables(t, netw)
	started := sample()
	t.Logf("network up: %d ultrapeers, %d leaves, %d links; rss=%.1f MiB goroutines=%d fds=%d",
		ups, leaves, len(netw.Edges), mib(started.rss), started.goroutines, started.fds)

	var targetsUP, targetsAll []netip.AddrPort
	for i, s := range netw.Servents {
		targetsAll = append(targetsAll, s.Addr())
		if i < ups {
			targetsUP = append(targetsUP, s.Addr())
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup

	// --- honest load ---------------------------------------------------
	var searches, found, downloads, verified atomic.Int64
	var ivSearches, ivFound atomic.Int64 // since the last report
	var failMu sync.Mutex
	var failures, dlFailures []string
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for k := 0; ; k++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				seeker := ups + rng.IntN(leaves)
				fi := rng.IntN(len(files))
				for files[fi].holder == seeker {
					fi = rng.IntN(len(files))
				}
				f := files[fi]
				holder := f.holder
				node := netw.Nodes[seeker]
				q := protocol.NewQuery(f.keyword, protocol.QueryFlagMark|protocol.QueryFlagGGEPH)
				s := node.Search(ctx, q, routing.Flood{TTL: 3}, 1, 10*time.Second)
				if ctx.Err() != nil {
					return // cut short by the end of the load: not counted
				}
				var hit *routing.Hit
				hits := s.Hits()
				for i := range hits {
					if hits[i].URN == f.sha1 {
						hit = &hits[i]
						break
					}
				}
				searches.Add(1)
				ivSearches.Add(1)
				if hit == nil {
					failMu.Lock()
					if len(failures) < 20 {
						failures = append(failures, fmt.Sprintf("%s leaf %d→%d: %d hits, none with its SHA-1",
							time.Now().Format("15:04:05"), seeker, holder, len(hits)))
					}
					failMu.Unlock()
					continue
				}
				found.Add(1)
				ivFound.Add(1)
				if k%5 != 0 {
					continue
				}
				dlMu.Lock()
				again := downloaded[[2]int{seeker, fi}]
				downloaded[[2]int{seeker, fi}] = true
				dlMu.Unlock()
				if again {
					continue
				}
				dl, err := node.Download(*hit, hits)
				if err != nil {
					downloads.Add(1)
					continue
				}
				wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
				err = dl.Wait(wctx)
				wcancel()
				if ctx.Err() != nil {
					return // cut short by the end of the load: not counted
				}
				downloads.Add(1)
				st := dl.Status()
				ok := false
				if err == nil && st.Path != "" {
					data, rerr := os.ReadFile(st.Path)
					ok = rerr == nil && protocol.SHA1(sha1.Sum(data)) == f.sha1
				}
				if ok {
					verified.Add(1)
					continue
				}
				failMu.Lock()
				if len(dlFailures) < 20 {
					dlFailures = append(dlFailures, fmt.Sprintf("%s leaf %d from %d (push=%v): %v; state %s, error %q",
						time.Now().Format("15:04:05"), seeker, holder, hit.Push, err, st.State, st.Error))
				}
				failMu.Unlock()
			}
		}()
	}

	// --- hostile load --------------------------------------------------
	sinkIP := "127.0.0.2" // a foreign callback address, still on loopback
	sk, err := newSink(sinkIP)
	if err != nil {
		sinkIP = "127.0.0.1"
		if sk, err = newSink(sinkIP); err != nil {
			t.Fatal(err)
		}
	}
	defer sk.Close()
	closedPort := netip.MustParseAddrPort("127.0.0.3:9") // discard port: nothing listens
	leafIDs := make([]protocol.GUID, 0, leaves)
	for i := ups; i < n; i++ {
		leafIDs = append(leafIDs, netw.Servents[i].ID())
	}
	pushTarget := func(rng *rand.Rand) protocol.GUID {
		if rng.IntN(4) == 0 {
			return protocol.NewGUID() // nobody
		}
		return leafIDs[rng.IntN(len(leafIDs))]
	}
	pushCallback := func(rng *rand.Rand) netip.AddrPort {
		if rng.IntN(3) == 0 {
			return closedPort
		}
		return sk.addr()
	}
	type spec struct {
		name    string
		fn      attack
		every   time.Duration
		conc    int64
		targets []netip.AddrPort
	}
	specs := []spec{
		{"garbage-handshake", garbageHandshake, 200 * time.Millisecond, 4, targetsAll},
		{"idle-connection", idleConnection(30 * time.Second), 250 * time.Millisecond, 40, targetsAll},
		{"slow-handshake", slowHandshake(500*time.Millisecond, 30*time.Second), time.Second, 10, targetsAll},
		{"connect-close", connectClose(20), 500 * time.Millisecond, 1, targetsAll},
		{"bad-descriptors", badDescriptors, time.Second, 2, targetsUP},
		{"dup-query-flood", dupQueryFlood(200), 2 * time.Second, 1, targetsUP},
		{"ggep-bomb", ggepBombs(50), time.Second, 1, targetsUP},
		{"qrp-pin", qrpPin(30 * time.Second), 2 * time.Second, 8, targetsUP},
		{"push-foreign", pushFlood(50, pushTarget, pushCallback), time.Second, 1, targetsUP},
		{"slow-http", slowHTTP(300*time.Millisecond, 30*time.Second), time.Second, 8, targetsAll},
		{"long-http-line", longHTTPLine, 500 * time.Millisecond, 2, targetsAll},
		{"long-walker", longWalker(65535), 15 * time.Second, 1, targetsUP},
	}
	if v := os.Getenv("GNUTELLA_SOAK_ATTACKS"); v != "" {
		keep := map[string]bool{}
		for _, name := range strings.Split(v, ",") {
			keep[strings.TrimSpace(name)] = true
		}
		var chosen []spec
		for _, sp := range specs {
			if keep[sp.name] {
				chosen = append(chosen, sp)
				delete(keep, sp.name)
			}
		}
		delete(keep, "none")
		if len(keep) > 0 {
			var names []string
			for _, sp := range specs {
				names = append(names, sp.name)
			}
			t.Fatalf("GNUTELLA_SOAK_ATTACKS: unknown %v; the attacks are %s (or none)", keep, strings.Join(names, ","))
		}
		specs = chosen
	}
	stats := make([]*attackStats, len(specs))
	for k, sp := range specs {
		st := &attackStats{name: sp.name}
		stats[k] = st
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(k), 1234))
			tick := time.NewTicker(sp.every)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if st.inFlight.Load() >= sp.conc {
					continue
				}
				st.inFlight.Add(1)
				target := sp.targets[rng.IntN(len(sp.targets))]
				arng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer st.inFlight.Add(-1)
					r, err := sp.fn(ctx, target, arng)
					if ctx.Err() != nil && err != nil {
						return // cut short by the end of the load
					}
					st.record(r, err)
				}()
			}
		}()
	}

	// --- reports -------------------------------------------------------
	csvFile, err := os.Create(filepath.Join(outDir, "soak.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer csvFile.Close()
	cw := csv.NewWriter(csvFile)
	_ = cw.Write([]string{"elapsed_s", "rss_mib", "heap_mib", "heap_sys_mib", "goroutines", "fds", "links", "msgs_per_s", "cpu_pct",
		"searches", "found", "interval_success_pct", "total_success_pct", "downloads", "verified", "hostile_tries", "push_callbacks"})
	t.Logf("%8s %8s %8s %6s %6s %6s %8s %5s %9s %7s %7s %9s %9s %10s",
		"elapsed", "rss MiB", "heap MiB", "gorout", "fds", "links", "msgs/s", "cpu%", "searches", "ok%", "ok% iv", "downloads", "hostile", "callbacks")
	begin := time.Now()
	var peakRSS int64
	var lastHandled int64
	for _, s := range netw.Servents {
		_, h := s.MessageBalance()
		lastHandled += h
	}
	lastAt := begin
	lastCPU := cpuTime()
	report := func() {
		m := sample()
		peakRSS = max(peakRSS, m.rss)
		links := 0
		var handled int64
		for _, s := range netw.Servents {
			links += len(s.Links())
			_, h := s.MessageBalance()
			handled += h
		}
		secs := time.Since(lastAt).Seconds()
		rate := float64(handled-lastHandled) / secs
		cpu := cpuTime()
		cpuPct := 100 * (cpu - lastCPU).Seconds() / secs
		lastHandled, lastAt, lastCPU = handled, time.Now(), cpu
		var tries int64
		for _, st := range stats {
			tries += st.tries.Load()
		}
		s, f := searches.Load(), found.Load()
		is, ifd := ivSearches.Swap(0), ivFound.Swap(0)
		el := time.Since(begin).Round(time.Second)
		t.Logf("%8v %8.1f %8.1f %6d %6d %6d %8.0f %5.0f %9d %7s %7s %4d/%-5d %9d %10d",
			el, mib(m.rss), mib(m.heap), m.goroutines, m.fds, links, rate, cpuPct, s, pct(f, s), pct(ifd, is),
			verified.Load(), downloads.Load(), tries, sk.conns.Load())
		_ = cw.Write([]string{strconv.Itoa(int(el.Seconds())), fmt.Sprintf("%.1f", mib(m.rss)), fmt.Sprintf("%.1f", mib(m.heap)),
			fmt.Sprintf("%.1f", mib(m.heapSys)), strconv.Itoa(m.goroutines), strconv.Itoa(m.fds), strconv.Itoa(links),
			fmt.Sprintf("%.0f", rate), fmt.Sprintf("%.0f", cpuPct),
			strconv.FormatInt(s, 10), strconv.FormatInt(f, 10), pct(ifd, is), pct(f, s),
			strconv.FormatInt(downloads.Load(), 10), strconv.FormatInt(verified.Load(), 10),
			strconv.FormatInt(tries, 10), strconv.FormatInt(sk.conns.Load(), 10)})
		cw.Flush()
	}
	tick := time.NewTicker(every)
reporting:
	for {
		select {
		case <-ctx.Done():
			break reporting
		case <-tick.C:
			report()
		}
	}
	tick.Stop()
	wg.Wait() // every honest and hostile goroutine has returned
	report()

	// With the load gone, the running servents must let go of what it
	// cost them: the goroutines and descriptors of hostile connections end
	// within their timeouts (HandshakeTimeout, ByeGrace: seconds).
	const slackRunG, slackRunFD = 20, 10
	calm := time.Now().Add(30 * time.Second)
	await.Until(t, "the running network back to its goroutines and descriptors before the load", func() bool {
		m := sample()
		return (m.goroutines <= started.goroutines+slackRunG && m.fds <= started.fds+slackRunFD) || time.Now().After(calm)
	})
	if m := sample(); m.goroutines > started.goroutines+slackRunG || m.fds > started.fds+slackRunFD {
		t.Errorf("30 s after the load stopped the servents still hold %d goroutines and %d descriptors, %d and %d before it",
			m.goroutines, m.fds, started.goroutines, started.fds)
	} else {
		t.Logf("30 s after the load at most: %d goroutines, %d descriptors (%d and %d before it)", m.goroutines, m.fds, started.goroutines, started.fds)
	}

	t.Logf("hostile load (closed-by-servent: the servent ended the connection; mean-held: how long it stayed open):")
	for _, st := range stats {
		t.Logf("  %s", st)
	}
	t.Logf("push callbacks provoked to %s: %d connections (%d sent GIV)", sk.addr(), sk.conns.Load(), sk.givs.Load())
	for k, st := range stats {
		// an attack with room for two attempts that made none is a broken harness
		if dur >= 2*specs[k].every && st.tries.Load() == 0 {
			t.Errorf("attack %s made no attempt in %v", st.name, dur)
		}
	}
	failMu.Lock()
	for _, f := range failures {
		t.Logf("  search failure: %s", f)
	}
	for _, f := range dlFailures {
		t.Logf("  download failure: %s", f)
	}
	failMu.Unlock()

	// --- the end: stop everything and look for leaks -----------------------
	stopNet()
	sk.Close()
	const slackG, slackFD = 10, 5
	settle := time.Now().Add(60 * time.Second)
	await.Until(t, "goroutines and descriptors back near the start", func() bool {
		m := sample()
		return (m.goroutines <= base.goroutines+slackG && m.fds <= base.fds+slackFD) || time.Now().After(settle)
	})
	end := sample()
	peakRSS = max(peakRSS, end.rss)
	runtime.GC() // what the heap still holds once every servent stopped
	live := sample()
	t.Logf("after stopping: rss=%.1f MiB (peak %.1f, start %.1f) heap=%.1f MiB (%.1f live after a GC) goroutines=%d (start %d) fds=%d (start %d)",
		mib(end.rss), mib(peakRSS), mib(base.rss), mib(end.heap), mib(live.heap), end.goroutines, base.goroutines, end.fds, base.fds)

	s, f := searches.Load(), found.Load()
	t.Logf("honest searches: %d of %d found their file (%s%%); downloads: %d of %d verified",
		f, s, pct(f, s), verified.Load(), downloads.Load())
	if s == 0 {
		t.Errorf("no honest search completed")
	} else if float64(f) < 0.95*float64(s) {
		t.Errorf("honest search success %d/%d = %s%%, want ≥ 95%%", f, s, pct(f, s))
	}
	if end.goroutines > base.goroutines+slackG {
		t.Errorf("%d goroutines after every servent stopped, %d before the network: a leak", end.goroutines, base.goroutines)
		buf := make([]byte, 1<<20)
		t.Logf("%s", buf[:runtime.Stack(buf, true)])
	}
	if end.fds > base.fds+slackFD {
		t.Errorf("%d open descriptors after every servent stopped, %d before the network: a leak", end.fds, base.fds)
	}
	if growth := peakRSS - base.rss; growth > 2<<30 {
		t.Errorf("RSS grew by %.1f MiB, want < 2 GiB", mib(growth))
	}
}

type soakSample struct {
	rss, heap, heapSys int64
	goroutines, fds    int
}

func sample() soakSample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return soakSample{rss: vmRSS(), heap: int64(ms.HeapAlloc), heapSys: int64(ms.HeapSys),
		goroutines: runtime.NumGoroutine(), fds: openFDs()}
}

// vmRSS is the process's resident set in bytes, from /proc/self/status
// (0 where there is no /proc).
func vmRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "123456 kB"
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// openFDs counts the process's open descriptors (-1 where there is no /proc).
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func pct(a, b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", 100*float64(a)/float64(b))
}
