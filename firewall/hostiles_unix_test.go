//go:build unix

package firewall

import (
	"path/filepath"
	"syscall"
	"testing"
)

// A FIFO would block an open until a writer came: LoadHostiles refuses it
// without opening it, so a bad data folder cannot hang startup.
func TestLoadHostilesRefusesFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "hostiles.txt")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip(err)
	}
	if set, _, err := LoadHostiles(fifo); err == nil || set == nil {
		t.Fatalf("fifo: %v", err)
	}
}
