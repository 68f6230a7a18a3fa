package firewall

import (
	"errors"
	"net/netip"
	"testing"
)

func TestAddrPolicyClasses(t *testing.T) {
	cases := []struct {
		addr  string
		class AddrClass
	}{
		{"8.8.8.8:6346", AddrPublic},
		{"223.255.255.254:6346", AddrPublic},
		{"[2001:4860::8888]:6346", AddrPublic},
		{"[::ffff:8.8.4.4]:6346", AddrPublic},
		{"8.8.8.8:0", AddrPortZero},
		{"127.0.0.1:0", AddrPortZero},
		{"0.0.0.0:6346", AddrUnspecified},
		{"[::]:6346", AddrUnspecified},
		{"[::ffff:0.0.0.0]:6346", AddrUnspecified},
		{"224.0.0.1:6346", AddrMulticast},
		{"239.255.255.250:1900", AddrMulticast},
		{"[ff02::1]:6346", AddrMulticast},
		{"255.255.255.255:6346", AddrBroadcast},
		{"0.1.2.3:6346", AddrReserved},
		{"240.0.0.1:6346", AddrReserved},
		{"250.1.2.3:6346", AddrReserved},
		{"127.0.0.1:6346", AddrLoopback},
		{"127.9.9.9:6346", AddrLoopback},
		{"[::1]:6346", AddrLoopback},
		{"[::ffff:127.0.0.1]:6346", AddrLoopback},
		{"10.0.0.1:6346", AddrPrivate},
		{"172.16.5.4:6346", AddrPrivate},
		{"192.168.1.1:6346", AddrPrivate},
		{"100.64.0.1:6346", AddrPrivate},
		{"[fd00::1]:6346", AddrPrivate},
		{"169.254.1.1:6346", AddrLinkLocal},
		{"[fe80::1]:6346", AddrLinkLocal},
		{"192.0.0.8:6346", AddrBogon},
		{"192.0.2.1:6346", AddrBogon},
		{"198.18.0.1:6346", AddrBogon},
		{"198.51.100.7:6346", AddrBogon},
		{"203.0.113.9:6346", AddrBogon},
		{"[2001:db8::1]:6346", AddrBogon},
		{"[100::1]:6346", AddrBogon},
	}
	policies := []AddrPolicy{{}, {AllowLoopback: true}, {AllowPrivate: true}, {AllowLoopback: true, AllowPrivate: true}}
	for _, c := range cases {
		ap := netip.MustParseAddrPort(c.addr)
		if got := ClassifyAddr(ap); got != c.class {
			t.Errorf("ClassifyAddr(%s) = %v, want %v", c.addr, got, c.class)
		}
		for _, p := range policies {
			want := c.class == AddrPublic ||
				c.class == AddrLoopback && p.AllowLoopback ||
				(c.class == AddrPrivate || c.class == AddrLinkLocal || c.class == AddrBogon) && p.AllowPrivate
			err := p.Check(ap)
			if (err == nil) != want {
				t.Errorf("%+v.Check(%s) = %v, want admitted %v", p, c.addr, err, want)
			}
			var ae *AddrError
			if err != nil && (!errors.Is(err, ErrAddrRefused) || !errors.As(err, &ae) || ae.Class != c.class || ae.Addr != ap) {
				t.Errorf("%+v.Check(%s) = %#v, want an *AddrError of class %v matching ErrAddrRefused", p, c.addr, err, c.class)
			}
		}
	}
	var ae *AddrError
	if err := (AddrPolicy{AllowLoopback: true, AllowPrivate: true}).Check(netip.AddrPort{}); !errors.As(err, &ae) || ae.Class != AddrInvalid {
		t.Errorf("Check(zero AddrPort) = %v", err)
	}
	// The class names are what a GWebCache says after "Rejected IP: ".
	err := AddrPolicy{}.Check(netip.MustParseAddrPort("127.0.0.1:0"))
	if !errors.As(err, &ae) || ae.Class.String() != "port 0" {
		t.Errorf("Check(127.0.0.1:0) = %v, want class \"port 0\"", err)
	}
}
