package hostcache

import (
	"strings"
	"testing"
	"time"
)

// FuzzAddTryHeader feeds any X-Try / X-Try-Ultrapeers value to the host
// cache: no panic, at most hostTryMaxItems admitted, the count returned is
// the cache's growth, and every address it holds is one its policy admits.
func FuzzAddTryHeader(f *testing.F) {
	f.Add("1.2.3.4:6346,5.6.7.8:6347")
	f.Add("1.2.3.4:6346 2024-01-01T00:00Z, 9.9.9.9 ,[2001:db8::1]:6348")
	f.Add("2001:db8::1,[2001:db8::2]:0,8.8.8.8:65536,8.8.8.8:99999999999")
	f.Add("127.0.0.1:6346,10.0.0.1:6346,0.0.0.0:1,224.0.0.1:6346,255.255.255.255:1")
	f.Add("[fe80::1%eth0]:6346,::ffff:1.2.3.4:6346,[::ffff:5.6.7.8]:80")
	f.Add(strings.Repeat("8.8.8.8:1,", 200))
	f.Add("garbage, :, [, ], [:]:1, 1.2.3.4:x, 1.2.3.4:;")
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, v string) {
		c := New(1000)
		n := c.AddTryHeader(v, true, SourceXTryUltrapeers, now)
		if n < 0 || n > hostTryMaxItems {
			t.Fatalf("AddTryHeader admitted %d, want 0..%d", n, hostTryMaxItems)
		}
		if c.Len() > n {
			t.Fatalf("cache holds %d hosts after admitting %d", c.Len(), n)
		}
		for _, a := range c.Sample(1000, false, nil) {
			if !c.Valid(a) {
				t.Fatalf("cache holds %v, which its policy refuses", a)
			}
			if a.Port() == 0 || a.Addr().Zone() != "" || a.Addr().Is4In6() {
				t.Fatalf("cache holds a non-canonical address %v", a)
			}
		}
	})
}
