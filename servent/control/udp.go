package control

import (
	"net/http"

	"gnutella/servent"
)

// UDPJSON is GET /api/v1/udp: the servent's UDP socket (docs/protocol.md
// §11) and its counters. Addr is empty when the servent runs without UDP.
type UDPJSON struct {
	Addr  string           `json:"addr,omitempty"`
	Stats servent.UDPStats `json:"stats"`
	// GUESS counts the GUESS side (docs/protocol.md §11.6).
	GUESS servent.GUESSStats `json:"guess"`
}

func (c *Server) udp(w http.ResponseWriter, r *http.Request) {
	out := UDPJSON{Stats: c.n.UDPStats(), GUESS: c.n.GUESSStats()}
	if a := c.n.UDPAddr(); a.IsValid() {
		out.Addr = a.String()
	}
	writeJSON(w, http.StatusOK, out)
}
