package main

import "testing"

func TestParseRate(t *testing.T) {
	good := map[string]int64{
		"0": 0, "65536": 65536, "100K": 100 << 10, "100k": 100 << 10, "2M": 2 << 20, "1.5M": 3 << 19,
		"1G": 1 << 30, "2MB": 2 << 20, "2MB/s": 2 << 20, " 512 ": 512, "300KB": 300 << 10,
	}
	for in, want := range good {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "-1", "-2M", "2X", "1e6", "0x100", "inf", "NaN", "M", "2MM", "0.5", "1_000", "+5", "99999999999G"} {
		if got, err := parseRate(in); err == nil {
			t.Errorf("parseRate(%q) = %d, want an error", in, got)
		}
	}
}

// A rate that is not one is refused before anything starts, with exit 2
// as other bad flags are.
func TestUploadRateRefused(t *testing.T) {
	wantRun(t, 2, `--upload-rate: "fast" is not a rate: write bytes per second, such as 65536, 100K, 2M or 1G (0: unlimited)`,
		"serve", "--listen", "127.0.0.1:0", "--control", "", "--data-dir", t.TempDir(), "--upload-rate", "fast")
	wantRun(t, 2, `testnet: --upload-rate: "-1" is not a rate`, "testnet", "--once", "--upload-rate", "-1")
}
