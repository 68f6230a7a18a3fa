package ultrapeer

import (
	"errors"
	"sync/atomic"
)

// ErrBudget is returned by a Receiver when the memory it needs for a table
// or a sequence would take its Budget over the limit: the peer is refused
// rather than the memory allocated (a servent closes the link, Bye 413).
var ErrBudget = errors.New("QRP memory budget exhausted")

// Budget is the memory that all the Receivers of one servent may hold
// together: their complete tables, the tables of the sequences they are
// applying and the compressed bytes they buffer. It counts bytes exactly,
// charged before they are allocated and given back when they are dropped
// (Receiver.Release gives back everything a Receiver held). A Budget is
// safe for concurrent use; a nil *Budget has no limit and counts nothing.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// Limit returns the budget's limit in bytes.
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// InUse returns the bytes charged to the budget now.
func (b *Budget) InUse() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// fits reports whether n more bytes would fit now, without charging them.
func (b *Budget) fits(n int64) bool {
	return b == nil || b.used.Load()+n <= b.limit
}

// take charges n bytes, or charges nothing and reports false when they do
// not fit.
func (b *Budget) take(n int64) bool {
	if b == nil {
		return true
	}
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// give returns n bytes charged by take.
func (b *Budget) give(n int64) {
	if b != nil && n != 0 {
		b.used.Add(-n)
	}
}
