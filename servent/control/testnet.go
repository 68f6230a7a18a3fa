package control

import (
	"net/http"
	"sync"
)

// GET /api/v1/testnet: when this servent is the demo leaf of `gnutella
// testnet`, the demo network's graph and how its searches spread (the
// UI's Testnet page draws them). The demo hands the server a function that
// returns them (package testnet imports this one, not the other way).

type testnetSource struct {
	mu sync.Mutex
	fn func() any
}

// SetTestnet makes GET /api/v1/testnet answer fn()'s JSON: the network
// this servent is part of, for the browser UI.
func (c *Server) SetTestnet(fn func() any) {
	c.testnet.mu.Lock()
	c.testnet.fn = fn
	c.testnet.mu.Unlock()
}

func (c *Server) testnetGraph(w http.ResponseWriter, r *http.Request) {
	c.testnet.mu.Lock()
	fn := c.testnet.fn
	c.testnet.mu.Unlock()
	if fn == nil {
		writeJSON(w, http.StatusNotFound, apiError{"this servent is not the demo leaf of a `gnutella testnet`: there is no network to draw"})
		return
	}
	writeJSON(w, http.StatusOK, fn())
}
