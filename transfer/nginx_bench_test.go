//go:build linux

package transfer

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/share"
)

// BenchmarkUploadVsNginx serves one file by our upload server, the way a
// downloader asks for it (GET /uri-res/N2R?urn:sha1:..., with the mesh on
// as in a servent), and by nginx with sendfile on, both on 127.0.0.1, and
// fetches it from each in turn with one client: curl when it is installed,
// else a Go client reading with a 256 KiB buffer. Without nginx the other
// server is Go's http.FileServer, and the log says so. Each iteration
// fetches the file once from each server, the first of the two
// alternating. It reports the throughput of each, their ratio (ours over
// theirs; aim >= 0.95) over all the bytes and as the median of the
// iterations' back-to-back pairs, and each server's CPU time per GiB sent, read from
// /proc/<pid>/task/*/schedstat (for ours the whole test process, which
// does nothing else while curl runs).
//
// GNUTELLA_UPLOAD_MB sets the file size in MiB (default 256):
//
//	GNUTELLA_UPLOAD_MB=1024 go test -run '^$' -bench UploadVsNginx -benchtime 5x ./transfer/
func BenchmarkUploadVsNginx(b *testing.B) {
	size := int64(256) << 20
	if v := os.Getenv("GNUTELLA_UPLOAD_MB"); v != "" {
		mb, err := strconv.Atoi(v)
		if err != nil || mb <= 0 {
			b.Fatalf("GNUTELLA_UPLOAD_MB=%q: want a positive number of MiB", v)
		}
		size = int64(mb) << 20
	}
	dir := b.TempDir()
	f := writeRandomFile(b, filepath.Join(dir, "big.bin"), size)

	srv := &Server{Library: newFakeLibrary(f), UserAgent: "gnutella/bench",
		Mesh: NewMesh(MeshConfig{AddrPolicy: &lanPolicy})}
	ourAddr, stop := serveRaw(b, srv)
	defer stop()
	ours := benchServer{name: "gnutella", url: "http://" + ourAddr + "/uri-res/N2R?" + f.SHA1.String(), pid: os.Getpid()}

	other, stopOther := startNginx(b, dir)
	defer stopOther()
	other.url += "/big.bin"

	fetch := curlFetch
	client := "curl"
	if _, err := exec.LookPath("curl"); err != nil {
		fetch, client = goFetch, "Go client"
	}
	var took, cpu [2]time.Duration
	pairs := make([]float64, 0, b.N) // ours over theirs, per iteration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var pair [2]time.Duration
		for k := range 2 {
			which := (i + k) % 2 // alternate which goes first
			s := &ours
			if which == 1 {
				s = &other
			}
			c0 := s.cpu(b)
			d, err := fetch(s.url, size)
			if err != nil {
				b.Fatalf("%s: %v", s.name, err)
			}
			took[which] += d
			pair[which] = d
			cpu[which] += s.cpu(b) - c0
		}
		pairs = append(pairs, pair[1].Seconds()/pair[0].Seconds())
	}
	b.StopTimer()
	mb := float64(size) * float64(b.N) / 1e6
	gib := float64(size) * float64(b.N) / (1 << 30)
	ourRate, otherRate := mb/took[0].Seconds(), mb/took[1].Seconds()
	b.ReportMetric(ourRate, "gnutella-MB/s")
	b.ReportMetric(otherRate, other.name+"-MB/s")
	b.ReportMetric(ourRate/otherRate, "ratio")
	// The median of the back-to-back pairs: a burst of load from
	// elsewhere spoils one pair, not the figure.
	slices.Sort(pairs)
	b.ReportMetric((pairs[(len(pairs)-1)/2]+pairs[len(pairs)/2])/2, "median-ratio")
	b.ReportMetric(cpu[0].Seconds()/gib, "gnutella-cpu-s/GiB")
	b.ReportMetric(cpu[1].Seconds()/gib, other.name+"-cpu-s/GiB")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d MiB file, %d fetch(es) from each of gnutella and %s, client %s", size>>20, b.N, other.name, client)
}

// benchServer is one of the two servers compared: where to fetch the file
// and which process sends it.
type benchServer struct {
	name string
	url  string // the file's URL
	pid  int    // whose CPU time counts: ours, or nginx's master (its workers count)
}

// cpu returns the CPU time used so far by the server's process, for nginx
// by its workers.
func (s *benchServer) cpu(b *testing.B) time.Duration {
	if s.name == "nginx" {
		kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", s.pid, s.pid))
		if err != nil {
			b.Fatal(err)
		}
		var sum time.Duration
		for _, kid := range strings.Fields(string(kids)) {
			pid, _ := strconv.Atoi(kid)
			sum += processCPU(b, pid)
		}
		return sum
	}
	return processCPU(b, s.pid)
}

// processCPU sums the nanoseconds on CPU of every thread of pid, the first
// field of /proc/<pid>/task/<tid>/schedstat (finer than the clock ticks of
// /proc/<pid>/stat).
func processCPU(b *testing.B, pid int) time.Duration {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		b.Fatal(err)
	}
	var sum time.Duration
	for _, t := range tasks {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread has just exited
		}
		first, _, _ := strings.Cut(string(st), " ")
		ns, _ := strconv.ParseInt(first, 10, 64)
		sum += time.Duration(ns)
	}
	return sum
}

// writeRandomFile writes size pseudo-random bytes to path (no two MiB
// alike) and returns it as a shared file with its SHA-1.
func writeRandomFile(b *testing.B, path string, size int64) share.File {
	b.Helper()
	out, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	h := sha1.New()
	w := io.MultiWriter(out, h)
	block := make([]byte, 1<<20)
	_, _ = rand.Read(block)
	for left := size; left > 0 && err == nil; left -= int64(len(block)) {
		block[0], block[1], block[2] = byte(left>>20), byte(left>>28), byte(left>>36)
		_, err = w.Write(block[:min(left, int64(len(block)))])
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	var sum protocol.SHA1
	copy(sum[:], h.Sum(nil))
	return share.File{Index: 1, Path: path, Name: filepath.Base(path), Size: fi.Size(), ModTime: fi.ModTime(), SHA1: sum}
}

// nginxConf is the whole configuration of the nginx we start: one worker,
// sendfile on, no logs, everything it writes kept in its temporary
// directory. %[1]s is the user line, %[2]s the directory, %[3]s the
// address, %[4]s the root served.
const nginxConf = `%[1]s
worker_processes 1;
master_process on;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 64; }
http {
	access_log off;
	sendfile on;
	client_body_temp_path %[2]s/body;
	proxy_temp_path %[2]s/proxy;
	fastcgi_temp_path %[2]s/fastcgi;
	uwsgi_temp_path %[2]s/uwsgi;
	scgi_temp_path %[2]s/scgi;
	default_type application/octet-stream;
	server {
		listen %[3]s;
		root %[4]s;
	}
}
`

// startNginx runs nginx on 127.0.0.1 serving root, or Go's http.FileServer
// when nginx is not installed. The returned server's url is its root,
// without the trailing slash.
func startNginx(b *testing.B, root string) (benchServer, func()) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
				break
			}
		}
	}
	if bin == "" {
		b.Log("nginx is not installed: comparing with Go's http.FileServer instead")
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		hs := &http.Server{Handler: http.FileServer(http.Dir(root))}
		go hs.Serve(ln)
		return benchServer{name: "fileserver", url: "http://" + ln.Addr().String(), pid: os.Getpid()}, func() { hs.Close() }
	}
	dir := b.TempDir()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // the worker must read the test's 0700 directory
	}
	// A free port: taken, released, and given to nginx (another process
	// taking it meanwhile makes nginx fail to start, reported below).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, user, dir, addr, root), 0o600); err != nil {
		b.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT) // graceful: the workers go too
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			b.Fatalf("nginx exited: %v\n%s%s", err, stderr.Bytes(), log)
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Since(start) > 10*time.Second {
			stop()
			b.Fatalf("nginx does not listen on %s: %v", addr, err)
		}
	}
	return benchServer{name: "nginx", url: "http://" + addr, pid: cmd.Process.Pid}, stop
}

// curlFetch downloads url with curl into /dev/null and returns curl's own
// time for the transfer (its start-up not counted).
func curlFetch(url string, size int64) (time.Duration, error) {
	out, err := exec.Command("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", url).Output()
	if err != nil {
		return 0, fmt.Errorf("curl: %w", err)
	}
	var code int
	var got int64
	var secs float64
	if _, err := fmt.Sscan(string(out), &code, &got, &secs); err != nil {
		return 0, fmt.Errorf("curl wrote %q: %w", out, err)
	}
	if code != 200 || got != size {
		return 0, fmt.Errorf("curl: status %d, %d bytes of %d", code, got, size)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// goFetch downloads url with one GET over a new connection, reading the
// body into a 256 KiB buffer.
func goFetch(url string, size int64) (time.Duration, error) {
	rest, ok := strings.CutPrefix(url, "http://")
	addr, target, _ := strings.Cut(rest, "/")
	if !ok {
		return 0, errors.New("not an http URL: " + url)
	}
	t0 := time.Now()
	n, err := fetchAll(addr, "/"+target, make([]byte, 256<<10))
	if err == nil && n != size {
		err = fmt.Errorf("%d bytes of %d", n, size)
	}
	return time.Since(t0), err
}
