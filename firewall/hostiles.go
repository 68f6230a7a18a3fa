package firewall

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Hostile addresses (docs/protocol.md §8.6, gtk-gnutella hostiles.c and
// ban.c): a static list of address ranges read from files in the format of
// gtk-gnutella's hostiles.txt, and dynamic bans other defences add at run
// time. The servent checks them on inbound and outbound connections, on
// pongs and X-Try entries (through AddrPolicy.Hostiles) and on Pushes.
//
// The file format: one IPv4 or IPv6 address or CIDR prefix a line
// ("1.2.3.4", "1.2.3.0/24", "2001:db8::/32"; an IPv4 prefix may also give a
// dotted netmask, "1.2.3.0/255.255.255.0"); "#" starts a comment that runs
// to the end of the line; blank lines are skipped. Host bits set in a prefix
// are ignored, as gtk-gnutella does. Anything else on a line makes it a bad
// line: it is counted and reported, never fatal.

// The bounds of a hostiles file.
const (
	// HostilesMaxBytes is how much of a hostiles file is read (4 MiB); the
	// rest is ignored and the report says Truncated.
	HostilesMaxBytes = 4 << 20
	// HostilesMaxLine is the longest line accepted (bytes, without the
	// newline); a longer one is a bad line.
	HostilesMaxLine = 256
	// hostilesBadKept is how many bad lines a report quotes.
	hostilesBadKept = 10
	// DefaultMaxBans bounds the dynamic bans of a Hostiles (the oldest ban
	// is evicted by a new one when full).
	DefaultMaxBans = 16384
)

// AddrSet is an immutable set of IPv4 and IPv6 address ranges, kept as
// sorted, merged, disjoint intervals: a lookup is a binary search, and
// memory is 8 bytes per IPv4 range and 32 per IPv6 range. The zero value
// and nil are the empty set. IPv4-mapped IPv6 addresses are IPv4.
type AddrSet struct {
	v4 []span4
	v6 []span6
}

type span4 struct{ lo, hi uint32 }

type u128 struct{ hi, lo uint64 }

type span6 struct{ lo, hi u128 }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// next returns a+1 and whether it did not overflow.
func (a u128) next() (u128, bool) {
	lo, carry := bits.Add64(a.lo, 1, 0)
	hi, over := bits.Add64(a.hi, 0, carry)
	return u128{hi, lo}, over == 0
}

func u128Of(a netip.Addr) u128 {
	b := a.As16()
	var x u128
	for i := 0; i < 8; i++ {
		x.hi = x.hi<<8 | uint64(b[i])
		x.lo = x.lo<<8 | uint64(b[8+i])
	}
	return x
}

func u32Of(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Contains reports whether a is in the set.
func (s *AddrSet) Contains(a netip.Addr) bool {
	if s == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	if a.Is4() {
		x := u32Of(a)
		v := s.v4
		// The first span whose hi is >= x.
		i, _ := slices.BinarySearchFunc(v, x, func(sp span4, x uint32) int { return cmp.Compare(sp.hi, x) })
		return i < len(v) && v[i].lo <= x
	}
	x := u128Of(a.WithZone(""))
	v := s.v6
	i, _ := slices.BinarySearchFunc(v, x, func(sp span6, x u128) int { return sp.hi.cmp(x) })
	return i < len(v) && v[i].lo.cmp(x) <= 0
}

// Len returns how many disjoint ranges the set holds (after merging).
func (s *AddrSet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.v4) + len(s.v6)
}

// Union returns the set of the addresses in s or in o.
func (s *AddrSet) Union(o *AddrSet) *AddrSet {
	var b addrSetBuilder
	for _, x := range []*AddrSet{s, o} {
		if x != nil {
			b.v4 = append(b.v4, x.v4...)
			b.v6 = append(b.v6, x.v6...)
		}
	}
	return b.build()
}

// NewAddrSet returns the set of the given prefixes (invalid ones are
// skipped).
func NewAddrSet(prefixes ...netip.Prefix) *AddrSet {
	var b addrSetBuilder
	for _, p := range prefixes {
		b.add(p)
	}
	return b.build()
}

type addrSetBuilder struct {
	v4 []span4
	v6 []span6
}

// add adds p, its host bits ignored. An IPv4-mapped IPv6 prefix of at
// least 96 bits is taken as the IPv4 prefix it maps.
func (b *addrSetBuilder) add(p netip.Prefix) {
	if !p.IsValid() {
		return
	}
	a, n := p.Addr().WithZone(""), p.Bits()
	if a.Is4In6() && n >= 96 {
		a, n = a.Unmap(), n-96
	}
	p = netip.PrefixFrom(a, n).Masked()
	if a.Is4() {
		lo := u32Of(p.Addr())
		hi := lo | uint32(uint64(1)<<(32-n)-1)
		b.v4 = append(b.v4, span4{lo, hi})
		return
	}
	lo := u128Of(p.Addr())
	hi := lo
	switch host := 128 - n; {
	case host >= 64:
		hi.lo = ^uint64(0)
		if host == 128 {
			hi.hi = ^uint64(0)
		} else {
			hi.hi |= uint64(1)<<(host-64) - 1
		}
	default:
		hi.lo |= uint64(1)<<host - 1
	}
	b.v6 = append(b.v6, span6{lo, hi})
}

// build sorts and merges the spans (overlapping or adjacent ones become one).
func (b *addrSetBuilder) build() *AddrSet {
	slices.SortFunc(b.v4, func(x, y span4) int { return cmp.Compare(x.lo, y.lo) })
	v4 := b.v4[:0]
	for _, sp := range b.v4 {
		if n := len(v4); n > 0 && (v4[n-1].hi == ^uint32(0) || sp.lo <= v4[n-1].hi+1) {
			v4[n-1].hi = max(v4[n-1].hi, sp.hi)
			continue
		}
		v4 = append(v4, sp)
	}
	slices.SortFunc(b.v6, func(x, y span6) int { return x.lo.cmp(y.lo) })
	v6 := b.v6[:0]
	for _, sp := range b.v6 {
		if n := len(v6); n > 0 {
			last := &v6[n-1]
			next, ok := last.hi.next()
			if !ok || sp.lo.cmp(next) <= 0 {
				if sp.hi.cmp(last.hi) > 0 {
					last.hi = sp.hi
				}
				continue
			}
		}
		v6 = append(v6, sp)
	}
	return &AddrSet{v4: slices.Clip(v4), v6: slices.Clip(v6)}
}

// HostilesReport says what a hostiles file held.
type HostilesReport struct {
	Lines     int       // lines read (comments and blank ones included)
	Entries   int       // addresses and prefixes accepted
	Bad       int       // lines that are neither
	FirstBad  []BadLine // the first few bad lines (at most 10)
	Truncated bool      // the file was longer than HostilesMaxBytes
}

// BadLine is a line of a hostiles file that was skipped.
type BadLine struct {
	Line int    // 1-based
	Text string // the line, cut to 64 bytes
	Err  string
}

func (r *HostilesReport) bad(line int, text []byte, err string) {
	r.Bad++
	if len(r.FirstBad) < hostilesBadKept {
		if len(text) > 64 {
			text = text[:64]
		}
		r.FirstBad = append(r.FirstBad, BadLine{Line: line, Text: strconv.Quote(string(text)), Err: err})
	}
}

// ParseHostiles reads a hostiles file (format above) from r: at most
// HostilesMaxBytes of it. Bad lines are counted in the report, never
// fatal; the error is only a read error.
func ParseHostiles(r io.Reader) (*AddrSet, HostilesReport, error) {
	var rep HostilesReport
	var b addrSetBuilder
	lr := &io.LimitedReader{R: r, N: HostilesMaxBytes + 1}
	br := bufio.NewReaderSize(lr, HostilesMaxLine+2)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			rep.Lines++
			rep.bad(rep.Lines, line, "line longer than "+strconv.Itoa(HostilesMaxLine)+" bytes")
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
		} else if len(line) > 0 {
			if lr.N == 0 && err != nil {
				// The last, partial line of a truncated file: not judged.
				break
			}
			rep.Lines++
			p, ok, msg := parseHostileLine(line)
			if len(bytes.TrimRight(line, "\r\n")) > HostilesMaxLine {
				ok, msg = false, "line longer than "+strconv.Itoa(HostilesMaxLine)+" bytes"
			}
			switch {
			case msg != "":
				rep.bad(rep.Lines, bytes.TrimRight(line, "\r\n"), msg)
			case ok:
				rep.Entries++
				b.add(p)
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return b.build(), rep, err
			}
			break
		}
	}
	rep.Truncated = lr.N == 0
	return b.build(), rep, nil
}

// parseHostileLine parses one line: ok with a prefix, or neither ok nor a
// message for a blank or comment line, or a message saying why it is bad.
func parseHostileLine(line []byte) (p netip.Prefix, ok bool, bad string) {
	if i := bytes.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	s := strings.TrimSpace(string(line))
	if s == "" {
		return netip.Prefix{}, false, ""
	}
	if strings.ContainsAny(s, " \t\v\f\r\x00") {
		return netip.Prefix{}, false, "more than one field"
	}
	addr, mask, hasMask := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, false, "not an IP address"
	}
	if a.Zone() != "" {
		return netip.Prefix{}, false, "IPv6 zone not allowed"
	}
	if !hasMask {
		return netip.PrefixFrom(a, a.BitLen()), true, ""
	}
	if n, err := strconv.Atoi(mask); err == nil && mask[0] != '+' && mask[0] != '-' && len(mask) <= 3 {
		if n < 0 || n > a.BitLen() {
			return netip.Prefix{}, false, "prefix length out of range"
		}
		return netip.PrefixFrom(a, n), true, ""
	}
	// A dotted IPv4 netmask, contiguous.
	m, err := netip.ParseAddr(mask)
	if err != nil || !a.Is4() || !m.Is4() {
		return netip.Prefix{}, false, "bad prefix length or netmask"
	}
	x := u32Of(m)
	n := bits.LeadingZeros32(^x)
	if x<<n != 0 {
		return netip.Prefix{}, false, "netmask not contiguous"
	}
	return netip.PrefixFrom(a, n), true, ""
}

// LoadHostiles reads the hostiles file at path. A missing file is an
// empty set and no error; so is a path that is not a regular file, with
// an error saying so. Bad lines are in the report, never an error.
func LoadHostiles(path string) (*AddrSet, HostilesReport, error) {
	// Stat before opening: opening a FIFO would block startup.
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return &AddrSet{}, HostilesReport{}, nil
	}
	if err != nil {
		return &AddrSet{}, HostilesReport{}, fmt.Errorf("hostiles: %w", err)
	}
	if !st.Mode().IsRegular() {
		return &AddrSet{}, HostilesReport{}, fmt.Errorf("hostiles: %s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return &AddrSet{}, HostilesReport{}, fmt.Errorf("hostiles: %w", err)
	}
	defer f.Close()
	set, rep, err := ParseHostiles(f)
	if err != nil {
		err = fmt.Errorf("hostiles: reading %s: %w", path, err)
	}
	return set, rep, err
}

// Hostiles is the set of addresses this servent never talks to: static
// ranges (SetStatic, from hostiles files) and dynamic bans (Ban), each with
// a reason. Dynamic bans are bounded: when MaxBans are held, a new one
// evicts the ban least recently set. It is safe for concurrent use; a nil
// *Hostiles bans nothing.
type Hostiles struct {
	static atomic.Pointer[staticSet]
	now    func() time.Time
	nbans  atomic.Int64 // bans.Len(), read without the lock

	mu   sync.Mutex
	bans *simplelru.LRU[netip.Addr, banEntry]
}

type staticSet struct {
	set    *AddrSet
	reason string
}

type banEntry struct {
	until  time.Time
	reason string
}

// NewHostiles returns a Hostiles with no static ranges that keeps at most
// maxBans dynamic bans (DefaultMaxBans when maxBans <= 0). now is its
// clock (nil: time.Now).
func NewHostiles(maxBans int, now func() time.Time) *Hostiles {
	if maxBans <= 0 {
		maxBans = DefaultMaxBans
	}
	if now == nil {
		now = time.Now
	}
	l, _ := simplelru.NewLRU[netip.Addr, banEntry](maxBans, nil)
	return &Hostiles{now: now, bans: l}
}

// SetStatic replaces the static ranges (say, after reloading the files);
// reason is what Banned says for them ("hostiles.txt").
func (h *Hostiles) SetStatic(set *AddrSet, reason string) {
	h.static.Store(&staticSet{set: set, reason: reason})
}

// Static returns the static ranges.
func (h *Hostiles) Static() *AddrSet {
	if h == nil {
		return nil
	}
	if s := h.static.Load(); s != nil {
		return s.set
	}
	return nil
}

// Ban bans addr (IPv4-mapped addresses are taken as IPv4, zones ignored)
// for d from now, for reason. A new ban replaces the one addr had; d <= 0
// lifts it.
func (h *Hostiles) Ban(addr netip.Addr, d time.Duration, reason string) {
	if h == nil || !addr.IsValid() {
		return
	}
	addr = addr.Unmap().WithZone("")
	h.mu.Lock()
	defer h.mu.Unlock()
	defer func() { h.nbans.Store(int64(h.bans.Len())) }()
	if d <= 0 {
		h.bans.Remove(addr)
		return
	}
	h.bans.Add(addr, banEntry{until: h.now().Add(d), reason: reason})
}

// Banned reports whether addr is hostile (in the static ranges) or banned
// (a dynamic ban that has not ended), and why.
func (h *Hostiles) Banned(addr netip.Addr) (reason string, ok bool) {
	if h == nil || !addr.IsValid() {
		return "", false
	}
	addr = addr.Unmap().WithZone("")
	if s := h.static.Load(); s != nil && s.set.Contains(addr) {
		return s.reason, true
	}
	if h.nbans.Load() == 0 {
		return "", false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.bans.Peek(addr)
	if !ok {
		return "", false
	}
	if !h.now().Before(e.until) {
		h.bans.Remove(addr)
		h.nbans.Store(int64(h.bans.Len()))
		return "", false
	}
	return e.reason, true
}

// Bans returns how many dynamic bans are held (ended ones included until
// they are looked up or evicted).
func (h *Hostiles) Bans() int {
	if h == nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bans.Len()
}
