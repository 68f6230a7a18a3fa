package transfer

import (
	"net/netip"
	"testing"
)

// StartGtk is startGtk for the external test package (transfer_test),
// whose interop tests run a whole servent: it returns gtk-gnutella's
// address and a function running one shell command.
func StartGtk(t *testing.T, share, props string) (netip.AddrPort, func(cmd string) string) {
	g := startGtk(t, share, props)
	return g.addr, func(cmd string) string { return g.shell(t, cmd) }
}
