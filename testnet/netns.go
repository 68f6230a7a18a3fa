//go:build linux

package testnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gnutella/servent"
)

// A NetnsLab is a small network of "hosts" built from Linux network namespaces, for tests that need real kernel
// behaviour between hosts, such as a firewall that drops inbound connections:
//
//	namespace <prefix>-sw:     bridge br0, with one port v<i> per host
//	namespace <prefix>-<host>: lo, and eth0 (the other end of v<i>) with address 10.77.0.<i+1>/24
//
// The commands it runs, for each lab (all through `ip`, so the root namespace is left untouched: no interface,
// address, route or rule is ever added there):
//
//	ip netns add <prefix>-sw
//	ip -n <prefix>-sw link add br0 type bridge && ip -n <prefix>-sw link set br0 up
//	for each host i:
//	  ip netns add <prefix>-<host>
//	  ip -n <prefix>-sw link add v<i> type veth peer name eth0 netns <prefix>-<host>
//	  ip -n <prefix>-sw link set v<i> master br0 up
//	  ip -n <prefix>-<host> addr add 10.77.0.<i+1>/24 dev eth0
//	  ip -n <prefix>-<host> link set eth0 up && ip -n <prefix>-<host> link set lo up
//	  firewalled:   ip netns exec <prefix>-<host> nft -f - (the table of netnsNftRules; iptables when nft is missing)
//	  Delay, Loss:  ip netns exec <prefix>-<host> tc qdisc add dev eth0 root netem delay <d> loss <p>%
//
// Close deletes the namespaces, which takes their interfaces, the bridge and the firewall rules with them.
//
// The prefix is "gnut-<pid>-<seq>-<lab name>": NewNetnsLab first deletes labs whose process is gone (a run that
// crashed or was killed before its cleanup).
type NetnsLab struct {
	// Hosts are the lab's hosts, in the order of the specs.
	Hosts []*NetnsHost

	t      testing.TB
	prefix string
	sw     string // the switch namespace
	bridge string
	fw     string // "nft" or "iptables", once a host is firewalled

	mu     sync.Mutex
	made   []string // namespaces created, in order
	closed bool
}

// NetnsHostSpec describes one host of a lab.
type NetnsHostSpec struct {
	// Name is a short name ("open", "up", "fw"): letters, digits, '-' and '_'.
	Name string
	// Firewalled hosts drop inbound TCP connection attempts (SYN without ACK) in the kernel; established and
	// related traffic, and their own outbound connections, pass.
	Firewalled bool
	// Delay and Loss (a percentage) are added by netem to what the host sends.
	Delay time.Duration
	Loss  float64
}

// NetnsHost is one host of a lab.
type NetnsHost struct {
	Name string
	// Addr is the host's address, 10.77.0.<i+1>. These addresses exist only inside the lab's namespaces: nothing
	// outside the lab can reach them, and the lab cannot reach anything outside.
	Addr netip.Addr
	// Path is the namespace file (/run/netns/<ns>), for NetnsTransport.
	Path       string
	Firewalled bool
	ns         string
}

// netnsLabSeq numbers the labs of this process.
var netnsLabSeq atomic.Uint64

// netnsPrefix is how every lab namespace of this harness starts: "gnut-<pid>-".
const netnsPrefix = "gnut-"

// netnsCmdTimeout bounds every command the lab runs.
const netnsCmdTimeout = 15 * time.Second

// netnsNftTable is the nftables table of a firewalled host.
const netnsNftTable = "gnutella_lab"

// netnsNftRules drop new inbound TCP connections: a SYN without ACK. Loopback, and packets of connections the
// host itself opened (the SYN-ACK that answers its own SYN, and all that follows), pass.
const netnsNftRules = `table inet ` + netnsNftTable + ` {
	chain input {
		type filter hook input priority filter; policy accept;
		iif "lo" accept
		ct state established,related accept
		tcp flags & (syn|ack) == syn counter drop
	}
}
`

var netnsNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,24}$`)

// NewNetnsLab builds a lab named name with the given hosts. The lab is closed when the test ends (t.Cleanup); call
// Close earlier (a defer) to close it sooner. It skips the test, saying why, when not root, when `ip` is missing
// (apt-get install iproute2), when namespaces, veth pairs or bridges cannot be created here, when a firewalled
// host needs nft or iptables and neither is installed (apt-get install nftables), or when Delay or Loss need
// netem and the kernel lacks it.
func NewNetnsLab(t testing.TB, name string, hosts []NetnsHostSpec) *NetnsLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netns lab: needs root (CAP_SYS_ADMIN) to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("netns lab: the ip command is missing: apt-get install iproute2")
	}
	if !netnsNameRE.MatchString(name) {
		t.Fatalf("netns lab: bad lab name %q", name)
	}
	if len(hosts) == 0 || len(hosts) > 250 {
		t.Fatalf("netns lab: %d hosts, want 1 to 250", len(hosts))
	}
	seen := map[string]bool{"sw": true}
	for _, h := range hosts {
		if !netnsNameRE.MatchString(h.Name) || seen[h.Name] {
			t.Fatalf("netns lab: bad or repeated host name %q (\"sw\" is the switch)", h.Name)
		}
		seen[h.Name] = true
	}
	removeStaleNetns(t)

	l := &NetnsLab{t: t, bridge: "br0",
		prefix: fmt.Sprintf("%s%d-%d-%s", netnsPrefix, os.Getpid(), netnsLabSeq.Add(1), name)}
	l.sw = l.prefix + "-sw"
	t.Cleanup(l.Close)

	// The switch.
	if out, err := l.addNetns(l.sw); err != nil {
		t.Skipf("netns lab: cannot create a network namespace here (%v: %s)", err, out)
	}
	if out, err := l.ip("-n", l.sw, "link", "add", l.bridge, "type", "bridge"); err != nil {
		t.Skipf("netns lab: cannot create a bridge here (%v: %s)", err, out)
	}
	l.must("-n", l.sw, "link", "set", l.bridge, "up")

	for i, spec := range hosts {
		h := &NetnsHost{Name: spec.Name, Addr: netip.AddrFrom4([4]byte{10, 77, 0, byte(i + 1)}),
			Firewalled: spec.Firewalled, ns: l.prefix + "-" + spec.Name}
		h.Path = "/run/netns/" + h.ns
		if out, err := l.addNetns(h.ns); err != nil {
			t.Fatalf("netns lab: ip netns add %s: %v: %s", h.ns, err, out)
		}
		port := fmt.Sprintf("v%d", i)
		if out, err := l.ip("-n", l.sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.ns); err != nil {
			t.Skipf("netns lab: cannot create a veth pair here (%v: %s)", err, out)
		}
		l.must("-n", l.sw, "link", "set", port, "master", l.bridge, "up")
		l.must("-n", h.ns, "addr", "add", h.Addr.String()+"/24", "dev", "eth0")
		l.must("-n", h.ns, "link", "set", "eth0", "up")
		l.must("-n", h.ns, "link", "set", "lo", "up")
		if spec.Firewalled {
			l.firewall(h)
		}
		if spec.Delay > 0 || spec.Loss > 0 {
			l.netem(h, spec.Delay, spec.Loss)
		}
		l.Hosts = append(l.Hosts, h)
	}
	return l
}

// Host returns the host called name (nil if none).
func (l *NetnsLab) Host(name string) *NetnsHost {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Namespaces lists the names of the lab's namespaces (the switch's and every host's).
func (l *NetnsLab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.made...)
}

// Transport returns a Transport whose sockets live in h's namespace.
func (l *NetnsLab) Transport(h *NetnsHost) servent.Transport {
	return servent.NetnsTransport{Path: h.Path}
}

// Exec runs a command (such as "ss", "-tn") inside h's namespace and returns its combined output.
func (l *NetnsLab) Exec(h *NetnsHost, name string, args ...string) (string, error) {
	return l.ip(append([]string{"netns", "exec", h.ns, name}, args...)...)
}

// DroppedSYNs returns how many inbound connection attempts h's firewall dropped so far.
func (l *NetnsLab) DroppedSYNs(h *NetnsHost) (int, error) {
	if !h.Firewalled {
		return 0, errors.New("netns lab: host " + h.Name + " has no firewall")
	}
	var out string
	var err error
	var re *regexp.Regexp
	if l.fw == "nft" {
		out, err = l.Exec(h, "nft", "list", "chain", "inet", netnsNftTable, "input")
		re = regexp.MustCompile(`counter packets (\d+) bytes \d+ drop`)
	} else {
		out, err = l.Exec(h, "iptables", "-L", "INPUT", "-v", "-x", "-n")
		re = regexp.MustCompile(`(?m)^\s*(\d+)\s+\d+\s+DROP\s+(?:6|tcp)\b`)
	}
	if err != nil {
		return 0, fmt.Errorf("netns lab: reading %s's firewall counter: %v: %s", h.Name, err, out)
	}
	m := re.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("netns lab: no drop counter in %s's rules:\n%s", h.Name, out)
	}
	return strconv.Atoi(m[1])
}

// Close deletes every namespace of the lab, and with them the veth pairs, the bridge and the firewall rules. It
// may be called more than once; failures are reported with t.Errorf.
func (l *NetnsLab) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	made := l.made
	l.mu.Unlock()
	// Hosts first, the switch last (the reverse of creation).
	for i := len(made) - 1; i >= 0; i-- {
		if out, err := l.ip("netns", "delete", made[i]); err != nil {
			if _, statErr := os.Stat("/run/netns/" + made[i]); !errors.Is(statErr, os.ErrNotExist) {
				l.t.Errorf("netns lab: ip netns delete %s: %v: %s", made[i], err, out)
			}
		}
	}
}

// addNetns creates the namespace ns and remembers it for Close.
func (l *NetnsLab) addNetns(ns string) (string, error) {
	out, err := l.ip("netns", "add", ns)
	if err == nil {
		l.mu.Lock()
		l.made = append(l.made, ns)
		l.mu.Unlock()
	}
	return out, err
}

// firewall makes h drop inbound TCP connection attempts, with nft or else iptables (GNUTELLA_NETNS_FIREWALL=nft
// or =iptables picks one).
func (l *NetnsLab) firewall(h *NetnsHost) {
	if l.fw == "" {
		switch tool := os.Getenv("GNUTELLA_NETNS_FIREWALL"); {
		case tool == "nft" || tool == "iptables": // to try the other tool
			if !lookPath(tool) {
				l.t.Skipf("netns lab: GNUTELLA_NETNS_FIREWALL=%s, which is not installed", tool)
			}
			l.fw = tool
		case lookPath("nft"):
			l.fw = "nft"
		case lookPath("iptables"):
			l.fw = "iptables"
		default:
			l.t.Skip("netns lab: a firewalled host needs nft or iptables: apt-get install nftables")
		}
	}
	if l.fw == "nft" {
		ctx, cancel := context.WithTimeout(context.Background(), netnsCmdTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", h.ns, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(netnsNftRules)
		if out, err := cmd.CombinedOutput(); err != nil {
			l.t.Skipf("netns lab: cannot load nftables rules in a namespace here (%v: %s)", err, out)
		}
		return
	}
	for i, rule := range [][]string{
		{"-A", "INPUT", "-i", "lo", "-j", "ACCEPT"},
		{"-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"-A", "INPUT", "-p", "tcp", "--syn", "-j", "DROP"},
	} {
		if out, err := l.Exec(h, "iptables", rule...); err != nil {
			if i == 0 {
				l.t.Skipf("netns lab: cannot add iptables rules in a namespace here (%v: %s)", err, out)
			}
			l.t.Fatalf("netns lab: iptables %v in %s: %v: %s", rule, h.ns, err, out)
		}
	}
}

// netem delays and drops what h sends.
func (l *NetnsLab) netem(h *NetnsHost, delay time.Duration, loss float64) {
	if !lookPath("tc") {
		l.t.Skip("netns lab: Delay and Loss need tc: apt-get install iproute2")
	}
	args := []string{"qdisc", "add", "dev", "eth0", "root", "netem"}
	if delay > 0 {
		args = append(args, "delay", fmt.Sprintf("%dus", delay.Microseconds()))
	}
	if loss > 0 {
		args = append(args, "loss", strconv.FormatFloat(loss, 'f', -1, 64)+"%")
	}
	if out, err := l.Exec(h, "tc", args...); err != nil {
		l.t.Skipf("netns lab: netem is not available here (kernel module sch_netem?): %v: %s", err, out)
	}
}

// ip runs the ip command, bounded in time, and returns its combined output.
func (l *NetnsLab) ip(args ...string) (string, error) {
	return runIP(args...)
}

// must runs the ip command and fails the test if it fails.
func (l *NetnsLab) must(args ...string) {
	l.t.Helper()
	if out, err := l.ip(args...); err != nil {
		l.t.Fatalf("netns lab: ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func runIP(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), netnsCmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func lookPath(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// staleNetnsRE matches the namespaces of this harness: gnut-<pid>-<seq>-<lab>-<host>.
var staleNetnsRE = regexp.MustCompile(`^` + netnsPrefix + `(\d+)-\d+-`)

// removeStaleNetns deletes lab namespaces left by a process that no longer exists (a crashed or killed run).
// Namespaces of live processes, including other labs of this one, are left alone.
func removeStaleNetns(t testing.TB) {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return // no namespace was ever made
	}
	for _, e := range entries {
		m := staleNetnsRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if out, err := runIP("netns", "delete", e.Name()); err != nil {
			t.Logf("netns lab: cannot delete the stale namespace %s: %v: %s", e.Name(), err, out)
		} else {
			t.Logf("netns lab: deleted the stale namespace %s of a run that is gone", e.Name())
		}
	}
}

// processAlive reports whether the process pid exists and is not a zombie (a killed test binary whose parent has
// not reaped it yet still answers kill 0).
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// "pid (comm) S ...": the state follows the last ')'.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		switch stat[i+2] {
		case 'Z', 'X':
			return false
		}
	}
	return true
}
