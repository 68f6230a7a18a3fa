// Package netns builds small networks of "hosts" from Linux network namespaces (Lab) and gives servents sockets
// inside them (Transport), for tests that need real kernel behaviour between hosts, such as a firewall that drops
// inbound connections. It needs Linux and root; on other systems the package is empty.
//
// It is test equipment: the gnutella command does not import it, and it does not import testing. A test builds a
// lab with New, skips when the error wraps ErrUnavailable, and closes the lab in t.Cleanup.
package netns
