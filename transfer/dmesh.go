package transfer

import (
	"cmp"
	"encoding/hex"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/rs/zerolog"

	"gnutella/firewall"
	"gnutella/protocol"
)

// The download mesh (docs/protocol.md "The download mesh"): the alternate
// locations of the files we download or serve, learnt from QueryHits and
// from the X-Alt, X-NAlt and X-Falt headers of both sides of a transfer,
// and passed on in the same headers. The mesh only remembers and tells: it
// never connects anywhere by itself. Its Sources are used by downloads the
// user started, under the Downloader's own address policy.

// FaltFeature is the X-Features token that asks for firewalled alternate
// locations (X-Falt).
const FaltFeature = "fwalt/0.1"

// AltLoc is one alternate location of a file. A direct one has Addr; a
// firewalled one has GUID (its servent ID, reached by a Push) and up to
// maxFaltProxies push Proxies, and Addr only if it was told.
type AltLoc struct {
	Addr    netip.AddrPort
	GUID    protocol.GUID
	Proxies []netip.AddrPort
}

// Firewalled reports whether l is reached through a Push.
func (l AltLoc) Firewalled() bool { return !l.GUID.IsZero() }

// ErrBadAlt is what ParseAlt and ParseFalt return when an item is not an
// alternate location; the items that are come back all the same.
var ErrBadAlt = errors.New("transfer: malformed alternate location")

// ParseAlt reads an X-Alt or X-NAlt value: items "ip[:port]" (port 6346 if
// missing, IPv6 in brackets) separated by "," or ";". "tls=<hex>" items
// (which say which items speak TLS) are skipped. At most maxAltItems items
// are read. The addresses are not judged here beyond being an address with a
// port: the Mesh does that.
func ParseAlt(v string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	var err error
	for n := 0; v != "" && n < maxAltItems; n++ {
		var item string
		if i := strings.IndexAny(v, ",;"); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, ""
		}
		item = strings.TrimSpace(item)
		if item == "" || hasPrefixFold(item, "tls=") {
			continue
		}
		if ap, ok := protocol.ParseTryEntry(item); ok {
			out = append(out, ap)
		} else {
			err = ErrBadAlt
		}
	}
	return out, err
}

// ParseFalt reads an X-Falt value: items separated by ",", each
// "<guid>;<options>;<port:ip>;pptls=<hex>;<ip:port>;<ip:port>..." where only
// the GUID (32 hex digits, or 26 base32 characters) is mandatory. Options
// ("fwt/1") and "pptls=" are skipped; "port:ip" before the first proxy is the
// servent's own address (gtk-gnutella and LimeWire write it reversed);
// anything else that is not "ip:port" (a timestamp) is ignored. At most
// maxAltItems items, maxFaltTokens parts per item and maxFaltProxies proxies
// are read.
func ParseFalt(v string) ([]AltLoc, error) {
	var out []AltLoc
	var err error
	for n := 0; v != "" && n < maxAltItems; n++ {
		var item string
		item, v, _ = strings.Cut(v, ",")
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		loc, ok := parseFaltItem(item)
		if !ok {
			err = ErrBadAlt
			continue
		}
		out = append(out, loc)
	}
	return out, err
}

func parseFaltItem(item string) (AltLoc, bool) {
	var loc AltLoc
	tok, rest, _ := strings.Cut(item, ";")
	tok = strings.TrimSpace(tok)
	var err error
	switch len(tok) {
	case 32:
		loc.GUID, err = protocol.ParseGUID(tok)
	case 26:
		loc.GUID, err = protocol.ParseGUIDBase32(tok)
	default:
		return loc, false
	}
	if err != nil || loc.GUID.IsZero() {
		return AltLoc{}, false
	}
	for n := 1; rest != "" && n < maxFaltTokens; n++ {
		tok, rest, _ = strings.Cut(rest, ";")
		tok = strings.TrimSpace(tok)
		switch {
		case tok == "" || strings.Contains(tok, "/") || hasPrefixFold(tok, "pptls="):
			continue
		case len(loc.Proxies) == 0 && !loc.Addr.IsValid():
			if ap, ok := parsePortIP(tok); ok {
				loc.Addr = ap
				continue
			}
		}
		ap, err := netip.ParseAddrPort(tok)
		if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
			continue
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if len(loc.Proxies) < maxFaltProxies && !slices.Contains(loc.Proxies, ap) {
			loc.Proxies = append(loc.Proxies, ap)
		}
	}
	return loc, true
}

// parsePortIP reads the reversed "port:ip" form of an IPv4 address.
func parsePortIP(s string) (netip.AddrPort, bool) {
	p, a, ok := strings.Cut(s, ":")
	if !ok || p == "" || len(p) > 5 {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}, false
	}
	addr, err := netip.ParseAddr(a)
	if err != nil || !addr.Is4() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(addr, uint16(port)), true
}

// FormatAlt writes addresses as an X-Alt or X-NAlt value: "ip:port, ip:port"
// (the port always written).
func FormatAlt(addrs []netip.AddrPort) string {
	var b strings.Builder
	for i, a := range addrs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.String())
	}
	return b.String()
}

// FormatFalt writes firewalled locations as an X-Falt value:
// "<GUID hex>;ip:port;ip:port, ..." with the push proxies of each.
func FormatFalt(locs []AltLoc) string {
	var b strings.Builder
	for i, l := range locs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(faltItem(l))
	}
	return b.String()
}

func faltItem(l AltLoc) string {
	s := strings.ToUpper(hex.EncodeToString(l.GUID[:]))
	for _, p := range l.Proxies {
		s += ";" + p.String()
	}
	return s
}

// WantsFalt reports whether the X-Features of h name fwalt (any version):
// only such peers get X-Falt.
func WantsFalt(h *protocol.Headers) bool { return h.HasFeature("fwalt") }

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// MeshConfig sets up a Mesh. Zero fields take the Default... values.
type MeshConfig struct {
	// MaxPerFile bounds the locations kept for one file
	// (DefaultMeshPerFile), and separately the bad ones remembered.
	MaxPerFile int
	// MaxFiles bounds the files remembered; the least recently used goes
	// first (DefaultMeshFiles).
	MaxFiles int
	// Expiry: a location nobody mentioned again (in a hit, a header, or by
	// delivering bytes) for this long is forgotten (DefaultMeshExpiry).
	Expiry time.Duration
	// AddrPolicy, when set, refuses the direct locations it does not admit;
	// a firewalled location's proxies are judged by it too. Whatever it
	// says, the invalid, unspecified, multicast, broadcast and reserved
	// addresses and port 0 are refused.
	AddrPolicy *firewall.AddrPolicy
	// IsSelf, when set, tells our own addresses, which are never taken as
	// locations.
	IsSelf func(netip.AddrPort) bool
	// Advertise, when set, gives our own location for a file, sent first
	// in the X-Alt of our download requests (AppendRequestHeaders) so that
	// the source tells other downloaders about us: a node gives its address
	// while it shares what it has of the file and is reachable, or, while
	// it is firewalled, its servent ID and push proxies, sent first in
	// X-Falt to a source that takes it.
	Advertise func(sha1 protocol.SHA1) (AltLoc, bool)
	Logger    zerolog.Logger
}

// Mesh is the download mesh: per file (by SHA-1) the alternate locations
// known, good or bad. It is safe for concurrent use, and a nil *Mesh is
// valid: every method does nothing and returns nothing.
//
// What it believes: a location from a QueryHit (Add) or named by a peer's
// X-Alt or X-Falt (Learn) is kept until Expiry. One we found bad ourselves
// (Bad) is dropped, refused for meshBadLifetime whoever names it, and sent
// to peers as X-NAlt. A peer's X-NAlt drops a location unless it delivered
// verified bytes to us (Good) and the X-NAlt does not come from that very
// host: a hostile peer must not be able to talk us out of our good sources.
// A location dropped by an X-NAlt is not taken back from another X-Alt for
// meshNAltVeto, only from the source's own QueryHit; it is never passed on
// as X-NAlt, since we do not know it to be bad.
type Mesh struct {
	cfg   MeshConfig
	now   func() time.Time
	mu    sync.Mutex
	files *simplelru.LRU[protocol.SHA1, *meshFile]
}

// meshKey names a location: Addr for a direct one, GUID for a firewalled one.
type meshKey struct {
	addr netip.AddrPort
	guid protocol.GUID
}

type meshEntry struct {
	loc  AltLoc
	seen time.Time
	good bool // delivered verified bytes to us
	// index and name are the hit's, when a hit named the location: Sources
	// gives them back so that a downloader sees the same Source as the hit.
	index uint32
	name  string
}

type meshBad struct {
	at  time.Time
	own bool // found bad by us (Bad), not only named in an X-NAlt
}

type meshFile struct {
	locs map[meshKey]*meshEntry
	bad  map[meshKey]meshBad
}

// NewMesh returns an empty mesh.
func NewMesh(cfg MeshConfig) *Mesh {
	if cfg.MaxPerFile <= 0 {
		cfg.MaxPerFile = DefaultMeshPerFile
	}
	if cfg.MaxFiles <= 0 {
		cfg.MaxFiles = DefaultMeshFiles
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = DefaultMeshExpiry
	}
	files, _ := simplelru.NewLRU[protocol.SHA1, *meshFile](cfg.MaxFiles, nil)
	return &Mesh{cfg: cfg, now: time.Now, files: files}
}

// admit reports whether ap may be a location or a push proxy.
func (m *Mesh) admit(ap netip.AddrPort) bool {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	switch firewall.ClassifyAddr(ap) {
	case firewall.AddrInvalid, firewall.AddrPortZero, firewall.AddrUnspecified,
		firewall.AddrMulticast, firewall.AddrBroadcast, firewall.AddrReserved:
		return false
	}
	if m.cfg.AddrPolicy != nil && m.cfg.AddrPolicy.Check(ap) != nil {
		return false
	}
	return m.cfg.IsSelf == nil || !m.cfg.IsSelf(ap)
}

// direct returns the key and location of a direct address, if admitted.
func (m *Mesh) direct(ap netip.AddrPort) (meshKey, AltLoc, bool) {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if !m.admit(ap) {
		return meshKey{}, AltLoc{}, false
	}
	return meshKey{addr: ap}, AltLoc{Addr: ap}, true
}

// firewalled returns the key and location of a firewalled servent, its
// proxies filtered, if its GUID is set.
func (m *Mesh) firewalled(l AltLoc) (meshKey, AltLoc, bool) {
	if l.GUID.IsZero() {
		return meshKey{}, AltLoc{}, false
	}
	out := AltLoc{GUID: l.GUID}
	if m.admit(l.Addr) {
		out.Addr = netip.AddrPortFrom(l.Addr.Addr().Unmap(), l.Addr.Port())
	}
	for _, p := range l.Proxies {
		p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
		if len(out.Proxies) < maxFaltProxies && m.admit(p) && !slices.Contains(out.Proxies, p) {
			out.Proxies = append(out.Proxies, p)
		}
	}
	return meshKey{guid: l.GUID}, out, true
}

// keyOf places a download Source in the mesh: direct if it is not a push
// source and its address is admitted, else firewalled by its servent ID.
func (m *Mesh) keyOf(src Source) (meshKey, AltLoc, bool) {
	if !src.Push {
		if k, l, ok := m.direct(src.Addr); ok {
			return k, l, true
		}
	}
	return m.firewalled(AltLoc{Addr: src.Addr, GUID: src.ServentID, Proxies: src.PushProxies})
}

// file returns the entry of sha1, created if create is set. m.mu is held.
func (m *Mesh) file(sha1 protocol.SHA1, create bool) *meshFile {
	if f, ok := m.files.Get(sha1); ok {
		return f
	}
	if !create {
		return nil
	}
	f := &meshFile{locs: make(map[meshKey]*meshEntry), bad: make(map[meshKey]meshBad)}
	m.files.Add(sha1, f)
	return f
}

// badNow reports whether k is refused now: found bad by us, or (unless
// firstHand) named in a recent X-NAlt. Stale marks are forgotten. m.mu is
// held.
func (m *Mesh) badNow(f *meshFile, k meshKey, now time.Time, firstHand bool) bool {
	b, ok := f.bad[k]
	if !ok {
		return false
	}
	life := meshNAltVeto
	if b.own {
		life = meshBadLifetime
	}
	if now.Sub(b.at) >= life {
		delete(f.bad, k)
		return false
	}
	if !b.own && firstHand {
		delete(f.bad, k)
		return false
	}
	return true
}

// put adds or refreshes a location and returns its entry, or nil if it is
// refused. m.mu is held.
func (m *Mesh) put(f *meshFile, k meshKey, l AltLoc, now time.Time, firstHand bool) *meshEntry {
	if m.badNow(f, k, now, firstHand) {
		return nil
	}
	if e, ok := f.locs[k]; ok {
		e.seen = now
		if len(l.Proxies) > 0 {
			e.loc.Proxies = l.Proxies
		}
		if l.Addr.IsValid() {
			e.loc.Addr = l.Addr
		}
		return e
	}
	if len(f.locs) >= m.cfg.MaxPerFile {
		// Make room by the stalest location, sparing the good ones if any
		// other is left.
		var victim meshKey
		var ve *meshEntry
		for vk, e := range f.locs {
			if ve == nil || (ve.good && !e.good) || (ve.good == e.good && e.seen.Before(ve.seen)) {
				victim, ve = vk, e
			}
		}
		delete(f.locs, victim)
	}
	e := &meshEntry{loc: l, seen: now}
	f.locs[k] = e
	return e
}

// markBad remembers k as bad. m.mu is held.
func (m *Mesh) markBad(f *meshFile, k meshKey, now time.Time, own bool) {
	if b, ok := f.bad[k]; ok && b.own && !own {
		return // our own finding outweighs a peer's word
	}
	if _, ok := f.bad[k]; !ok && len(f.bad) >= m.cfg.MaxPerFile {
		var victim meshKey
		var vb meshBad
		first := true
		for bk, b := range f.bad {
			if first || b.at.Before(vb.at) {
				victim, vb, first = bk, b, false
			}
		}
		delete(f.bad, victim)
	}
	f.bad[k] = meshBad{at: now, own: own}
}

// Learn takes the X-Alt, X-NAlt and X-Falt of a request or response head
// about the file sha1, received from the peer at from (its address as the
// connection shows it).
func (m *Mesh) Learn(sha1 protocol.SHA1, h *protocol.Headers, from netip.AddrPort) {
	if m == nil || sha1.IsZero() || h == nil {
		return
	}
	var alts, nalts []netip.AddrPort
	var falts []AltLoc
	for _, v := range h.Values("X-Alt") {
		a, _ := ParseAlt(v)
		alts = append(alts, a...)
	}
	for _, v := range h.Values("X-NAlt") {
		a, _ := ParseAlt(v)
		nalts = append(nalts, a...)
	}
	for _, v := range h.Values("X-Falt") {
		a, _ := ParseFalt(v)
		falts = append(falts, a...)
	}
	if len(alts)+len(nalts)+len(falts) == 0 {
		return
	}
	now := m.now()
	added, dropped := 0, 0
	m.mu.Lock()
	f := m.file(sha1, len(alts)+len(falts) > 0)
	for _, a := range nalts {
		if f == nil {
			break
		}
		k := meshKey{addr: netip.AddrPortFrom(a.Addr().Unmap(), a.Port())}
		if e, ok := f.locs[k]; ok && e.good && k.addr.Addr() != from.Addr().Unmap() {
			continue
		}
		if _, ok := f.locs[k]; ok {
			delete(f.locs, k)
			dropped++
		}
		m.markBad(f, k, now, false)
	}
	// One head adds at most maxLearnNew locations the mesh did not know, so
	// that a peer cannot replace a file's whole mesh with one request; the
	// ones it names that we know are refreshed all the same.
	fresh := 0
	learn := func(k meshKey, l AltLoc) {
		if _, known := f.locs[k]; !known {
			if fresh == maxLearnNew {
				return
			}
			fresh++
		}
		if m.put(f, k, l, now, false) != nil {
			added++
		}
	}
	for _, a := range alts {
		if k, l, ok := m.direct(a); ok {
			learn(k, l)
		}
	}
	for _, fl := range falts {
		if k, l, ok := m.firewalled(fl); ok {
			learn(k, l)
		}
	}
	m.mu.Unlock()
	m.cfg.Logger.Debug().Stringer("urn", sha1).Stringer("from", from).
		Int("alt", len(alts)).Int("falt", len(falts)).Int("nalt", len(nalts)).
		Int("taken", added).Int("dropped", dropped).Msg("mesh: learnt")
}

// Add takes the source of a QueryHit for sha1. A hit is the source's own
// word, so it lifts a peer's X-NAlt (but not our own Bad).
func (m *Mesh) Add(sha1 protocol.SHA1, src Source) {
	if m == nil || sha1.IsZero() {
		return
	}
	k, l, ok := m.keyOf(src)
	if !ok {
		return
	}
	now := m.now()
	m.mu.Lock()
	if e := m.put(m.file(sha1, true), k, l, now, true); e != nil && (src.Index != 0 || src.Name != "") {
		e.index, e.name = src.Index, src.Name
	}
	m.mu.Unlock()
}

// AddAlt takes second-hand direct locations of sha1, such as the GGEP
// "ALT" of a QueryHit record: believed like an X-Alt, at most maxAltItems.
func (m *Mesh) AddAlt(sha1 protocol.SHA1, addrs []netip.AddrPort) {
	if m == nil || sha1.IsZero() || len(addrs) == 0 {
		return
	}
	addrs = addrs[:min(len(addrs), maxAltItems)]
	now := m.now()
	m.mu.Lock()
	f := m.file(sha1, true)
	for _, a := range addrs {
		if k, l, ok := m.direct(a); ok {
			m.put(f, k, l, now, false)
		}
	}
	m.mu.Unlock()
}

// Good records that src delivered verified bytes of sha1: it is kept, sent
// first, and no peer's X-NAlt removes it.
func (m *Mesh) Good(sha1 protocol.SHA1, src Source) {
	if m == nil || sha1.IsZero() {
		return
	}
	k, l, ok := m.keyOf(src)
	if !ok {
		return
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.put(m.file(sha1, true), k, l, now, true); e != nil {
		e.good = true
	}
}

// Bad records that src sent wrong bytes of sha1 or does not have it: it is
// dropped, never returned by Sources nor taken back for meshBadLifetime,
// and sent to peers as X-NAlt meanwhile.
func (m *Mesh) Bad(sha1 protocol.SHA1, src Source) {
	if m == nil || sha1.IsZero() {
		return
	}
	k, _, ok := m.keyOf(src)
	if !ok {
		return
	}
	now := m.now()
	m.mu.Lock()
	f := m.file(sha1, true)
	delete(f.locs, k)
	m.markBad(f, k, now, true)
	m.mu.Unlock()
}

// live returns the current locations of f, good ones first then the
// freshest, dropping the expired. m.mu is held.
func (m *Mesh) live(f *meshFile, now time.Time) []*meshEntry {
	out := make([]*meshEntry, 0, len(f.locs))
	for k, e := range f.locs {
		if now.Sub(e.seen) >= m.cfg.Expiry {
			delete(f.locs, k)
			continue
		}
		if m.badNow(f, k, now, false) {
			// Cannot happen (a bad mark removes the entry) but costs nothing.
			continue
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *meshEntry) int {
		if a.good != b.good {
			if a.good {
				return -1
			}
			return 1
		}
		return b.seen.Compare(a.seen)
	})
	return out
}

// Sources returns the known locations of sha1 as download sources, direct
// and firewalled (Push with the proxies), the good and freshest first.
func (m *Mesh) Sources(sha1 protocol.SHA1) []Source {
	if m == nil || sha1.IsZero() {
		return nil
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.file(sha1, false)
	if f == nil {
		return nil
	}
	var out []Source
	for _, e := range m.live(f, now) {
		if e.loc.Firewalled() {
			out = append(out, Source{Addr: e.loc.Addr, ServentID: e.loc.GUID, Push: true,
				PushProxies: slices.Clone(e.loc.Proxies), Index: e.index, Name: e.name})
		} else {
			out = append(out, Source{Addr: e.loc.Addr, Index: e.index, Name: e.name})
		}
	}
	return out
}

// AppendHeaders appends the mesh headers of an upload answer about sha1 to
// the peer at to: X-Alt with up to maxSendAlt direct locations (never one
// at to's address), X-Nalt with the ones we found bad, and, if falt (the
// peer's X-Features named fwalt, WantsFalt), X-Falt with up to maxSendFalt
// firewalled ones. Each header is one line of at most meshLineMax bytes and
// is left out when empty.
func (m *Mesh) AppendHeaders(b []byte, sha1 protocol.SHA1, to netip.AddrPort, falt bool) []byte {
	return appendPairs(b, m.headers(sha1, to, falt, AltLoc{}))
}

// appendPairs writes "name: value\r\n" for name, value pairs.
func appendPairs(b []byte, kv []string) []byte {
	for i := 0; i+1 < len(kv); i += 2 {
		b = append(b, kv[i]...)
		b = append(b, ": "...)
		b = append(b, kv[i+1]...)
		b = append(b, "\r\n"...)
	}
	return b
}

// AppendRequestHeaders appends the mesh headers of a download request about
// sha1 to the source at to: X-Features naming fwalt (so that the source
// sends us firewalled locations), then X-Alt and X-Nalt as AppendHeaders
// writes them, with our own location first when MeshConfig.Advertise gives
// one (we share what we have of the file: the source will tell others),
// and, if falt (an earlier answer of the source named fwalt, WantsFalt),
// X-Falt: ours first when we are firewalled, then the firewalled
// locations we know.
func (m *Mesh) AppendRequestHeaders(b []byte, sha1 protocol.SHA1, to netip.AddrPort, falt bool) []byte {
	if m == nil || sha1.IsZero() {
		return b
	}
	b = appendPairs(b, []string{"X-Features", FaltFeature})
	var self AltLoc
	if m.cfg.Advertise != nil {
		if l, ok := m.cfg.Advertise(sha1); ok {
			self = l
		}
	}
	return appendPairs(b, m.headers(sha1, to, falt, self))
}

// sameHost reports whether a location is the peer at to, which is not told
// about itself. A peer's connection comes from some port of its address, not
// its listening port, so the address decides; but on loopback (a test
// network on one machine) every servent has the same address, and only the
// exact address and port do.
func sameHost(loc, to netip.AddrPort) bool {
	a, b := loc.Addr().Unmap(), to.Addr().Unmap()
	if a.IsLoopback() {
		return a == b && loc.Port() == to.Port()
	}
	return a == b
}

// headers returns the headers AppendHeaders writes as name, value pairs,
// with self (if it is a location) first in X-Alt, or, firewalled, first in
// X-Falt when falt.
func (m *Mesh) headers(sha1 protocol.SHA1, to netip.AddrPort, falt bool, self AltLoc) []string {
	if m == nil || sha1.IsZero() {
		return nil
	}
	now := m.now()
	var alt, nalt, fw []string
	switch a := self.Addr; {
	case self.Firewalled():
		if falt && len(self.Proxies) > 0 {
			fw = append(fw, faltItem(self))
		}
	case a.IsValid() && a.Port() != 0 && !a.Addr().IsUnspecified():
		alt = append(alt, netip.AddrPortFrom(a.Addr().Unmap(), a.Port()).String())
	}
	m.mu.Lock()
	if f := m.file(sha1, false); f != nil {
		for _, e := range m.live(f, now) {
			switch {
			case e.loc.Firewalled():
				if falt && len(fw) < maxSendFalt {
					fw = append(fw, faltItem(e.loc))
				}
			case len(alt) < maxSendAlt && !sameHost(e.loc.Addr, to):
				alt = append(alt, e.loc.Addr.String())
			}
		}
		type badAt struct {
			addr netip.AddrPort
			at   time.Time
		}
		var bads []badAt
		for k, bd := range f.bad {
			if bd.own && k.addr.IsValid() && m.badNow(f, k, now, false) {
				bads = append(bads, badAt{k.addr, bd.at})
			}
		}
		slices.SortFunc(bads, func(a, b badAt) int { return cmp.Compare(b.at.UnixNano(), a.at.UnixNano()) })
		for _, bd := range bads {
			if len(nalt) == maxSendNAlt {
				break
			}
			nalt = append(nalt, bd.addr.String())
		}
	}
	m.mu.Unlock()
	var kv []string
	for _, h := range []struct {
		name  string
		items []string
	}{{"X-Alt", alt}, {"X-Nalt", nalt}, {"X-Falt", fw}} {
		if len(h.items) > 0 {
			kv = append(kv, h.name, meshValue(len(h.name)+2, h.items))
		}
	}
	return kv
}

// meshValue joins items with ", ", as many as fit in a line of meshLineMax
// bytes that already holds n.
func meshValue(n int, items []string) string {
	var b strings.Builder
	for i, it := range items {
		if i > 0 {
			if n+2+len(it) > meshLineMax {
				break
			}
			b.WriteString(", ")
			n += 2
		}
		b.WriteString(it)
		n += len(it)
	}
	return b.String()
}
