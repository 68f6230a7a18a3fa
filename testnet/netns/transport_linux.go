// This file holds Transport, a servent.Transport whose sockets live in a Linux network namespace, so that one
// process can run servents on several "hosts" of a lab built from namespaces, veth pairs and a bridge (see Lab).

package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"

	"golang.org/x/sys/unix"

	"gnutella/servent"
)

// Transport is a servent.Transport whose sockets are created inside the network namespace at Path (a file such as
// /run/netns/<name>, as made by `ip netns add <name>`). It needs CAP_SYS_ADMIN (root).
//
// A socket belongs to the namespace of the thread that created it, for its whole life, whatever thread later reads,
// writes or accepts on it. So Listen and Dial switch one OS thread into the namespace only for the socket call;
// the returned listener and connections then work from any goroutine like ordinary TCP sockets (they are
// *net.TCPListener and *net.TCPConn).
//
// Dial takes an IP literal ("10.77.0.3:6346", "[fd00::1]:6346"), never a host name: resolving a name could make
// the net package dial several addresses from helper goroutines, whose threads are not in the namespace.
type Transport struct {
	// Path is the namespace file, e.g. /run/netns/<name>.
	Path string
	// Dialer is used for Dial (its Timeout, LocalAddr, KeepAlive...). The zero Dialer is fine.
	Dialer net.Dialer
}

var (
	_ servent.Transport       = Transport{}
	_ servent.PacketTransport = Transport{}
)

// Listen listens on the TCP address addr inside the namespace.
func (t Transport) Listen(addr string) (net.Listener, error) {
	var ln net.Listener
	err := t.inNetns(func() error {
		var err error
		var lc net.ListenConfig
		ln, err = lc.Listen(context.Background(), "tcp", addr)
		return err
	})
	if err != nil {
		if ln != nil { // made, but the thread could not be restored
			ln.Close()
		}
		return nil, err
	}
	return ln, nil
}

// Dial connects to the TCP address addr (an IP literal and a port) from inside the namespace. ctx bounds the
// connection attempt, as with net.Dialer.DialContext.
func (t Transport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if _, err := netip.ParseAddrPort(addr); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("netns transport dials IP literals only: %w", err)}
	}
	if err := ctx.Err(); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	var conn net.Conn
	err := t.inNetns(func() error {
		var err error
		conn, err = t.Dialer.DialContext(ctx, "tcp", addr)
		return err
	})
	if err != nil {
		if conn != nil { // made, but the thread could not be restored
			conn.Close()
		}
		return nil, err
	}
	return conn, nil
}

// ListenPacket listens for UDP datagrams on addr inside the namespace (servent.PacketTransport): a servent on this
// Transport gets its UDP side there too.
func (t Transport) ListenPacket(addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := t.inNetns(func() error {
		var err error
		var lc net.ListenConfig
		pc, err = lc.ListenPacket(context.Background(), "udp", addr)
		return err
	})
	if err != nil {
		if pc != nil { // made, but the thread could not be restored
			pc.Close()
		}
		return nil, err
	}
	return pc, nil
}

// errRestore marks a thread that could not be switched back to its own namespace.
var errRestore = errors.New("netns: cannot switch the thread back to its namespace")

// inNetns runs fn on an OS thread that is inside the namespace at t.Path, and returns fn's error.
//
// Why the thread is locked, and restored: a network namespace is an attribute of an OS thread, not of the process
// and not of a goroutine, and the Go scheduler moves goroutines between threads at any moment. Without
// runtime.LockOSThread, fn could start on the thread we moved into the namespace and create its socket on another
// thread still outside it (or, worse, another goroutine could be scheduled onto our switched thread and create its
// own sockets in the lab). Locking pins this goroutine to one thread and keeps every other goroutine off it until
// it is unlocked. Before unlocking, the thread must be moved back to the namespace it came from: an unlocked thread
// returns to the runtime's pool and would run arbitrary goroutines inside the lab namespace.
//
// If switching back fails, the thread is in an unknown namespace and must never run another goroutine: so it is
// NOT unlocked. The work runs on a goroutine of its own, started here for that purpose; when a goroutine exits
// while still locked to its thread, the runtime terminates that thread instead of reusing it. That is why fn does
// not run on the caller's goroutine, which might live on (and keep the poisoned thread) for a long time.
//
// Goroutines that fn starts do not run on the locked thread (the runtime creates new threads from a clean template
// thread when the current one is locked), so fn must create its socket itself, on this goroutine.
func (t Transport) inNetns(fn func() error) error {
	target, err := unix.Open(t.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &net.OpError{Op: "netns", Net: "tcp", Err: fmt.Errorf("open %s: %w", t.Path, err)}
	}
	defer unix.Close(target)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The namespace of this very thread; opened after locking, so "thread-self" is the thread we will restore.
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread() // nothing was switched yet
			done <- &net.OpError{Op: "netns", Net: "tcp", Err: fmt.Errorf("open own netns: %w", err)}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread() // setns failed: the thread is still where it was
			done <- &net.OpError{Op: "netns", Net: "tcp", Err: fmt.Errorf("setns %s: %w", t.Path, err)}
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Stay locked: this goroutine ends now, and the runtime kills the thread with it.
			done <- errors.Join(ferr, fmt.Errorf("%w: %v", errRestore, err))
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}
