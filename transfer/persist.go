package transfer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"gnutella/protocol"
)

// The queue on disk (Downloader.StateFile), version 2: every download with
// its ID, priority, state (paused and cancelled ones stay so) and the
// byte ranges its partial file holds (a swarm writes it with holes). The
// ranges are saved after what they name was written, so a crash between a
// write and a save only loses bytes, never claims bytes that are not
// there. Version 1 (no IDs, no ranges: the partial file's size was what we
// had) is still read.
type queueFile struct {
	Version   int          `json:"version"`
	Downloads []queueEntry `json:"downloads"`
}

type queueEntry struct {
	ID       string        `json:"id,omitempty"`
	Priority int           `json:"priority,omitempty"`
	Have     [][2]int64    `json:"have,omitempty"` // [start, end) byte ranges of the partial file
	Name     string        `json:"name"`
	Size     int64         `json:"size"`
	URN      string        `json:"urn,omitempty"` // "urn:sha1:...", empty when unknown
	Key      string        `json:"key"`
	State    State         `json:"state"`
	Error    string        `json:"error,omitempty"`
	Path     string        `json:"path,omitempty"`
	Sources  []queueSource `json:"sources"`
}

type queueSource struct {
	Addr        string   `json:"addr,omitempty"`
	Index       uint32   `json:"index"`
	Name        string   `json:"name,omitempty"`
	ServentID   string   `json:"servent_id,omitempty"`
	Push        bool     `json:"push,omitempty"`
	PushProxies []string `json:"push_proxies,omitempty"`
	Dropped     bool     `json:"dropped,omitempty"`
	Banned      bool     `json:"banned,omitempty"` // sent wrong bytes
	Reason      string   `json:"reason,omitempty"`
}

const queueVersion = 2

// saveSoon saves the queue unless it was saved in the last two seconds
// (the have-ranges change with every chunk).
func (d *Downloader) saveSoon() {
	now := time.Now().UnixNano()
	last := d.lastSave.Load()
	if now-last < int64(2*time.Second) || !d.lastSave.CompareAndSwap(last, now) {
		return
	}
	if err := d.save(); err != nil {
		d.Logger.Warn().Err(err).Msg("cannot save the download queue")
	}
}

// save writes the queue atomically (a temporary file renamed over the old).
func (d *Downloader) save() error {
	if d.StateFile == "" {
		return nil
	}
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	q := queueFile{Version: queueVersion}
	d.mu.Lock()
	if !d.started {
		// Before Start the saved queue is not read yet: writing now would
		// lose it.
		d.mu.Unlock()
		return nil
	}
	for _, x := range d.list {
		e := queueEntry{ID: x.id, Priority: x.priority, Name: x.name, Size: x.size, Key: x.key, State: x.state, Path: x.path}
		if x.state != StateDone && x.state != StateCancelled {
			x.mu.Lock()
			for _, sp := range x.have {
				e.Have = append(e.Have, [2]int64{sp.Start, sp.End})
			}
			x.mu.Unlock()
			if e.Have == nil {
				e.Have = [][2]int64{} // version 2 knows it has nothing
			}
		}
		if !x.sha1.IsZero() {
			e.URN = x.sha1.String()
		}
		if x.err != nil {
			e.Error = x.err.Error()
		}
		switch e.State {
		case StateDone, StateFailed, StatePaused, StateCancelled:
		default:
			e.State = StateQueued
		}
		for _, s := range x.sources {
			qs := queueSource{Index: s.Index, Name: s.Name, Push: s.Push, Dropped: s.dropped, Banned: s.banned, Reason: s.reason}
			if s.Addr.IsValid() {
				qs.Addr = s.Addr.String()
			}
			if !s.ServentID.IsZero() {
				qs.ServentID = s.ServentID.String()
			}
			for _, p := range s.PushProxies {
				qs.PushProxies = append(qs.PushProxies, p.String())
			}
			e.Sources = append(e.Sources, qs)
		}
		q.Downloads = append(q.Downloads, e)
	}
	d.mu.Unlock()
	b, err := json.MarshalIndent(q, "", "  ")
	if err != nil {
		return err
	}
	tmp := d.StateFile + ".tmp"
	if err := os.MkdirAll(filepath.Dir(d.StateFile), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, d.StateFile)
}

// load reads the queue written by save. Entries already queued (by Add
// before Start) keep their state and gain the saved sources.
func (d *Downloader) load() error {
	if d.StateFile == "" {
		return nil
	}
	b, err := os.ReadFile(d.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("transfer: reading the download queue: %w", err)
	}
	var q queueFile
	if err := json.Unmarshal(b, &q); err != nil {
		return fmt.Errorf("transfer: download queue %s: %w", d.StateFile, err)
	}
	if q.Version != 1 && q.Version != queueVersion {
		return fmt.Errorf("transfer: download queue %s: version %d, want 1 or %d", d.StateFile, q.Version, queueVersion)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range q.Downloads {
		r := Request{Name: e.Name, Size: e.Size}
		if e.Size < 0 {
			continue
		}
		if e.URN != "" {
			if r.SHA1, err = protocol.ParseURN(e.URN); err != nil {
				d.Logger.Warn().Str("urn", e.URN).Msg("download queue: bad URN, entry skipped")
				continue
			}
		}
		var saved []queueSource
		for _, qs := range e.Sources {
			s := Source{Index: qs.Index, Name: qs.Name, Push: qs.Push}
			if qs.Addr != "" {
				if s.Addr, err = netip.ParseAddrPort(qs.Addr); err != nil {
					continue
				}
			}
			if qs.ServentID != "" {
				if s.ServentID, err = protocol.ParseGUID(qs.ServentID); err != nil {
					continue
				}
			}
			for _, p := range qs.PushProxies {
				if ap, err := netip.ParseAddrPort(p); err == nil {
					s.PushProxies = append(s.PushProxies, ap)
				}
			}
			r.Sources = append(r.Sources, s)
			saved = append(saved, qs)
		}
		// The key names the partial file: it is taken from the file only in
		// one of the two forms downloadKey makes, so an edited queue cannot
		// name a file of its choosing.
		key := e.Key
		if !validKey(key) {
			if r.SHA1.IsZero() {
				key = downloadKey(r)
			} else {
				key = r.SHA1.Base32()
			}
		}
		if x := d.byKey[key]; x != nil {
			x.addSources(r.Sources)
			continue
		}
		r.Priority = e.Priority
		x := d.newDownload(key, r, e.State)
		if validID(e.ID) && d.byID[e.ID] == nil {
			x.id = e.ID
		}
		x.partial = filepath.Join(d.Dir, partialPrefix+key)
		for i, s := range x.sources {
			if i < len(saved) {
				s.dropped, s.banned, s.reason = saved[i].Dropped || saved[i].Banned, saved[i].Banned, saved[i].Reason
			}
		}
		// What the partial file holds: the saved ranges, within the file
		// as it is now (never more than is there); version 1: its size.
		have := haveFromFile(x.partial, x.size)
		if q.Version >= 2 && e.Have != nil {
			var saved Ranges
			for _, sp := range e.Have {
				saved = saved.Add(max(sp[0], 0), min(sp[1], x.size))
			}
			have = saved.Intersect(have)
		}
		switch x.state {
		case StateDone:
			x.path = e.Path
			x.setHave(Ranges{{0, x.size}})
			close(x.done)
		case StateFailed:
			x.err = errors.New(e.Error)
			x.setHave(have)
			close(x.done)
		case StateCancelled:
			x.err = ErrCancelled
			close(x.done)
		case StatePaused:
			x.setHave(have)
		default:
			x.state = StateQueued
			x.setHave(have)
		}
		d.list = append(d.list, x)
		d.byKey[key] = x
		d.byID[x.id] = x
	}
	return nil
}

// validID reports whether id looks like one newID makes: 8 lower-case hex
// digits.
func validID(id string) bool {
	if len(id) != 8 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// validKey reports whether k is a key downloadKey can make: 32 base32
// characters, or "n" and 32 lower-case hex digits.
func validKey(k string) bool {
	switch len(k) {
	case 32:
		for i := 0; i < len(k); i++ {
			if c := k[i]; !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
				return false
			}
		}
		return true
	case 33:
		if k[0] != 'n' {
			return false
		}
		for i := 1; i < len(k); i++ {
			if c := k[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
		return true
	}
	return false
}
