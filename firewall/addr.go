package firewall

import (
	"errors"
	"net/netip"
)

// AddrPolicy is the project's one address policy: which peer addresses we
// dial, store, relay or call back to (docs/protocol.md §6.4, §8.3). The host cache
// stores and dials peers under it, the PushGuard calls back under it, the
// push proxy relays to it and the downloader dials sources directly under it
// (others it reaches through a Push).
//
// The zero value is the Internet: public unicast only. A test network on one
// machine sets both fields.
type AddrPolicy struct {
	// AllowLoopback admits 127.0.0.0/8 and ::1.
	AllowLoopback bool
	// AllowPrivate admits the addresses that are not public unicast but can
	// still name a host: RFC 1918, fc00::/7, carrier-grade NAT (100.64/10),
	// link-local, and the documentation, benchmarking and IETF ranges (a
	// LAN or a lab). It does not admit loopback.
	AllowPrivate bool
	// Hostiles, when set, refuses the hostile and banned addresses
	// (hostiles.go, docs/protocol.md §8.6) whatever their class.
	Hostiles *Hostiles
}

// AddrClass is what kind of address an ip:port is.
type AddrClass uint8

const (
	// AddrPublic: a public unicast address with a port. Always admitted.
	AddrPublic AddrClass = iota
	// AddrInvalid: no address (the zero netip.AddrPort). Never admitted.
	AddrInvalid
	// AddrPortZero: port 0. Never admitted.
	AddrPortZero
	// AddrUnspecified: 0.0.0.0 or ::. Never admitted.
	AddrUnspecified
	// AddrMulticast: 224/4 or ff00::/8. Never admitted.
	AddrMulticast
	// AddrBroadcast: 255.255.255.255. Never admitted.
	AddrBroadcast
	// AddrReserved: "this network" (0/8) or reserved (240/4). Never admitted.
	AddrReserved
	// AddrLoopback: 127/8 or ::1. Admitted with AllowLoopback.
	AddrLoopback
	// AddrPrivate: RFC 1918, fc00::/7 or 100.64/10. Admitted with
	// AllowPrivate.
	AddrPrivate
	// AddrLinkLocal: 169.254/16 or fe80::/10. Admitted with AllowPrivate.
	AddrLinkLocal
	// AddrBogon: an address of the bogon list (documentation, benchmarking,
	// IETF protocol assignments) or an IPv6 address outside 2000::/3.
	// Admitted with AllowPrivate.
	AddrBogon
	// AddrHostile: an address of the policy's Hostiles (a hostile range
	// or a ban). ClassifyAddr never says it; Check does. Never admitted.
	AddrHostile
)

var addrClassNames = [...]string{
	AddrPublic:      "public address",
	AddrInvalid:     "invalid address",
	AddrPortZero:    "port 0",
	AddrUnspecified: "unspecified address",
	AddrMulticast:   "multicast address",
	AddrBroadcast:   "broadcast address",
	AddrReserved:    "reserved address",
	AddrLoopback:    "loopback address",
	AddrPrivate:     "private address",
	AddrLinkLocal:   "link-local address",
	AddrBogon:       "bogon address",
	AddrHostile:     "hostile address",
}

// String describes the class in a few words ("loopback address", "port
// 0"), fit for a protocol warning such as a GWebCache's "Rejected IP".
func (c AddrClass) String() string {
	if int(c) < len(addrClassNames) {
		return addrClassNames[c]
	}
	return "unknown address class"
}

// The one bogon list: address space that is never a host on the Internet
// (RFC 6890 and the usual bogon lists), beyond what netip's predicates and
// the classes above already name.
var (
	prefixCGNAT     = netip.MustParsePrefix("100.64.0.0/10") // RFC 6598 shared address space
	prefixThisNet4  = netip.MustParsePrefix("0.0.0.0/8")
	prefixReserved4 = netip.MustParsePrefix("240.0.0.0/4")
	broadcast4      = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	prefixGlobal6   = netip.MustParsePrefix("2000::/3")
	bogons          = []netip.Prefix{
		netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
		netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
		netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
		netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
		netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
		netip.MustParsePrefix("2001:db8::/32"),   // IPv6 documentation
	}
)

// ClassifyAddr says what kind of address ap is. IPv4-mapped IPv6 addresses
// are judged as IPv4; a zone is ignored.
func ClassifyAddr(ap netip.AddrPort) AddrClass {
	a := ap.Addr().Unmap().WithZone("")
	switch {
	case !a.IsValid():
		return AddrInvalid
	case ap.Port() == 0:
		return AddrPortZero
	case a.IsUnspecified():
		return AddrUnspecified
	case a.IsMulticast():
		return AddrMulticast
	case a == broadcast4:
		return AddrBroadcast
	case a.Is4() && (prefixThisNet4.Contains(a) || prefixReserved4.Contains(a)):
		return AddrReserved
	case a.IsLoopback():
		return AddrLoopback
	case a.IsPrivate() || prefixCGNAT.Contains(a):
		return AddrPrivate
	case a.IsLinkLocalUnicast():
		return AddrLinkLocal
	case a.Is6() && !prefixGlobal6.Contains(a):
		return AddrBogon
	}
	for _, p := range bogons {
		if p.Contains(a) {
			return AddrBogon
		}
	}
	return AddrPublic
}

// ErrAddrRefused is matched (errors.Is) by every error of AddrPolicy.Check.
var ErrAddrRefused = errors.New("address refused")

// AddrError is the error of AddrPolicy.Check: Addr is of a Class the policy
// does not admit.
type AddrError struct {
	Addr  netip.AddrPort
	Class AddrClass
	// Reason is why an AddrHostile address is hostile (the list or ban).
	Reason string
}

func (e *AddrError) Error() string {
	switch e.Class {
	case AddrInvalid:
		return "address refused: " + e.Class.String()
	case AddrPortZero:
		return "address " + e.Addr.String() + " refused: " + e.Class.String()
	case AddrHostile:
		return "address " + e.Addr.String() + " refused: " + e.Class.String() + " (" + e.Reason + ")"
	}
	return "address " + e.Addr.String() + " refused: " + e.Class.String() + " (not allowed by the address policy)"
}

// Is makes errors.Is(err, ErrAddrRefused) hold.
func (e *AddrError) Is(target error) bool { return target == ErrAddrRefused }

// Admits reports whether the policy admits addresses of class c.
func (p AddrPolicy) Admits(c AddrClass) bool {
	switch c {
	case AddrPublic:
		return true
	case AddrLoopback:
		return p.AllowLoopback
	case AddrPrivate, AddrLinkLocal, AddrBogon:
		return p.AllowPrivate
	}
	return false
}

// Check returns nil if the policy admits ap, else an *AddrError (which
// matches ErrAddrRefused): its class is not admitted, or it is hostile.
func (p AddrPolicy) Check(ap netip.AddrPort) error {
	if c := ClassifyAddr(ap); !p.Admits(c) {
		return &AddrError{Addr: ap, Class: c}
	}
	return p.CheckHostile(ap)
}

// CheckHostile returns an *AddrError of class AddrHostile if ap's address
// is hostile or banned, else nil. It is the part of Check no waiver lifts.
func (p AddrPolicy) CheckHostile(ap netip.AddrPort) error {
	if reason, bad := p.Hostiles.Banned(ap.Addr()); bad {
		return &AddrError{Addr: ap, Class: AddrHostile, Reason: reason}
	}
	return nil
}

// isLocalAddr reports whether a connection from a is no proof that the
// outside world can reach us: loopback, private (RFC 1918, fc00::/7),
// carrier-grade NAT, link-local, unspecified, "this network" or invalid. It
// mirrors LimeWire's isOutsideConnection and gtk-gnutella's
// inet_got_incoming.
func isLocalAddr(a netip.Addr) bool {
	if !a.IsValid() {
		return true
	}
	a = a.Unmap()
	return a.IsUnspecified() || a.IsLoopback() || a.IsPrivate() ||
		a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.Is4() && (prefixCGNAT.Contains(a) || prefixThisNet4.Contains(a))
}
