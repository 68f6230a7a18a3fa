// Package ultrapeer is the ultrapeer role, as pure logic without links:
// the Query Routing Protocol (QRP, docs/protocol.md §4), the rules of the role itself
// (when a servent in auto mode becomes an ultrapeer, when it takes leaf
// guidance: roles.go, RoleRules, docs/protocol.md §2.4, §3.9), and the bookkeeping of the
// dynamic queries an ultrapeer runs for its leaves (dq.go, LeafQueries,
// docs/protocol.md §5.4). Package servent wires them to its links.
//
// QRP in five files:
//
//   - qrphash.go: the bit-exact QRP hash (docs/protocol.md §4.2).
//   - qrptable.go: Table, a presence bitmap of 2^bits slots, or the list
//     of its present slots when that is smaller (Compact); the keyword
//     extraction for file names (AddName); routing a query through a table
//     (Matches, QRPQuery); scaling and aggregation (Scale, Or, docs/protocol.md §4.3, §4.5).
//   - qrppatch.go: a table as RESET + PATCH messages (Messages, PatchFrom,
//     Encode) and the receiving side (Receiver), which enforces every rule of
//     docs/protocol.md §4.4 and §8.8 and reports violations as ErrSequence (Bye 413).
//   - qrpbudget.go: Budget, the memory all the Receivers of a servent may
//     hold together (ErrBudget beyond it).
//   - qrpindex.go: LeafIndex, all the leaves' tables inverted into the
//     list of leaves of each slot (a bitset of leaves for the slots most
//     leaves have), so that deciding which of thousands of leaves get a
//     query takes about a microsecond (docs/protocol.md §3.5), in memory
//     that follows what the tables hold, not their size.
//
// Tables only record presence, as gtk-gnutella and LimeWire do for
// leaf/ultrapeer links: the distance values of the original spec are kept
// only on the wire.
package ultrapeer

import "errors"

// MaxTableBits is the largest table this package builds or accepts:
// 2^24 slots, a 2 MiB bitmap. gtk-gnutella stops at 2^21 and LimeWire uses
// 2^17; NewReceiver's limit is usually lower.
const MaxTableBits = 24

// ErrSequence is wrapped by every error a Receiver returns: the peer broke
// the QRP rules (docs/protocol.md §4.4, §8.8) and gets Bye 413 "invalid QRP sequence".
var ErrSequence = errors.New("invalid QRP sequence")

// SequenceError is the error type a Receiver returns. Reason says what was
// wrong, in words fit for the Bye 413 text.
type SequenceError struct {
	Reason string
}

func (e *SequenceError) Error() string { return "invalid QRP sequence: " + e.Reason }

// Unwrap makes errors.Is(err, ErrSequence) true.
func (e *SequenceError) Unwrap() error { return ErrSequence }
