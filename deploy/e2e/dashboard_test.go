package e2e

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/redistest"
)

func TestDashboardOneTimePasswordOnLoopback(t *testing.T) {
	db := redistest.New(t)
	p, addr := startDashboard(t, map[string]string{"REDIS_URL": db.URL})
	waitOutput(t, p, "One-time password:", 10*time.Second) // printed just after it logs that it listens

	m := regexp.MustCompile(`User: (\S+)\s+One-time password: (\S+)`).FindStringSubmatch(p.Output())
	if m == nil {
		t.Fatalf("no one-time password printed:\n%s", p.Output())
	}
	user, pass := m[1], m[2]
	if status, _ := get(t, "http://"+addr+"/", user, pass); status != http.StatusOK {
		t.Errorf("with the printed password: %d, want 200", status)
	}
	if status, _ := get(t, "http://"+addr+"/", "", ""); status != http.StatusUnauthorized {
		t.Errorf("without credentials: %d, want 401", status)
	}
	// The password is printed for the operator, never written to the log.
	for _, line := range strings.Split(p.Output(), "\n") {
		if strings.HasPrefix(line, "{") && strings.Contains(line, pass) {
			t.Errorf("a log line contains the password: %s", line)
		}
	}
}
