package servent

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestZZLeakCheckerWorks(t *testing.T) {
	gwcNoLeaks(t)
	ts := httptest.NewServer(http.NotFoundHandler())
	_ = ts
}
