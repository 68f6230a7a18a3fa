package servent

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gnutella/protocol"
)

// fdChildEnv marks the test binary re-executed as the servent of
// TestFileLimitIdleFlood, in a process of its own whose descriptor limit
// can be lowered without touching the tests'.
const fdChildEnv = "GNUTELLA_FD_CHILD"

// TestFDChildServent is the servent side of TestFileLimitIdleFlood: with
// RLIMIT_NOFILE at 1,024 it serves until its stdin closes, then prints its
// admission counters.
func TestFDChildServent(t *testing.T) {
	if os.Getenv(fdChildEnv) == "" {
		t.Skip("run by TestFileLimitIdleFlood in a child process")
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 1024, Max: 1024}); err != nil {
		t.Fatal(err)
	}
	c := testConfig()
	c.HandshakeTimeout = time.Minute       // idle connections are held as long as the tester saw
	if os.Getenv(fdChildEnv) == "budget" { // no caps: only the descriptor budget stands
		c.MaxPending, c.MaxPendingPerAddr = 1<<20, 1<<20
	}
	s := startServent(t, c)
	fmt.Printf("LISTEN %s\n", s.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	fmt.Printf("ADMISSION %+v\n", s.Admission())
}

// 2,000 idle connections from 40 addresses against a servent whose
// process may open 1,024 descriptors: a legitimate peer from another
// address still completes its handshake and gets a Pong, and the servent
// never runs out of descriptors. How long the Pong took is logged. With
// the default caps they hold; with caps out of the way ("budget") the
// descriptor budget alone does.
func TestFileLimitIdleFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 connections")
	}
	for _, mode := range []string{"caps", "budget"} {
		t.Run(mode, func(t *testing.T) { idleFlood(t, mode) })
	}
}

func idleFlood(t *testing.T, mode string) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestFDChildServent$", "-test.count=1")
	cmd.Env = append(os.Environ(), fdChildEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	out := bufio.NewScanner(stdout)
	var addr string
	for out.Scan() {
		if a, ok := strings.CutPrefix(out.Text(), "LISTEN "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatal("the child servent did not start")
	}
	dial := func(ip string) net.Conn {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		conn, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	floodStart := time.Now()
	for i := range 2000 {
		dial(fmt.Sprintf("127.0.0.%d", 10+i%40))
	}
	flood := time.Since(floodStart)
	start := time.Now()
	conn := dial("127.0.0.200")
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	p := &rawPeer{t: t, conn: conn, br: bufio.NewReader(conn), w: conn}
	p.handshake(peerHeaders(protocol.NewGUID()))
	p.sync()
	t.Logf("2,000 idle connections from 40 addresses dialled in %v; the legitimate peer's handshake and Pong took %v",
		flood, time.Since(start))
	stdin.Close()
	for out.Scan() {
		if st, ok := strings.CutPrefix(out.Text(), "ADMISSION "); ok {
			t.Logf("child servent's admission counters: %s", st)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("child servent: %v", err)
	}
}
