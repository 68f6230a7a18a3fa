package netns

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
	"time"
)

// A Lab is a small network of "hosts" built from Linux network namespaces:
//
//	namespace <prefix>-sw:     bridge br0, with one port v<i> per host
//	namespace <prefix>-<host>: lo, and eth0 (the other end of v<i>) with address 10.77.0.<i+1>/24 (New), or
//	                           host i+1 of the /24 given to NewOn
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
//	  firewalled:   ip netns exec <prefix>-<host> nft -f - (the table of nftRules; iptables when nft is missing)
//	  Delay, Loss:  ip netns exec <prefix>-<host> tc qdisc add dev eth0 root netem delay <d> loss <p>%
//
// Close deletes the namespaces, which takes their interfaces, the bridge and the firewall rules with them.
//
// The prefix is "gnut-<pid>-<seq>-<lab name>": New first deletes labs whose process is gone (a run that crashed or
// was killed before its cleanup).
type Lab struct {
	// Hosts are the lab's hosts, in the order of the specs.
	Hosts []*Host
	// RemovedStale lists the namespaces of runs that are gone which New deleted before building this lab.
	RemovedStale []string

	prefix string
	sw     string // the switch namespace
	bridge string
	fw     string // "nft" or "iptables", once a host is firewalled

	mu     sync.Mutex
	made   []string // namespaces created, in order
	closed bool
}

// HostSpec describes one host of a lab.
type HostSpec struct {
	// Name is a short name ("open", "up", "fw"): letters, digits, '-' and '_'.
	Name string
	// Firewalled hosts drop inbound TCP connection attempts (SYN without ACK) in the kernel; established and
	// related traffic, and their own outbound connections, pass.
	Firewalled bool
	// Delay and Loss (a percentage) are added by netem to what the host sends.
	Delay time.Duration
	Loss  float64
}

// Host is one host of a lab.
type Host struct {
	Name string
	// Addr is the host's address, 10.77.0.<i+1> (or host i+1 of NewOn's subnet). These addresses exist only inside
	// the lab's namespaces: the hosts have no route but their /24 on the lab's bridge, so nothing outside the lab
	// can reach them, and the lab cannot reach anything outside, whatever the addresses are.
	Addr netip.Addr
	// Path is the namespace file (/run/netns/<ns>), for Transport.
	Path       string
	Firewalled bool
	ns         string
}

// ErrUnavailable is wrapped by New's error when this machine cannot build the lab: not root, `ip` missing
// (apt-get install iproute2), namespaces, veth pairs or bridges not allowed here, a firewalled host with neither
// nft nor iptables (apt-get install nftables), or Delay or Loss without netem. Tests skip on it, giving the error
// as the reason.
var ErrUnavailable = errors.New("netns lab unavailable here")

// labSeq numbers the labs of this process.
var labSeq atomic.Uint64

// prefix is how every lab namespace of this package starts: "gnut-<pid>-".
const prefix = "gnut-"

// cmdTimeout bounds every command the lab runs.
const cmdTimeout = 15 * time.Second

// nftTable is the nftables table of a firewalled host.
const nftTable = "gnutella_lab"

// nftRules drop new inbound TCP connections: a SYN without ACK. Loopback, and packets of connections the host
// itself opened (the SYN-ACK that answers its own SYN, and all that follows), pass.
const nftRules = `table inet ` + nftTable + ` {
	chain input {
		type filter hook input priority filter; policy accept;
		iif "lo" accept
		ct state established,related accept
		tcp flags & (syn|ack) == syn counter drop
	}
}
`

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,24}$`)

// unavailable wraps ErrUnavailable with the reason.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}

// DefaultSubnet is the hosts' subnet in a lab made by New: private addresses (RFC 1918).
var DefaultSubnet = netip.MustParsePrefix("10.77.0.0/24")

// New builds a lab named name with the given hosts on DefaultSubnet. The caller must Close it (in a test:
// t.Cleanup). When the error wraps ErrUnavailable this machine cannot build it (see there); other errors are bad
// arguments or a command that failed. On error, whatever New had made is deleted again.
func New(name string, hosts []HostSpec) (*Lab, error) {
	return NewOn(name, DefaultSubnet, hosts)
}

// NewOn is New with the hosts on subnet, an IPv4 /24: host i gets its address i+1. A test picks another subnet
// when a peer judges addresses: gtk-gnutella, for one, does no out-of-band hits for a private address, and a
// subnet it deems routable (such as 100.64.0.0/24, shared address space that is never on the Internet) lets it.
// The lab still has no route out, so nothing sent to such an address leaves the machine.
func NewOn(name string, subnet netip.Prefix, hosts []HostSpec) (*Lab, error) {
	if !subnet.Addr().Is4() || subnet.Bits() != 24 {
		return nil, fmt.Errorf("netns lab: subnet %v, want an IPv4 /24", subnet)
	}
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("netns lab: bad lab name %q", name)
	}
	if len(hosts) == 0 || len(hosts) > 250 {
		return nil, fmt.Errorf("netns lab: %d hosts, want 1 to 250", len(hosts))
	}
	seen := map[string]bool{"sw": true}
	for _, h := range hosts {
		if !nameRE.MatchString(h.Name) || seen[h.Name] {
			return nil, fmt.Errorf("netns lab: bad or repeated host name %q (\"sw\" is the switch)", h.Name)
		}
		seen[h.Name] = true
	}
	if os.Geteuid() != 0 {
		return nil, unavailable("needs root (CAP_SYS_ADMIN) to create network namespaces")
	}
	if !lookPath("ip") {
		return nil, unavailable("the ip command is missing: apt-get install iproute2")
	}
	l := &Lab{bridge: "br0", prefix: fmt.Sprintf("%s%d-%d-%s", prefix, os.Getpid(), labSeq.Add(1), name)}
	l.RemovedStale = removeStale()
	l.sw = l.prefix + "-sw"
	if err := l.build(subnet.Masked().Addr().As4(), hosts); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

// build makes the switch and the hosts.
func (l *Lab) build(net [4]byte, hosts []HostSpec) error {
	if out, err := l.addNetns(l.sw); err != nil {
		return unavailable("cannot create a network namespace here (%v: %s)", err, out)
	}
	if out, err := runIP("-n", l.sw, "link", "add", l.bridge, "type", "bridge"); err != nil {
		return unavailable("cannot create a bridge here (%v: %s)", err, out)
	}
	if err := must("-n", l.sw, "link", "set", l.bridge, "up"); err != nil {
		return err
	}
	for i, spec := range hosts {
		h := &Host{Name: spec.Name, Addr: netip.AddrFrom4([4]byte{net[0], net[1], net[2], byte(i + 1)}),
			Firewalled: spec.Firewalled, ns: l.prefix + "-" + spec.Name}
		h.Path = "/run/netns/" + h.ns
		if out, err := l.addNetns(h.ns); err != nil {
			return fmt.Errorf("netns lab: ip netns add %s: %v: %s", h.ns, err, out)
		}
		port := fmt.Sprintf("v%d", i)
		if out, err := runIP("-n", l.sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.ns); err != nil {
			return unavailable("cannot create a veth pair here (%v: %s)", err, out)
		}
		for _, args := range [][]string{
			{"-n", l.sw, "link", "set", port, "master", l.bridge, "up"},
			{"-n", h.ns, "addr", "add", h.Addr.String() + "/24", "dev", "eth0"},
			{"-n", h.ns, "link", "set", "eth0", "up"},
			{"-n", h.ns, "link", "set", "lo", "up"},
		} {
			if err := must(args...); err != nil {
				return err
			}
		}
		if spec.Firewalled {
			if err := l.firewall(h); err != nil {
				return err
			}
		}
		if spec.Delay > 0 || spec.Loss > 0 {
			if err := l.netem(h, spec.Delay, spec.Loss); err != nil {
				return err
			}
		}
		l.Hosts = append(l.Hosts, h)
	}
	return nil
}

// Host returns the host called name (nil if none).
func (l *Lab) Host(name string) *Host {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Namespaces lists the names of the lab's namespaces (the switch's and every host's).
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.made...)
}

// Remaining lists the namespaces of this lab that exist now, as `ip netns list` shows them: none once Close has
// returned without error.
func (l *Lab) Remaining() ([]string, error) {
	out, err := runIP("netns", "list")
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %v: %s", err, out)
	}
	var left []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], l.prefix+"-") {
			left = append(left, f[0])
		}
	}
	return left, nil
}

// Netns is the name of h's namespace, for `ip netns exec NAME command`.
func (h *Host) Netns() string { return h.ns }

// Transport returns a Transport whose sockets live in h's namespace.
func (l *Lab) Transport(h *Host) Transport {
	return Transport{Path: h.Path}
}

// Exec runs a command (such as "ss", "-tn") inside h's namespace and returns its combined output.
func (l *Lab) Exec(h *Host, name string, args ...string) (string, error) {
	return runIP(append([]string{"netns", "exec", h.ns, name}, args...)...)
}

// DroppedSYNs returns how many inbound connection attempts h's firewall dropped so far.
func (l *Lab) DroppedSYNs(h *Host) (int, error) {
	if !h.Firewalled {
		return 0, errors.New("netns lab: host " + h.Name + " has no firewall")
	}
	var out string
	var err error
	var re *regexp.Regexp
	if l.fw == "nft" {
		out, err = l.Exec(h, "nft", "list", "chain", "inet", nftTable, "input")
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
// may be called more than once: the later calls do nothing and return nil.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	made := l.made
	l.mu.Unlock()
	var errs []error
	// Hosts first, the switch last (the reverse of creation).
	for i := len(made) - 1; i >= 0; i-- {
		if out, err := runIP("netns", "delete", made[i]); err != nil {
			if _, statErr := os.Stat("/run/netns/" + made[i]); !errors.Is(statErr, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("netns lab: ip netns delete %s: %v: %s", made[i], err, out))
			}
		}
	}
	return errors.Join(errs...)
}

// addNetns creates the namespace ns and remembers it for Close.
func (l *Lab) addNetns(ns string) (string, error) {
	out, err := runIP("netns", "add", ns)
	if err == nil {
		l.mu.Lock()
		l.made = append(l.made, ns)
		l.mu.Unlock()
	}
	return out, err
}

// firewall makes h drop inbound TCP connection attempts, with nft or else iptables (GNUTELLA_NETNS_FIREWALL=nft
// or =iptables picks one).
func (l *Lab) firewall(h *Host) error {
	if l.fw == "" {
		switch tool := os.Getenv("GNUTELLA_NETNS_FIREWALL"); {
		case tool == "nft" || tool == "iptables": // to try the other tool
			if !lookPath(tool) {
				return unavailable("GNUTELLA_NETNS_FIREWALL=%s, which is not installed", tool)
			}
			l.fw = tool
		case lookPath("nft"):
			l.fw = "nft"
		case lookPath("iptables"):
			l.fw = "iptables"
		default:
			return unavailable("a firewalled host needs nft or iptables: apt-get install nftables")
		}
	}
	if l.fw == "nft" {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", h.ns, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(nftRules)
		if out, err := cmd.CombinedOutput(); err != nil {
			return unavailable("cannot load nftables rules in a namespace here (%v: %s)", err, out)
		}
		return nil
	}
	for i, rule := range [][]string{
		{"-A", "INPUT", "-i", "lo", "-j", "ACCEPT"},
		{"-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"-A", "INPUT", "-p", "tcp", "--syn", "-j", "DROP"},
	} {
		if out, err := l.Exec(h, "iptables", rule...); err != nil {
			if i == 0 {
				return unavailable("cannot add iptables rules in a namespace here (%v: %s)", err, out)
			}
			return fmt.Errorf("netns lab: iptables %v in %s: %v: %s", rule, h.ns, err, out)
		}
	}
	return nil
}

// netem delays and drops what h sends.
func (l *Lab) netem(h *Host, delay time.Duration, loss float64) error {
	if !lookPath("tc") {
		return unavailable("Delay and Loss need tc: apt-get install iproute2")
	}
	args := []string{"qdisc", "add", "dev", "eth0", "root", "netem"}
	if delay > 0 {
		args = append(args, "delay", fmt.Sprintf("%dus", delay.Microseconds()))
	}
	if loss > 0 {
		args = append(args, "loss", strconv.FormatFloat(loss, 'f', -1, 64)+"%")
	}
	if out, err := l.Exec(h, "tc", args...); err != nil {
		return unavailable("netem is not available here (kernel module sch_netem?): %v: %s", err, out)
	}
	return nil
}

// must runs the ip command; its error says which command failed and what it printed.
func must(args ...string) error {
	if out, err := runIP(args...); err != nil {
		return fmt.Errorf("netns lab: ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// runIP runs the ip command, bounded in time, and returns its combined output.
func runIP(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func lookPath(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// staleRE matches the namespaces of this package: gnut-<pid>-<seq>-<lab>-<host>.
var staleRE = regexp.MustCompile(`^` + prefix + `(\d+)-\d+-`)

// removeStale deletes lab namespaces left by a process that no longer exists (a crashed or killed run), and
// returns their names. Namespaces of live processes, including other labs of this one, are left alone; one that
// cannot be deleted is left too (the next run tries again).
func removeStale() []string {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil // no namespace was ever made
	}
	var removed []string
	for _, e := range entries {
		m := staleRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if _, err := runIP("netns", "delete", e.Name()); err == nil {
			removed = append(removed, e.Name())
		}
	}
	return removed
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
