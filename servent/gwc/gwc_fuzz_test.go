package gwc

import "testing"

// FuzzParseGWCReply: a GWebCache's reply is bytes from the network. Whatever
// they are, the hosts taken from it are valid addresses with a port, and the
// reply never yields more entries than it has lines.
func FuzzParseGWCReply(f *testing.F) {
	for _, s := range []string{
		"H|1.2.3.4:6346|100\nU|http://gwc.example/|200\nI|pong|GNUT 0.1\n",
		"I|update|OK\r\n", "I|update|WARNING|You came back too early\n", "ERROR: nope\n",
		"1.2.3.4:6346\n5.6.7.8\nhttp://x/\n", "I|net-not-supported\n", "H|[::1]:6346|1\nH|999.1.1.1:1|1\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, truncated bool) {
		rep := parseGWCReply(body, truncated)
		lines := 1
		for _, c := range body {
			if c == '\n' || c == '\r' {
				lines++
			}
		}
		if len(rep.hosts)+len(rep.caches) > lines {
			t.Fatalf("%d hosts and %d caches from %d lines", len(rep.hosts), len(rep.caches), lines)
		}
		for _, h := range rep.hosts {
			if !h.IsValid() || h.Port() == 0 || h.Addr().IsUnspecified() {
				t.Fatalf("host %v taken from %q", h, body)
			}
		}
	})
}
