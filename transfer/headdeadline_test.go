package transfer

import (
	"bufio"
	"fmt"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// A request head is read under one absolute deadline: a client dripping
// its request line and header lines, a piece every few seconds, is cut IdleTimeout after the head
// began, not IdleTimeout after its last line. Both the first request
// (Serve) and a later one on a kept-alive connection are checked, in
// virtual time (testing/synctest).
func TestRequestHeadDeadlineIsAbsolute(t *testing.T) {
	const idle, drip = 60 * time.Second, 10 * time.Second
	for _, keptAlive := range []bool{false, true} {
		t.Run(fmt.Sprintf("kept-alive=%v", keptAlive), func(t *testing.T) {
			f := makeShared(t, t.TempDir(), 7, "notes.txt", content(2, 3000))
			synctest.Test(t, func(t *testing.T) {
				srv := &Server{Library: newFakeLibrary(f), IdleTimeout: idle}
				client, server := net.Pipe()
				defer client.Close()
				go srv.Serve(server)
				br := bufio.NewReader(client)
				if keptAlive {
					fmt.Fprintf(client, "HEAD %s HTTP/1.1\r\n\r\n", getPath(f))
					if r := readResponse(t, br, true); r.code != 200 {
						t.Fatalf("HEAD answered %d", r.code)
					}
				}
				go func() { _, _ = br.ReadByte() }() // drain whatever comes
				start := time.Now()
				// The request line itself comes in pieces, then header
				// lines: a deadline restarted after the request line (or
				// per line) would let this run far past idle.
				var err error
				pieces := []string{"GET ", getPath(f), " HTTP/1.1\r\n"}
				for i := 0; err == nil; i++ {
					if i < len(pieces) {
						_, err = fmt.Fprint(client, pieces[i])
					} else {
						_, err = fmt.Fprintf(client, "X-Drip-%d: 1\r\n", i)
					}
					if err == nil {
						time.Sleep(drip)
					}
				}
				took := time.Since(start)
				if took < idle || took > idle+drip {
					t.Errorf("dripping client cut after %v of virtual time, want %v (one deadline for the head)", took, idle)
				}
				_ = srv.Close()
			})
		})
	}
}
