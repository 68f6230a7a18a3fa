package servent

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/rs/zerolog"

	"gnutella/firewall"
	"gnutella/protocol"
	"gnutella/routing"
)

// Version is this servent's version; User-Agent is "gnutella/<Version>".
const Version = "0.1.0"

// VendorCode is the 4-letter code in our QueryHit trailers and vendor
// messages. "GNUT" is not used by any servent in the known vendor lists.
var VendorCode = protocol.VendorCode{'G', 'N', 'U', 'T'}

// Mode is the role a servent takes in the two-tier network.
type Mode uint8

const (
	// ModeUltrapeer links to other ultrapeers and accepts leaves.
	ModeUltrapeer Mode = iota
	// ModeLeaf keeps a few ultrapeer links and relays nothing.
	ModeLeaf
	// ModeAuto starts as a leaf and becomes an ultrapeer when eligible.
	ModeAuto
)

func (m Mode) String() string {
	switch m {
	case ModeUltrapeer:
		return "ultrapeer"
	case ModeLeaf:
		return "leaf"
	case ModeAuto:
		return "auto"
	}
	return "unknown"
}

// Config holds every setting of a servent, with the defaults of
// DefaultConfig. It is the one place where defaults live.
type Config struct {
	// ListenAddr is where the servent's one port listens (Gnutella links,
	// HTTP, GIV and connect-back all arrive there).
	ListenAddr string
	// AdvertiseAddr, if valid, is the address put in our Pongs, QueryHits and
	// Listen-IP headers. Otherwise the listener's address is used, with its
	// IP replaced by the one peers report in Remote-IP when it is unspecified.
	AdvertiseAddr netip.AddrPort
	// DataDir holds the servent ID, the host cache and later the share and
	// download state. Empty means nothing is persisted.
	DataDir string
	// Peers are dialled at start and kept in the host cache, loopback and
	// private ones too whatever AllowLoopback and AllowPrivate say (they
	// are not advertised then); hostile ones are not.
	Peers []string
	// GWebCaches are GWebCache URLs asked for hosts when the host cache runs dry.
	GWebCaches []string

	// Mode is the two-tier role.
	Mode Mode
	// WantLinks is how many ultrapeer links the connector keeps dialling for.
	WantLinks int
	// MaxLinks is how many ultrapeer (or 0.4/normal) links we accept at most;
	// an inbound connection beyond it gets 503 with X-Try-Ultrapeers.
	MaxLinks int
	// MaxLeaves is how many leaves an ultrapeer accepts. Its default is
	// sized from the descriptor limit and memory (DefaultMaxLeaves).
	MaxLeaves int
	// LeafUltrapeers is how many ultrapeers a leaf keeps (and accepts): 3 as
	// most servents do ([DQ]), gtk-gnutella 4.
	LeafUltrapeers int

	// TTL: MaxTTL clamps hops+TTL when relaying (gtk-gnutella's by default,
	// 7 for a 0.4-style network); HardTTL drops anything above it. See
	// routing.TTLPolicy.
	MaxTTL  uint8
	HardTTL uint8

	// Deflate offers and accepts compressed links (Accept-Encoding: deflate).
	Deflate bool
	// TLS serves inbound connections that begin with a TLS handshake over
	// TLS (links and HTTP alike), says "X-Features: tls/1.0" in handshakes,
	// and dials peers that said it over TLS (tls.go).
	TLS bool
	// PongCaching answers pings from the pong cache (0.6). When false, pings
	// are flooded and pongs routed back as in 0.4.
	PongCaching bool
	// PingThrottle is the least time between two pings accepted from one link.
	PingThrottle time.Duration
	// PongCacheLifetime is how long cached pongs are served before the cache
	// is refreshed by pinging neighbours.
	PongCacheLifetime time.Duration

	// UltrapeerQRP announces X-Ultrapeer-Query-Routing: ultrapeers exchange
	// aggregate QRP tables and use them for the last hop ([UPQRP]). Turned
	// off, every query is flooded to the last hop as in a 0.4 network.
	UltrapeerQRP bool
	// QRPAggregateInterval is the least time between two rebuilds of an
	// ultrapeer's aggregate QRP table ([UPQRP]: about a minute).
	QRPAggregateInterval time.Duration
	// QRPMemory is the bytes that the QRP tables received from all links
	// may take together, with the patches being received (qrp.go): a RESET
	// or PATCH that would take more is refused with Bye 413 and the link
	// closed. 0 or less means 256 KiB, a table of the largest size we
	// accept (2^21 slots), for each ultrapeer link and each of the first 300
	// leaves (83 MiB with 300 leaves and 32 links), and 16 KiB, twice a
	// dense 2^16-slot table, for each leaf above them (156 MiB with 5,000),
	// but no more than the eighth of memory that DefaultMaxLeaves gives the
	// leaves (and no less than 64 MiB).
	QRPMemory int64
	// DQPerHop and DQProbeWait pace dynamic querying: the wait after each
	// step per unit of TTL (2.4 s, LimeWire) and after the probe.
	DQPerHop, DQProbeWait time.Duration
	// UltrapeerAfter is how long a servent in auto mode must have been up
	// (and reachable) before it becomes an ultrapeer; ModeSwitchEvery is the
	// least time between two role switches (gtk: 1800 s).
	UltrapeerAfter, ModeSwitchEvery time.Duration

	// HandshakeTimeout bounds an inbound connection's first line and
	// handshake; ConnectTimeout bounds an outbound dial plus handshake.
	// The deadline is absolute: set once at accept, for the first line and
	// all three steps together (an HTTP request's head likewise).
	HandshakeTimeout time.Duration
	ConnectTimeout   time.Duration

	// Admission of inbound connections (admission.go). MaxPending caps the
	// connections accepted that are not links (first line or handshake not
	// done yet, or served over HTTP), MaxPendingPerAddr those from one
	// IPv4 address or IPv6 /64; beyond
	// them a new connection is closed at once, unread (or, when only the
	// total is reached, the oldest of the address holding the most is
	// closed for it). gtk-gnutella likewise bounds its connecting nodes.
	MaxPending        int
	MaxPendingPerAddr int
	// HandshakeRate Gnutella handshakes per HandshakeRateWindow are taken
	// from one address (IPv4, or IPv6 /64); more get "429 Too Many
	// Requests" (gtk-gnutella: a third in a minute). 0 turns it off.
	// RateWhitelist is never limited, nor loopback unless
	// RateLimitLoopback (so that a local testnet works by default).
	// Neither exemption applies to the caps above or to the descriptor
	// budget.
	HandshakeRate       int
	HandshakeRateWindow time.Duration
	// AcceptRate connections per AcceptRateWindow are accepted from one
	// address; more are closed at accept, unread (a connect-and-close
	// flood). 0 turns it off. The same exemptions apply.
	AcceptRate        int
	AcceptRateWindow  time.Duration
	RateWhitelist     []netip.Prefix
	RateLimitLoopback bool
	// FDReserve is how many descriptors below RLIMIT_NOFILE (read at
	// Start, Linux) no pending connection may take: they stay for outbound
	// dials, downloads, the control API, the host-cache file and the log.
	// Established links and uploads keep theirs; when the budget is spent,
	// new pending connections are closed at accept.
	FDReserve int
	// AlivePingInterval is how often a link that has been quiet is pinged
	// (TTL 1); AliveMaxMissed unanswered ones close it with Bye 406.
	AlivePingInterval time.Duration
	AliveMaxMissed    int
	// IdleTimeout closes a link that sent nothing for this long (Bye 405).
	IdleTimeout time.Duration
	// FlowControlTimeout closes a link whose send queue stays above its
	// high-water mark this long (Bye 405).
	FlowControlTimeout time.Duration
	// ByeGrace is how long we keep reading (and discarding) after sending Bye.
	ByeGrace time.Duration
	// ParkAfter is how long a plain TCP link (Linux) may be quiet before
	// its reader goroutine and read buffer (and a compressed link's
	// inflater, once its peer has sync-flushed: inflate.go) are given up
	// and its socket waits in the servent's poller, to be woken by the next
	// byte (park.go): what makes an idle leaf cheap. 0 never parks. While
	// more than 512 compressed links hold their inflater, a compressed link
	// parks after 100 ms of quiet instead (park.go).
	ParkAfter time.Duration

	// SendQueueBytes bounds each link's send queue; flow control starts at half.
	SendQueueBytes int
	// Limits are the payload caps per type.
	Limits protocol.Limits

	// DupCacheSize bounds the duplicate cache; RouteTableSize each route table.
	DupCacheSize   int
	RouteTableSize int

	// HostCacheSize bounds the host cache. AllowLoopback and AllowPrivate let
	// loopback and private addresses into it (a local testnet needs loopback).
	HostCacheSize int
	AllowLoopback bool
	AllowPrivate  bool

	// Seed, when not 0, seeds this servent's random choices (walker hops,
	// gossip draws) so an experiment can be replayed; 0 draws a random seed.
	Seed uint64

	// Transport is how we listen and dial; nil means TCP.
	Transport Transport
	// Hostiles is the hostile list and ban set (hostiles.go); nil means
	// one read from DataDir's hostiles.txt and bans.txt.
	Hostiles *firewall.Hostiles
	// Logger receives structured logs; the zero value is silent.
	Logger zerolog.Logger

	// The seams through which the packages above servent take part; Node
	// fills them all (node.go). A nil one has a safe default.
	//
	// Library answers queries and gives our QRP table and share counts
	// (library.go; nil: we share nothing). Transfers serves GET, HEAD and
	// GIV on our port (accept.go; nil: 404, close). Firewall says whether
	// we are reachable and hears inbound connections (firewall.go; nil:
	// reachable). Pushes is given the Pushes addressed to us (push.go;
	// nil: ignored).
	Library   Library
	Transfers Transfers
	Firewall  Firewall
	Pushes    PushHandler
	// Trace, when set, sees every descriptor a link hands to the router,
	// with whether it was a duplicate (route.go), and every GUESS query
	// that came by datagram with a valid key, with a nil link (guess.go).
	// Tests count with it.
	Trace TraceFunc
	// UDP turns on the UDP socket on the listening port (udp.go), when the
	// Transport has a UDP side (PacketTransport). UHCs are UDP host caches
	// ("host:port") pinged for ultrapeers when the host cache has none to
	// dial (--uhc). UDPRate datagrams per UDPRateWindow are read from one
	// address (loopback included); 0 turns the budget off.
	UDP bool
	// OOB asks for out-of-band hits in our searches (oob.go): on by
	// default; it takes effect only while UDP runs, we are not firewalled
	// and we have an IPv4 address to put in the MUID.
	OOB bool
	// OOBProxy lets us, as an ultrapeer, OOB-proxy our leaves' queries
	// that do not ask for out-of-band hits (oobproxy.go): on by default;
	// it takes effect under the same conditions as OOB.
	OOBProxy      bool
	UHCs          []string
	UDPRate       int
	UDPRateWindow time.Duration
	// HostileBan is how long the address of a peer whose link we close for
	// hostile input (a GGEP inflate bomb, hostiles.go) is refused and never
	// dialled; 0 bans nothing. Loopback is banned only with
	// RateLimitLoopback.
	HostileBan time.Duration
	// OnHostile, when set, also hears the address of every such peer. It is
	// called on the link's reader with no lock held and must not block.
	OnHostile func(addr netip.Addr, reason string)
	// OnDial, when set, hears how each dial of the connector ended: err is
	// nil when the link came up. The CLI tells the user why a --peer does
	// not link. It is called on the dialling goroutine and must not block.
	OnDial func(addr netip.AddrPort, err error)
	// HitSpeed, when set, says the upload speed our QueryHits announce, in
	// kbit/s; nil or 0 announces 1000, a guess, as no better figure is
	// known. Node sets it (transfers.go). It is called for each hit built.
	HitSpeed func() uint32
}

// DefaultConfig returns the defaults, the one place they live (the TTL
// limits are routing.DefaultTTLPolicy's).
func DefaultConfig() Config {
	ttl := routing.DefaultTTLPolicy()
	return Config{
		ListenAddr:           "0.0.0.0:6346",
		Mode:                 ModeUltrapeer,
		WantLinks:            8,
		MaxLinks:             32,
		MaxLeaves:            DefaultMaxLeaves(),
		LeafUltrapeers:       3,
		MaxTTL:               ttl.MaxTTL,
		HardTTL:              ttl.HardLimit,
		Deflate:              true,
		TLS:                  true,
		PongCaching:          true,
		PingThrottle:         3 * time.Second,
		PongCacheLifetime:    20 * time.Second,
		UltrapeerQRP:         true,
		QRPAggregateInterval: time.Minute,
		DQPerHop:             2400 * time.Millisecond,
		DQProbeWait:          7200 * time.Millisecond,
		UltrapeerAfter:       10 * time.Minute,
		ModeSwitchEvery:      30 * time.Minute,
		HandshakeTimeout:     60 * time.Second,
		ConnectTimeout:       30 * time.Second,
		MaxPending:           128,
		MaxPendingPerAddr:    4,
		HandshakeRate:        2,
		HandshakeRateWindow:  time.Minute,
		AcceptRate:           50,
		AcceptRateWindow:     10 * time.Second,
		FDReserve:            defaultFDReserve,
		HostileBan:           10 * time.Minute,
		UDP:                  true,
		OOB:                  true,
		OOBProxy:             true,
		UDPRate:              50,
		UDPRateWindow:        10 * time.Second,
		AlivePingInterval:    20 * time.Second,
		AliveMaxMissed:       6,
		IdleTimeout:          180 * time.Second,
		FlowControlTimeout:   180 * time.Second,
		ByeGrace:             5 * time.Second,
		ParkAfter:            3 * time.Second,
		SendQueueBytes:       96 << 10,
		Limits:               protocol.DefaultLimits(),
		DupCacheSize:         1 << 16,
		RouteTableSize:       100_000,
		HostCacheSize:        4096,
	}
}

// ParseMode reads "leaf", "ultrapeer" or "auto".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "leaf":
		return ModeLeaf, nil
	case "ultrapeer", "":
		return ModeUltrapeer, nil
	case "auto":
		return ModeAuto, nil
	}
	return 0, fmt.Errorf("unknown mode %q: use leaf, ultrapeer or auto", s)
}
