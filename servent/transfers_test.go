package servent

import (
	"testing"
	"time"
)

// The speed our hits announce is the fastest window of uploads so far:
// nothing before a whole window, and a slower window later keeps the peak.
func TestUploadSpeedPeak(t *testing.T) {
	var u uploadSpeed
	t0 := time.Unix(1000, 0)
	for _, c := range []struct {
		after time.Duration
		sent  int64
		want  float64
	}{
		{0, 0, 0},
		{speedWindow / 2, 5 << 20, 0},        // half a window: not measured yet
		{speedWindow, 10 << 20, 1 << 20},     // 10 MiB in 10 s
		{2 * speedWindow, 15 << 20, 1 << 20}, // a slower window keeps the peak
		{3 * speedWindow, 35 << 20, 2 << 20}, // a faster one raises it
		{2 * speedWindow, 40 << 20, 2 << 20}, // the clock going back starts a window
	} {
		if got := u.sample(t0.Add(c.after), c.sent); got != c.want {
			t.Errorf("after %v and %d bytes: %.0f B/s, want %.0f", c.after, c.sent, got, c.want)
		}
	}
	if kbits(0) != 0 || kbits(100<<10) != 819 || kbits(1) != 1 {
		t.Errorf("kbits: %d %d %d", kbits(0), kbits(100<<10), kbits(1))
	}
}
