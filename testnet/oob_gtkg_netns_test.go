//go:build linux

package testnet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent"
	"gnutella/testnet/await"
	"gnutella/testnet/gtkg"
	"gnutella/testnet/netns"
	"gnutella/ultrapeer"
)

// oobSubnet is the lab's subnet for the out-of-band tests with gtk-gnutella. gtk-gnutella 1.2.3 does no
// out-of-band hits with an address it deems not routable: its search MUIDs name its address only when
// host_addr_is_routable (search.c search_new_muid), and it clears the OOB flag of a query whose MUID names an
// address that is not (search.c search_request_preprocess: host_is_valid). 127/8, RFC 1918, 169.254/16, 192.0.2/24,
// 198.18/15 are not routable for it (lib/host_addr.c), and 198.51.100/24, 203.0.113/24, 179/8 are in its bogon
// list (extra_files/bogons.txt). 100.64.0.0/10 (RFC 6598 shared address space, carrier-grade NAT) is in neither
// and is never an Internet host's address. The lab's hosts have no route but this /24 on the lab's own bridge:
// nothing sent to these addresses can leave the machine.
var oobSubnet = netip.MustParsePrefix("100.64.0.0/24")

// queryLog records the queries a servent of ours answered.
type queryLog struct {
	mu   sync.Mutex
	seen []seenQuery
}

type seenQuery struct {
	text  string
	oob   bool
	names netip.AddrPort // the address the MUID names
	id    protocol.GUID
	hops  uint8
}

func (q seenQuery) String() string {
	return fmt.Sprintf("%q oob=%v muid=%s names=%v hops=%d", q.text, q.oob, q.id, q.names, q.hops)
}

func (l *queryLog) add(q *protocol.Query, h protocol.Header) {
	l.mu.Lock()
	l.seen = append(l.seen, seenQuery{string(q.Search), q.Flags.Has(protocol.QueryFlagOOB), h.ID.OOBAddrPort(), h.ID, h.Hops})
	l.mu.Unlock()
}

// find returns the last query answered with this text.
func (l *queryLog) find(text string) (seenQuery, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.seen) - 1; i >= 0; i-- {
		if l.seen[i].text == text {
			return l.seen[i], true
		}
	}
	return seenQuery{}, false
}

// Out-of-band query hits between our servents and gtk-gnutella, both ways, with routable addresses: a lab on
// 100.64.0.0/24 (see oobSubnet) with a gtk-gnutella ultrapeer (gtkup) sharing "oobzebu" files, our ultrapeer (ourup)
// linked to it, under ourup our leaf sharing "oobkiwi" files (sharer) and our leaf that searches (querier), and
// two more leaves of ours directly under gtkup (underoob, asking for OOB hits, and underplain, not).
//
//	(a) querier searches; its query reaches gtkup over two hops (querier -> ourup -> gtkup), so gtkup offers its
//	    hits by LIME/12 to the address our MUID names, we ack with LIME/11, and the hits arrive by UDP.
//	(b) gtkup searches (its shell); its query reaches sharer over two hops with gtkup's address in its MUID: we
//	    offer by LIME/12, gtkup acks with LIME/11 carrying a secure-OOB token, our hits go by UDP with it, and
//	    gtkup lists them.
//	(c) what gtk-gnutella does with the query of its own leaf: it never relays the leaf's OOB flag. A leaf query
//	    asking for OOB hits from a leaf that is leaf-guided and not firewalled loses the flag (dq.c
//	    dq_launch_net: "stripped OOB"), and its hits come back by TCP; a query not asking for them is
//	    OOB-proxied: gtkup sends it on under a MUID naming itself, claims the hits by UDP (here from sharer, our
//	    responder), and relays them to the leaf by TCP.
//
// A hop count of 1 would not do: neither servent answers out of band a query from a direct neighbour.
func TestOOBWithGtkGnutellaInNetns(t *testing.T) {
	if os.Getenv("GTKG_BIN") == "" {
		t.Skip("GTKG_BIN is not set: build gtk-gnutella as ../shared/interop/README.md says to run this test")
	}
	lab, err := netns.NewOn("oobgtk", oobSubnet, []netns.HostSpec{{Name: "gtkup"}, {Name: "ourup"},
		{Name: "sharer"}, {Name: "querier"}, {Name: "underoob"}, {Name: "underplain"}})
	if err != nil {
		if errors.Is(err, netns.ErrUnavailable) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { closeLab(t, lab) })
	for _, h := range lab.Hosts {
		t.Logf("lab host %s: %s", h.Name, h.Addr)
	}

	// gtk-gnutella's shared files: distinct words, so every retried search has fresh text (an ultrapeer drops a
	// query text it saw recently from the same leaf).
	gtkWords := []string{"alfa", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}
	gtkShare := t.TempDir()
	for i := range 3 {
		name := fmt.Sprintf("oobzebu %s %d.bin", strings.Join(gtkWords, " "), i)
		if err := os.WriteFile(filepath.Join(gtkShare, name), []byte(strings.Repeat(name, 100+i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// recv_solicited_udp: gtk-gnutella learns it from answers to its UDP pings, which nothing gives here;
	// without it it neither answers out of band (search.c: should_oob) nor OOB-proxies. up_connections = 0:
	// it sends its own searches with no other ultrapeer linked.
	gtkH := lab.Host("gtkup")
	gtk := gtkg.StartWith(t, gtkg.Options{Mode: "ultra", Share: gtkShare,
		Props: "recv_solicited_udp = TRUE\nup_connections = 0",
		Netns: gtkH.Netns(), Addr: gtkH.Addr, Port: 6346})

	var answered queryLog
	ourWords := []string{"lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
		"uniform", "victor", "whiskey"}
	next := 0
	fresh := func() string { // "oobkiwi <a word not searched yet>"
		w := ourWords[next%len(ourWords)]
		next++
		return "oobkiwi " + w
	}
	results := make([]protocol.Result, 4)
	for i := range results {
		results[i] = protocol.Result{Index: uint32(i + 1), Size: 4096,
			Name: []byte(fmt.Sprintf("oobkiwi %s %d.bin", strings.Join(ourWords, " "), i))}
	}
	start := func(host string, mode servent.Mode, share, oob bool) *servent.Servent {
		t.Helper()
		h := lab.Host(host)
		c := servent.DefaultConfig()
		c.Transport = lab.Transport(h)
		c.ListenAddr = netip.AddrPortFrom(h.Addr, 6346).String()
		c.Mode = mode
		c.WantLinks = 0
		c.OOB = oob
		// 100.64/10 is private for us (firewall.ClassifyAddr): in the lab, its addresses must be good reply
		// addresses.
		c.AllowPrivate = true
		if share {
			c.Library = servent.StaticLibrary{
				Results: func(q *protocol.Query, h protocol.Header) []protocol.Result {
					if !strings.Contains(string(q.Search), "oobkiwi") {
						return nil
					}
					answered.add(q, h)
					return results
				},
				Table: ultrapeer.BuildTable(16, [][]string{append([]string{"oobkiwi"}, ourWords...)}, nil),
			}
		}
		s, err := servent.New(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop() })
		if s.UDPAddr() != s.Addr() {
			t.Fatalf("%s's UDP side is on %v, want %v", host, s.UDPAddr(), s.Addr())
		}
		return s
	}
	ourUp := start("ourup", servent.ModeUltrapeer, false, true)
	sharer := start("sharer", servent.ModeLeaf, true, true)
	querier := start("querier", servent.ModeLeaf, false, true)
	underOOB := start("underoob", servent.ModeLeaf, false, true)
	underPlain := start("underplain", servent.ModeLeaf, false, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, l := range []struct {
		s  *servent.Servent
		to netip.AddrPort
	}{{ourUp, gtk.Addr}, {sharer, ourUp.Addr()}, {querier, ourUp.Addr()}, {underOOB, gtk.Addr}, {underPlain, gtk.Addr}} {
		if _, err := l.s.Connect(ctx, l.to); err != nil {
			t.Fatalf("%v to %v: %v", l.s.Addr(), l.to, err)
		}
	}
	// Our ultrapeer sends a query on its last hop only where the QRP table matches: sharer's table, and
	// gtk-gnutella's (ultrapeer QRP), must be in before the first search.
	await.Until(t, "sharer's and gtk-gnutella's QRP tables at our ultrapeer", func() bool {
		tables := 0
		for _, l := range ourUp.Links() {
			if (l.PeerID == sharer.ID() || l.Remote == gtk.Addr) && l.PeerTable() != nil {
				tables++
			}
		}
		return tables == 2
	})

	// searchGtk runs searches of s for "oobzebu <word>", a fresh word each time, until one has 3 results.
	searchGtk := func(t *testing.T, s *servent.Servent, what string) (*routing.Search, int) {
		var search *routing.Search
		i := 0
		await.Until(t, what, func() bool {
			word := gtkWords[i%len(gtkWords)]
			i++
			search = s.Search(ctx, protocol.NewQuery("oobzebu "+word, 0), routing.Flood{TTL: 3}, 3, 8*time.Second)
			return search.Len() >= 3
		})
		return search, i
	}

	t.Run("gtk-gnutella answers our leaf by UDP", func(t *testing.T) {
		search, n := searchGtk(t, querier, "our leaf's search to get gtk-gnutella's hits")
		st := querier.UDPStats().OOB
		t.Logf("querier: %d results in %d searches; OOB %+v", search.Len(), n, st)
		if search.ID.OOBAddrPort() != querier.Addr() {
			t.Errorf("our search's MUID names %v, want %v", search.ID.OOBAddrPort(), querier.Addr())
		}
		if st.Indications == 0 || st.AcksSent == 0 || st.HitsRead == 0 || st.HitsDropped != 0 {
			t.Errorf("no out-of-band hits from gtk-gnutella, or some dropped: %+v", st)
		}
		if udp, all := st.ResultsRead, int64(search.Len()); udp < all {
			t.Errorf("%d of our %d results came by UDP, want all (the rest came by TCP)", udp, all)
		}
	})

	t.Run("our leaf answers gtk-gnutella by UDP", func(t *testing.T) {
		before := sharer.UDPStats().OOB
		var out string
		var text string
		await.Until(t, "gtk-gnutella to list our hits", func() bool {
			text = fresh()
			gtk.Shell(t, "search close")
			gtk.Shell(t, `search add "`+text+`"`)
			// gtk-gnutella sends its searches one per search_queue_spacing (10 s at least, sq.c), the first
			// one 10 s after start: wait longer than that before trying again.
			deadline := time.Now().Add(15 * time.Second)
			for time.Now().Before(deadline) {
				if out = gtk.Shell(t, "search results"); strings.Count(out, "oobkiwi") >= len(results) {
					return true
				}
				time.Sleep(200 * time.Millisecond) // polling gtk-gnutella's shell
			}
			return false
		})
		gtk.Shell(t, "search close")
		q, ok := answered.find(text)
		t.Logf("gtk-gnutella's query at our sharer: %v", q)
		if !ok || !q.oob || q.names != gtk.Addr {
			t.Errorf("gtk-gnutella's query reached our sharer as %v, want OOB naming %v", q, gtk.Addr)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "oobkiwi") {
				t.Logf("gtk-gnutella's result: %s", strings.TrimSpace(line))
			}
		}
		st := sharer.UDPStats().OOB
		t.Logf("sharer's OOB counters: %+v", st)
		if st.Offers == before.Offers || st.AcksRead == before.AcksRead || st.HitsSent == before.HitsSent {
			t.Errorf("our leaf did not answer out of band: before %+v, after %+v", before, st)
		}
	})

	// searchOurs runs searches of s for fresh "oobkiwi" words until one has all of sharer's results, and
	// returns it with the text searched.
	searchOurs := func(t *testing.T, s *servent.Servent, what string) (*routing.Search, string) {
		var search *routing.Search
		var text string
		await.Until(t, what, func() bool {
			text = fresh()
			search = s.Search(ctx, protocol.NewQuery(text, 0), routing.Flood{TTL: 3}, len(results), 8*time.Second)
			return search.Len() >= len(results)
		})
		return search, text
	}

	t.Run("gtk-gnutella strips its leaf's OOB flag", func(t *testing.T) {
		search, text := searchOurs(t, underOOB, "gtk-gnutella's leaf to get our sharer's hits")
		q, _ := answered.find(text)
		st := underOOB.UDPStats().OOB
		t.Logf("leaf of gtk-gnutella asking for OOB: %d results; its query at our sharer: %v; OOB %+v", search.Len(), q, st)
		if q.oob || st.Indications != 0 || st.HitsRead != 0 {
			t.Errorf("gtk-gnutella relayed its leaf's OOB flag: update this test and docs/protocol.md §11.6")
		}
		if q.id != search.ID {
			t.Errorf("the query reached our sharer under MUID %s, want the leaf's %s", q.id, search.ID)
		}
	})

	t.Run("gtk-gnutella OOB-proxies its leaf's query to us", func(t *testing.T) {
		before := sharer.UDPStats().OOB
		search, text := searchOurs(t, underPlain, "gtk-gnutella's leaf to get our sharer's hits by proxy")
		q, _ := answered.find(text)
		st := sharer.UDPStats().OOB
		t.Logf("leaf of gtk-gnutella not asking for OOB: %d results; its query at our sharer: %v", search.Len(), q)
		t.Logf("sharer's OOB counters: %+v", st)
		if !q.oob || q.names != gtk.Addr || q.id == search.ID {
			t.Errorf("the query reached our sharer as %v: want it OOB-proxied under a MUID naming %v", q, gtk.Addr)
		}
		if st.Offers == before.Offers || st.AcksRead == before.AcksRead || st.HitsSent == before.HitsSent {
			t.Errorf("our sharer did not answer gtk-gnutella's proxy out of band: before %+v, after %+v", before, st)
		}
		if pst := underPlain.UDPStats().OOB; pst.Indications != 0 || pst.HitsRead != 0 {
			t.Errorf("the leaf got something by UDP: %+v", pst)
		}
	})
	// gtk-gnutella's own counters (its shell's "stats general") for the same story: it claimed our hits with
	// tokens (b, and c's proxy) and took them as requested; it answered our leaf's claim (a); it stripped one
	// leaf query and proxied one.
	stats := gtk.Shell(t, "stats general")
	for _, c := range []struct {
		name string
		min  int
		max  int
	}{
		{"oob_hits_securely_claimed", 2, -1}, // (b) and (c)'s proxy: LIME/11 v3 sent to our sharer
		{"unrequested_oob_hits", 0, 0},       // our hits all carried its token
		{"oob_hits_with_alien_ip", 0, 0},     // and our own address
		{"claimed_oob_hits", 1, -1},          // (a): our querier's LIME/11 claimed its hits
		{"spurious_oob_hit_claim", 0, 0},
		{"oob_queries_stripped", 1, -1}, // (c)
		{"oob_proxied_query_hits", 1, -1},
	} {
		n, ok := gtkStat(stats, c.name)
		t.Logf("gtk-gnutella's %s: %d", c.name, n)
		if !ok || n < c.min || (c.max >= 0 && n > c.max) {
			t.Errorf("gtk-gnutella's %s is %d (found: %v), want %d..%d", c.name, n, ok, c.min, c.max)
		}
	}
	if t.Failed() {
		t.Logf("gtk-gnutella: %s", gtk.Shell(t, "props -v is_firewalled is_udp_firewalled recv_solicited_udp send_oob_queries process_oob_queries proxy_oob_queries current_peermode"))
		t.Logf("gtk-gnutella: stats:\n%s", gtk.Shell(t, "stats drop"))
	}
}

// gtkStat reads the counter called name from the output of gtk-gnutella's "stats general" ("name value" lines).
func gtkStat(out, name string) (int, bool) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == name {
			n, err := strconv.Atoi(f[1])
			return n, err == nil
		}
	}
	return 0, false
}
