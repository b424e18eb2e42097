package stripeq_test

import (
	"os/exec"
	"strings"
	"testing"
)

// heavy are modules a program of handlers needs none of: Gin (the api's
// and the dashboard's engine) and what its binding pulls in, HTTP/3's
// quic-go and the Mongo driver's BSON.
var heavy = []string{
	"github.com/gin-gonic/",
	"github.com/gin-contrib/",
	"github.com/quic-go/",
	"go.mongodb.org/",
	"github.com/hibiken/asynqmon",
}

// TestLinksOnlyWhatAWorkerNeeds checks, with go list -deps, that a program
// importing pkg/stripeq or pkg/stripeq/builtin links none of heavy.
func TestLinksOnlyWhatAWorkerNeeds(t *testing.T) {
	if testing.Short() {
		t.Skip("go list -deps loads the whole import graph")
	}
	for _, pkg := range []string{
		"github.com/stripeq/stripeq/pkg/stripeq",
		"github.com/stripeq/stripeq/pkg/stripeq/builtin",
		"github.com/stripeq/stripeq/pkg/stripeq/stripeqtest",
	} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 50 {
			t.Fatalf("go list -deps %s names %d packages; the command is wrong", pkg, len(deps))
		}
		for _, d := range deps {
			for _, h := range heavy {
				if strings.HasPrefix(d, h) {
					t.Errorf("%s links %s", pkg, d)
				}
			}
		}
		t.Logf("%s: %d packages", pkg, len(deps))
	}
}
