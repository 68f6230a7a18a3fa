package firewall

import "time"

// The defaults of package firewall, in one place: a zero field of
// DetectorConfig or PushPolicy takes the value here. They are
// gtk-gnutella's.
const (
	// DefaultAssumeFirewalledAfter is DetectorConfig.AssumeFirewalledAfter,
	// gtk-gnutella's watchdog: 1800 s without an incoming connection and
	// we are firewalled again (docs/protocol.md §6.6).
	DefaultAssumeFirewalledAfter = 30 * time.Minute

	// PushPolicy (uploads.c: PUSH_REPLY_MAX, PUSH_REPLY_FREQ,
	// PUSH_BAN_FREQ; docs/protocol.md §6.4):

	// DefaultPushPerIP is PushPolicy.PerIP: callbacks per IP per window.
	DefaultPushPerIP = 5
	// DefaultPushWindow is PushPolicy.Window: the sliding window.
	DefaultPushWindow = 30 * time.Second
	// DefaultPushFailBan is PushPolicy.FailBan: how long an ip:port whose
	// connect-back failed is skipped.
	DefaultPushFailBan = 500 * time.Second
	// DefaultPushMaxEntries is PushPolicy.MaxEntries: the IPs and the bans
	// remembered.
	DefaultPushMaxEntries = 8192
)
