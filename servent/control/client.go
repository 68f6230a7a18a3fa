package control

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"gnutella/routing"
)

// Info is what control.json holds: where the API listens and the token.
type Info struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
	PID   int    `json:"pid"`
}

// ReadInfo reads control.json from a data folder.
func ReadInfo(dataDir string) (Info, error) {
	var info Info
	b, err := os.ReadFile(filepath.Join(dataDir, "control.json"))
	if err != nil {
		return info, err
	}
	return info, json.Unmarshal(b, &info)
}

// Error is a non-2xx answer of the API.
type Error struct {
	Method, Path string
	Status       int    // the HTTP status code
	StatusText   string // e.g. "400 Bad Request"
	Message      string // the API's explanation
}

func (e *Error) Error() string {
	return fmt.Sprintf("control API %s %s: %s: %s", e.Method, e.Path, e.StatusText, e.Message)
}

// Client talks to a running servent's control API.
type Client struct {
	Info Info
	HTTP *http.Client
}

// Do sends a request with the token and decodes a JSON answer into out.
func (cc *Client) Do(ctx context.Context, method, path string, body any, out any) error {
	resp, err := cc.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// send makes an authorised request and turns a non-2xx answer into an error
// carrying the API's message.
func (cc *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+cc.Info.Addr+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+cc.Info.Token)
	client := cc.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var e apiError
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		return nil, &Error{Method: method, Path: path, Status: resp.StatusCode, StatusText: resp.Status, Message: e.Error}
	}
	return resp, nil
}

// StartSearch starts a search (POST /api/v1/searches) and returns its ID.
func (cc *Client) StartSearch(ctx context.Context, req SearchRequest) (string, error) {
	var started map[string]string
	if err := cc.Do(ctx, "POST", "/api/v1/searches", req, &started); err != nil {
		return "", err
	}
	return started["id"], nil
}

// StreamResults calls fn for each hit of search id as it arrives, until the
// search ends or ctx does.
func (cc *Client) StreamResults(ctx context.Context, id string, fn func(routing.Hit)) error {
	resp, err := cc.send(ctx, "GET", "/api/v1/searches/"+id+"/results", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var h routing.Hit
		if err := dec.Decode(&h); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil
		}
		fn(h)
	}
}
