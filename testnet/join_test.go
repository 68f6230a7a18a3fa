package testnet

import (
	"testing"
	"time"

	"gnutella/servent"
)

// A servent given a single --peer learns other hosts from the pongs it gets
// (the peer's own and the ones in its pong cache) and dials them until it
// has its target link count.
func TestJoinFromOnePeerReachesTargetLinks(t *testing.T) {
	n, err := Start(ctxFor(t, 60*time.Second), Options{
		N: 10, Topology: Random{MeanDegree: 4}, Seed: 3,
		Configure: func(i int, c *servent.NodeConfig) { c.PongCacheLifetime = time.Second },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })

	c := BaseConfig()
	c.Peers = []string{n.Servents[0].Addr().String()}
	c.WantLinks = 4
	c.PongCacheLifetime = time.Second
	j, err := servent.New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Start(); err != nil {
		t.Fatal(err)
	}
	defer j.Stop()
	if err := j.WaitLinks(ctxFor(t, 30*time.Second), 4); err != nil {
		t.Fatalf("%v (host cache holds %d hosts)", err, j.Hosts().Len())
	}
	if j.Hosts().Len() < 4 {
		t.Errorf("host cache holds %d hosts, want at least 4", j.Hosts().Len())
	}
}

// A servent given only a UDP host cache (--uhc: an ultrapeer of the testnet,
// on its listening port) learns ultrapeers from its pong's IPP and joins
// until it has its target link count.
func TestJoinFromOneUDPHostCacheReachesTargetLinks(t *testing.T) {
	n, err := Start(ctxFor(t, 60*time.Second), Options{N: 8, Topology: Random{MeanDegree: 4}, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	uhc := n.Servents[0]
	if !uhc.UDPAddr().IsValid() {
		t.Fatal("the testnet's servents run without UDP")
	}
	c := BaseConfig()
	c.UHCs = []string{uhc.UDPAddr().String()}
	c.WantLinks = 3
	j, err := servent.New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Start(); err != nil {
		t.Fatal(err)
	}
	defer j.Stop()
	if err := j.WaitLinks(ctxFor(t, 30*time.Second), 3); err != nil {
		t.Fatalf("%v (host cache holds %d hosts; UDP %+v)", err, j.Hosts().Len(), j.UDPStats())
	}
	if st := j.UDPStats(); st.PongsRead == 0 {
		t.Errorf("joined without reading a UDP pong: %+v", st)
	}
}

// A servent that knew hosts saves them in its data folder and, restarted
// with no --peer, rejoins from them.
func TestRestartRejoinsFromPersistedHostCache(t *testing.T) {
	n, err := Start(ctxFor(t, 60*time.Second), Options{N: 6, Topology: Ring{}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	dir := t.TempDir()

	c := BaseConfig()
	c.DataDir = dir
	c.Peers = []string{n.Servents[0].Addr().String(), n.Servents[3].Addr().String()}
	c.WantLinks = 2
	first, err := servent.New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	if err := first.WaitLinks(ctxFor(t, 30*time.Second), 2); err != nil {
		t.Fatal(err)
	}
	id := first.ID()
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	// The network sees the Bye and drops its links to the first run.
	for _, s := range n.Servents {
		for _, l := range s.Links() {
			if l.PeerID == id {
				<-l.Done()
			}
		}
	}

	c2 := BaseConfig()
	c2.DataDir = dir
	c2.WantLinks = 2
	second, err := servent.New(c2)
	if err != nil {
		t.Fatal(err)
	}
	if second.ID() != id {
		t.Errorf("servent ID not persisted: %s then %s", id, second.ID())
	}
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	defer second.Stop()
	if err := second.WaitLinks(ctxFor(t, 30*time.Second), 2); err != nil {
		t.Fatal(err)
	}
}
