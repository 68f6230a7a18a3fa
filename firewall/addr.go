package firewall

import "net/netip"

// Address classes used by the detector (what counts as "outside") and by the
// push policy (where we may connect back to).

var (
	prefixCGNAT = netip.MustParsePrefix("100.64.0.0/10") // RFC 6598 shared address space

	// IPv4 bogons that are never a valid callback target (RFC 6890 and the
	// usual bogon lists). 127/8, RFC 1918 and 100.64/10 are handled by the
	// policy (loopback, private); 224/4 and 240/4 get their own messages.
	bogons4 = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
		netip.MustParsePrefix("169.254.0.0/16"),  // link local
		netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
		netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
		netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
		netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
		netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	}
	prefixMulticast4 = netip.MustParsePrefix("224.0.0.0/4")
	prefixReserved4  = netip.MustParsePrefix("240.0.0.0/4")
	broadcast4       = netip.AddrFrom4([4]byte{255, 255, 255, 255})

	prefixGlobal6 = netip.MustParsePrefix("2000::/3")
	prefixDoc6    = netip.MustParsePrefix("2001:db8::/32")
)

// isLocalAddr reports whether a connection from a is no proof that the
// outside world can reach us: loopback, private (RFC 1918, fc00::/7),
// carrier-grade NAT, link-local, unspecified or invalid. It mirrors
// LimeWire's isOutsideConnection and gtk-gnutella's inet_got_incoming.
func isLocalAddr(a netip.Addr) bool {
	if !a.IsValid() {
		return true
	}
	a = a.Unmap()
	return a.IsUnspecified() || a.IsLoopback() || a.IsPrivate() ||
		a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.Is4() && (prefixCGNAT.Contains(a) || a.As4()[0] == 0)
}

// isPrivateAddr is RFC 1918, fc00::/7 and the carrier-grade NAT range.
func isPrivateAddr(a netip.Addr) bool {
	return a.IsPrivate() || a.Is4() && prefixCGNAT.Contains(a)
}
