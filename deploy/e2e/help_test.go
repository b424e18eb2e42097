package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/proctest"
)

// TestCommandsAnswerHelp runs each command's binary with -h, -help and
// --help: it prints its usage and exits 0 at once, starting nothing (no
// Redis is reachable, no secret set); any other argument is an error, exit
// status 1.
func TestCommandsAnswerHelp(t *testing.T) {
	env := []string{"REDIS_URL=redis://127.0.0.1:1/0", "PATH=/usr/bin:/bin"}
	for _, name := range []string{"api", "worker", "dashboard"} {
		bin := proctest.Binary(t, name)
		for _, tt := range []struct {
			args   []string
			status int
			out    string // in stdout (help) or stderr (error)
		}{
			{[]string{"-h"}, 0, "Usage: " + name},
			{[]string{"-help"}, 0, "Usage: " + name},
			{[]string{"--help"}, 0, "every setting is an environment variable"},
			{[]string{"serve"}, 1, `unexpected argument "serve"`},
			{[]string{"--port=8080"}, 1, "takes no arguments"},
		} {
			t.Run(name+" "+strings.Join(tt.args, " "), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, tt.args...)
				cmd.Env = env
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				status := 0
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					status = exit.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				out := stdout.String() + stderr.String()
				if status != tt.status || !strings.Contains(strings.ToLower(out), strings.ToLower(tt.out)) {
					t.Errorf("exit %d, output %q; want exit %d and %q", status, out, tt.status, tt.out)
				}
				if tt.status == 0 && (stderr.Len() > 0 || strings.Contains(stdout.String(), `"level"`)) {
					t.Errorf("help started something: stdout %q, stderr %q", stdout.String(), stderr.String())
				}
			})
		}
	}
}
