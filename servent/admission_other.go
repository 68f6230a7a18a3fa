//go:build !linux

package servent

// fdLimits reports no limit where we cannot read it: no descriptor budget,
// only the caps on pending connections (admission.go).
func fdLimits() (limit, open int) { return 0, 0 }

// memoryLimit reports no memory size: DefaultMaxLeaves then goes by
// descriptors alone.
func memoryLimit() int64 { return 0 }
