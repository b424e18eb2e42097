package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// startBareAPI starts the real api binary alone and returns it with its
// webhook and metrics addresses.
func startBareAPI(t *testing.T) (p *proctest.Proc, addr, metricsAddr string) {
	t.Helper()
	db := redistest.New(t)
	p = proctest.Start(t, "api", proctest.Binary(t, "api"), map[string]string{
		"REDIS_URL": db.URL, "STRIPE_WEBHOOK_SECRET": stripetest.Secret, "API_ADDR": "127.0.0.1:0", "METRICS_ADDR": "127.0.0.1:0",
	})
	return p, proctest.APIAddr(t, p), proctest.MetricsAddr(t, p)
}

// TestAPIMetricsOffTheWebhookListener checks that the api serves its
// metrics on METRICS_ADDR and not on the public webhook listener.
func TestAPIMetricsOffTheWebhookListener(t *testing.T) {
	_, addr, metricsAddr := startBareAPI(t)
	for _, tt := range []struct {
		url    string
		status int
	}{{"http://" + addr + "/metrics", 404}, {"http://" + metricsAddr + "/metrics", 200}} {
		resp, err := http.Get(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("GET %s: %d, want %d", tt.url, resp.StatusCode, tt.status)
		}
		if has := strings.Contains(string(body), "stripeq_api_webhook_requests_total"); has != (tt.status == 200) {
			t.Errorf("GET %s: the metrics are there: %v", tt.url, has)
		}
	}
}

// TestConflictingLengths sends, over raw TCP to the real api, requests
// carrying both Content-Length and Transfer-Encoding: chunked, alone or
// after a good request on a kept-alive connection, and with a second
// request smuggled in the body. Each gets 400 and the connection closed,
// with nothing answered after it; a request with only one of them is
// served and the connection kept.
func TestConflictingLengths(t *testing.T) {
	_, addr, _ := startBareAPI(t)
	const (
		healthz  = "GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n"
		chunked  = "GET /healthz HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
		length   = "POST /healthz HTTP/1.1\r\nHost: api\r\nContent-Length: 5\r\n\r\nhello"
		both     = "POST /webhooks/stripe HTTP/1.1\r\nHost: api\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
		bothLow  = "GET /healthz HTTP/1.1\r\nHost: api\r\ntransfer-encoding: chunked\r\ncontent-length: 40\r\n\r\n0\r\n\r\n"
		smuggled = "POST /webhooks/stripe HTTP/1.1\r\nHost: api\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /readyz HTTP/1.1\r\nHost: api\r\n\r\n"
	)
	tests := []struct {
		name     string
		requests string
		statuses []int // answered in order
		closed   bool  // the api closes the connection after them
	}{
		{"both", both, []int{400}, true},
		{"both, lower case, on a GET", bothLow, []int{400}, true},
		{"both after a good request", healthz + chunked + both + healthz, []int{200, 200, 400}, true},
		{"a request smuggled in the body", smuggled, []int{400}, true},
		{"chunked only", chunked + healthz, []int{200, 200}, false},
		{"Content-Length only", length + length + healthz, []int{405, 405, 200}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tt.requests); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			r := bufio.NewReader(c)
			for i, want := range tt.statuses {
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Fatalf("answer %d: %v", i+1, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("answer %d: %d, want %d", i+1, resp.StatusCode, want)
				}
			}
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			extra, err := r.ReadByte()
			switch {
			case tt.closed && err != io.EOF:
				t.Errorf("after the 400 the connection is open (read %q, %v), want it closed", extra, err)
			case !tt.closed && !isTimeout(err):
				t.Errorf("the connection ended (read %q, %v), want it kept alive", extra, err)
			}
		})
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
