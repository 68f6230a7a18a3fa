//go:build !linux

package servent

// fdLimits reports no limit where we cannot read it: no descriptor budget,
// only the caps on pending connections (admission.go).
func fdLimits() (limit, open int) { return 0, 0 }

// readMemoryLimit reports no memory size: DefaultMaxLeaves then goes by
// descriptors alone.
func readMemoryLimit() int64 { return 0 }
