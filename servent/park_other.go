//go:build !linux

package servent

// pollerSupported is false: outside Linux every link keeps its reader
// goroutine (park.go).
const pollerSupported = false

// poller is empty outside Linux.
type poller struct{}

func (p *poller) add(*Link) bool { return false }
func (p *poller) remove(*Link)   {}
func (p *poller) stop()          {}
