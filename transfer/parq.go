package transfer

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// PARQ (docs/protocol.md §6.2): a downloader says it can be queued with
// "X-Queue: <version>"; an uploader with no free slot answers "503 Queued"
// with X-Queued (the place it keeps) and Retry-After (when to ask again);
// the downloader asks again in time with "X-Queued: position=N; ID=<id>"
// to keep its place.

// QueueVersion is the PARQ version we speak and send in X-Queue
// (gtk-gnutella sends 1.1; the specification describes 1.0, which 1.1
// extends compatibly).
const QueueVersion = "1.1"

// Queued is the value of an X-Queued header: a place in an uploader's PARQ
// queue. ID and Position are mandatory; a zero Length, ETA or Lifetime
// means the uploader did not say.
type Queued struct {
	ID       string // the place's ID, 32 hex digits in gtk-gnutella
	Position int    // 1 is the next to get a slot
	Length   int    // places in the queue
	ETA      time.Duration
	Lifetime time.Duration // how long the place is kept without a request
}

// Format is the X-Queued value an uploader sends (gtk-gnutella's order:
// ID, position, lifetime, length, ETA). A downloader keeping its place
// sends only ID and position (FormatRequest).
func (q Queued) Format() string {
	var b strings.Builder
	b.WriteString("ID=")
	b.WriteString(q.ID)
	b.WriteString("; position=")
	b.WriteString(strconv.Itoa(q.Position))
	if q.Lifetime > 0 {
		b.WriteString("; lifetime=")
		b.WriteString(strconv.FormatInt(int64(q.Lifetime/time.Second), 10))
	}
	if q.Length > 0 {
		b.WriteString("; length=")
		b.WriteString(strconv.Itoa(q.Length))
	}
	if q.ETA > 0 {
		b.WriteString("; ETA=")
		b.WriteString(strconv.FormatInt(int64(q.ETA/time.Second), 10))
	}
	return b.String()
}

// FormatRequest is the X-Queued value a downloader sends to keep its place:
// "position=N; ID=<id>".
func (q Queued) FormatRequest() string {
	return "position=" + strconv.Itoa(q.Position) + "; ID=" + q.ID
}

// ErrBadQueued is what ParseQueued returns for a value without a usable ID
// and position.
var ErrBadQueued = errors.New("transfer: malformed X-Queued")

// maxQueueID bounds the ID we keep and send back: gtk-gnutella's is 32 hex
// digits; a longer one is refused rather than echoed.
const maxQueueID = 64

// ParseQueued reads an X-Queued value: "var=value" items separated by ';'
// (spaces optional, names case-insensitive, any order, unknown names
// ignored). An ID must be printable ASCII without ';', ',' or spaces, at
// most maxQueueID bytes; numbers are bounded (a day for times, a million
// for places).
func ParseQueued(v string) (Queued, error) {
	var q Queued
	hasPos := false
	for _, item := range strings.Split(v, ";") {
		name, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			continue
		}
		name, val = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(val)
		switch name {
		case "id":
			if val == "" || len(val) > maxQueueID {
				return Queued{}, ErrBadQueued
			}
			for i := 0; i < len(val); i++ {
				if c := val[i]; c <= ' ' || c >= 0x7f || c == ',' || c == ';' || c == '"' {
					return Queued{}, ErrBadQueued
				}
			}
			q.ID = val
		case "position", "length", "eta", "lifetime":
			n, err := parseDigits(val)
			if err != nil {
				return Queued{}, ErrBadQueued
			}
			switch name {
			case "position":
				q.Position, hasPos = int(min(n, 1_000_000)), true
			case "length":
				q.Length = int(min(n, 1_000_000))
			case "eta":
				q.ETA = time.Duration(min(n, 86400)) * time.Second
			case "lifetime":
				q.Lifetime = time.Duration(min(n, 86400)) * time.Second
			}
		}
	}
	if q.ID == "" || !hasPos {
		return Queued{}, ErrBadQueued
	}
	return q, nil
}
