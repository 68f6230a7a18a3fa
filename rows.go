package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gnutella/routing"
)

// A row is one file of a search's results: the hits with one URN (or, for
// hits without a URN, one name and size), numbered from 1 in the order
// their first hit arrived. `gnutella search` prints rows and `gnutella get
// SEARCH-ID N` downloads row N, both grouping the search's hits with
// groupHits, so the numbers agree.
type row struct {
	N       int      `json:"row"`
	Name    string   `json:"name"`
	Size    uint64   `json:"size"`
	URN     string   `json:"urn,omitempty"`
	Sources []string `json:"sources"`
	// Speed is the fastest upload speed its sources announce, in kbit/s.
	Speed uint32 `json:"speed_kbps"`
	// Push is true when every source is firewalled (reachable by Push only).
	Push bool `json:"push"`
	// FirstHit is the position of the row's first hit in the search's hits.
	FirstHit int `json:"-"`
}

// lastSearchFile, in the data folder, holds the ID of the last search
// gnutella search made through the running servent: gnutella get N takes
// row N of it.
const lastSearchFile = "last_search"

// saveLastSearch notes id as the last search of the servent of dir. A
// failure only costs the shortcut: get SEARCH-ID N still works.
func saveLastSearch(dir, id string) {
	_ = os.WriteFile(filepath.Join(dir, lastSearchFile), []byte(id+"\n"), 0o600)
}

// lastSearch is the ID saveLastSearch noted for dir.
func lastSearch(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, lastSearchFile))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// groupHits groups hits into rows.
func groupHits(hits []routing.Hit) []row {
	var rows []row
	at := map[string]int{}
	for i, h := range hits {
		key := "name:" + h.Name + "\x00" + strconv.FormatUint(h.Size, 10)
		urn := ""
		if !h.URN.IsZero() {
			urn = h.URN.String()
			key = urn
		}
		j, ok := at[key]
		if !ok {
			j = len(rows)
			at[key] = j
			rows = append(rows, row{N: j + 1, Name: h.Name, Size: h.Size, URN: urn, Push: true, FirstHit: i})
		}
		r := &rows[j]
		r.Sources = append(r.Sources, h.Host.String())
		r.Push = r.Push && h.Push
		r.Speed = max(r.Speed, h.Speed)
	}
	return rows
}

// humanSize writes n bytes for people: 512 B, 22.3 KB, 1.2 MB (units of 1024).
func humanSize(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + " B"
	}
	v := float64(n)
	for _, unit := range []string{"KB", "MB", "GB", "TB"} {
		v /= 1024
		if v < 1024 || unit == "TB" {
			return fmt.Sprintf("%.1f %s", v, unit)
		}
	}
	panic("unreachable")
}

// humanSpeed writes a speed announced in kbit/s as bytes per second, as
// sizes and download speeds are written: 122.1 KB/s.
func humanSpeed(kbps uint32) string {
	if kbps == 0 {
		return "?"
	}
	return humanSize(uint64(kbps)*1000/8) + "/s"
}

// printRows prints the rows of search id as a numbered table, and how to
// download one (id "", a browse no servent keeps, has no download hint);
// last says get N takes them too.
func printRows(w io.Writer, id string, rows []row, last bool) {
	if len(rows) == 0 {
		if id == "" {
			fmt.Fprintln(w, "No files.")
		} else {
			fmt.Fprintf(w, "No results (search %s).\n", id)
		}
		return
	}
	fmt.Fprintf(w, "%3s  %-40s %9s  %11s  %7s  %s\n", "#", "NAME", "SIZE", "SPEED", "SOURCES", "URN")
	for _, r := range rows {
		src := strconv.Itoa(len(r.Sources))
		if r.Push {
			src += " push"
		}
		fmt.Fprintf(w, "%3d  %-40s %9s  %11s  %7s  %s\n", r.N, clip(r.Name, 40), humanSize(r.Size), humanSpeed(r.Speed), src, r.URN)
	}
	files := "files"
	if len(rows) == 1 {
		files = "file"
	}
	if id == "" {
		fmt.Fprintf(w, "%d %s.\n", len(rows), files)
		return
	}
	fmt.Fprintf(w, "%d %s. Search ID %s: download row N with\n  gnutella get %s N\n", len(rows), files, id, id)
	if last {
		fmt.Fprintln(w, "or, as it is the last search, gnutella get N")
	}
}

// searchJSON is what search --json prints.
type searchJSON struct {
	ID   string `json:"search_id"`
	Rows []row  `json:"rows"`
}

func printRowsJSON(w io.Writer, id string, rows []row) error {
	if rows == nil {
		rows = []row{}
	}
	return writeJSON(w, searchJSON{ID: id, Rows: rows})
}

func clip(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
