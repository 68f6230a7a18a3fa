package testnet

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// network a test starts must be stopped, and a stopped servent leaves
// nothing running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
