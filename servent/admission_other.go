//go:build !linux

package servent

// fdLimits reports no limit where we cannot read it: no descriptor budget,
// only the caps on pending connections (admission.go).
func fdLimits() (limit, open int) { return 0, 0 }
