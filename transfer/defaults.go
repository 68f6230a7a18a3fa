package transfer

import "time"

// The defaults and fixed values of package transfer, in one place. A zero
// field of Server or Downloader takes the Default... value here; the others
// are not configurable. Most are gtk-gnutella's (docs/protocol.md §6, §10).
const (
	// DefaultUserAgent is sent as Server (uploads) and User-Agent
	// (downloads) when the UserAgent field is empty.
	DefaultUserAgent = "gnutella"

	// DefaultUploadSlots is Server.Slots: uploads at once (gtk-gnutella's
	// max_uploads).
	DefaultUploadSlots = 4
	// DefaultUploadsPerIP is Server.PerIP: slots one client IP may hold.
	DefaultUploadsPerIP = 1
	// DefaultUploadRetryAfter is Server.RetryAfter: what a 503 asks the
	// client to wait.
	DefaultUploadRetryAfter = 60 * time.Second
	// DefaultQueueSize is Server.QueueSize: places in the PARQ queue.
	DefaultQueueSize = 64
	// DefaultQueuePerIP is Server.QueuePerIP: places one address may hold
	// (one per file it wants).
	DefaultQueuePerIP = 4
	// DefaultQueueRetry is Server.QueueRetry: the Retry-After of the first
	// place (gtk-gnutella's PARQ_TIMER_BY_POS); later places add half of
	// it each, up to maxQueueRetry.
	DefaultQueueRetry = 30 * time.Second
	// maxQueueRetry caps a queued Retry-After (gtk-gnutella's
	// PARQ_MAX_UL_RETRY_DELAY).
	maxQueueRetry = 20 * time.Minute
	// queueMaxEarly is how many requests in a row may come too early
	// (before Retry-After less the slack) before the place is lost; a
	// request in time forgives one.
	queueMaxEarly = 3
	// queueKeepAlive: the first places of the queue keep their connection
	// open between requests (gtk-gnutella's MIN_ALWAYS_QUEUE); the others
	// are closed and come back on a new one.
	queueKeepAlive = 5
	// rateChunk is the most an upload under Server.Bandwidth pays for at a
	// time, and the limiter's burst: small enough that uploads take turns
	// often, big enough that sendfile still does the work. Below 64 KiB/s
	// it is a quarter of a second's worth (at least minRateChunk), so a
	// slow rate still sends something every quarter second.
	rateChunk    = 16 << 10
	minRateChunk = 512
	// rateBurstChunks is the limiter's burst in chunks: an upload that
	// wakes late from its wait finds the tokens of the delay still there
	// (with a burst of one chunk a single upload got 76-78% of the rate).
	rateBurstChunks = 4
	// DefaultIdleTimeout is Server.IdleTimeout: waiting for the next
	// request on a kept-alive connection, reading a request, a write stall,
	// and the GIV write of a callback.
	DefaultIdleTimeout = 60 * time.Second
	// refuseWriteTimeout bounds writing an error answer; closeLinger is how
	// long closeGracefully drains the peer after it.
	refuseWriteTimeout = 5 * time.Second
	closeLinger        = time.Second
	// sendChunk is the most one sendfile call of an unlimited upload is
	// given: how often the upload's Sent and the server's BytesSent move
	// on, and the write deadline with them (sendBody).
	sendChunk = 1 << 20

	// DefaultMaxActive is Downloader.MaxActive: downloads at once.
	DefaultMaxActive = 4
	// DefaultMaxSources is Downloader.MaxSources: sources one download
	// fetches from at once (gtk-gnutella allows up to 40 per file; 8 fill
	// a link without holding many upload slots of the network).
	DefaultMaxSources = 8
	// DefaultChunkSize is Downloader.ChunkSize: the most one request asks
	// for (gtk-gnutella's dl_minchunksize, 512 KiB).
	DefaultChunkSize = 512 << 10
	// meshPoll is how often a waiting download looks for new sources in
	// the Downloader's Mesh.
	meshPoll = 30 * time.Second
	// partialRecheck is how soon a partial source that had none of the
	// bytes we still need is asked again: it is downloading too, and what
	// it gets meanwhile may be what we lack.
	partialRecheck = 10 * time.Second
	// DefaultRetryAfter is Downloader.RetryAfter: the wait after a 503
	// without Retry-After (gtk-gnutella's).
	DefaultRetryAfter = 60 * time.Second
	// DefaultConnectTimeout is Downloader.ConnectTimeout: a direct connect.
	DefaultConnectTimeout = 20 * time.Second
	// DefaultPushTimeout is Downloader.PushTimeout: waiting for the GIV
	// after a Push (gtk-gnutella's).
	DefaultPushTimeout = 90 * time.Second
	// DefaultStallTimeout is Downloader.StallTimeout: waiting for the
	// response head or for the next body bytes.
	DefaultStallTimeout = 60 * time.Second
	// DefaultRequestTimeout is Downloader.RequestTimeout: the most one
	// request may take, head and body, however steadily the bytes come;
	// a request cut by it with bytes received is resumed at once.
	DefaultRequestTimeout = 5 * time.Minute
	// DefaultMinRate is Downloader.MinRate (bytes/s): while another
	// download waits for a slot, a source slower than this over RateWindow
	// gives up its slot and is not tried for sourceBackoffMax.
	DefaultMinRate = 1024
	// DefaultRateWindow is Downloader.RateWindow: the span MinRate is
	// averaged over.
	DefaultRateWindow = 30 * time.Second
	// PushProxyTimeout bounds a whole push-proxy request (RequestPushProxy).
	PushProxyTimeout = 30 * time.Second
	// Overlap is how many bytes a resumed download asks for again and
	// compares with what it has (gtk-gnutella's download_overlap_range).
	Overlap = 512
	// Backout is how much of the partial file is discarded when the
	// overlapping bytes do not match (gtk-gnutella backs off 50 KB).
	Backout = 50 << 10
	// maxRetryAfter caps a Retry-After we obey.
	maxRetryAfter = 7 * 24 * time.Hour
	// sourceBackoffMax caps retryBackoff, and is the wait before a source
	// that cannot give the range we need is tried again.
	sourceBackoffMax = 10 * time.Minute
)

// The download mesh (dmesh.go, docs/protocol.md "The download mesh").
const (
	// DefaultMeshPerFile is MeshConfig.MaxPerFile: alternate locations
	// kept for one file (gtk-gnutella keeps up to 256).
	DefaultMeshPerFile = 50
	// DefaultMeshFiles is MeshConfig.MaxFiles: files the mesh remembers
	// locations for; the least recently used is forgotten first.
	DefaultMeshFiles = 1000
	// DefaultMeshExpiry is MeshConfig.Expiry: a location nobody mentioned
	// again for this long is forgotten.
	DefaultMeshExpiry = time.Hour
	// meshBadLifetime is how long a location we found bad ourselves
	// (Mesh.Bad) is refused and sent as X-NAlt (gtk-gnutella's
	// BAN_LIFETIME).
	meshBadLifetime = 2 * time.Hour
	// meshNAltVeto is how long a location a peer called bad (X-NAlt) is
	// not taken back from another peer's X-Alt (gtk-gnutella's
	// DMESH_BAN_VETO); the source's own QueryHit lifts it.
	meshNAltVeto = 5 * time.Minute
	// maxAltItems is how many items of one X-Alt, X-NAlt or X-Falt value
	// are read; the rest is ignored.
	maxAltItems = 100
	// maxLearnNew is how many locations the mesh did not know one request
	// or response head may add (Mesh.Learn).
	maxLearnNew = 20
	// maxFaltTokens is how many ";" parts of one X-Falt item are read, and
	// maxFaltProxies how many push proxies of one firewalled location are
	// kept (gtk-gnutella's FW_MAX_PROXIES).
	maxFaltTokens  = 16
	maxFaltProxies = 4
	// maxSendAlt, maxSendNAlt and maxSendFalt bound the locations one
	// request or answer carries; meshLineMax bounds the length of one such
	// header line, under protocol.MaxHandshakeLine.
	maxSendAlt  = 10
	maxSendNAlt = 10
	maxSendFalt = 5
	meshLineMax = 900
)
