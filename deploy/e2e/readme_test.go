package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/redistest"
)

// redisCLIDoc is the document, from the repository root, whose section
// "Debugging with redis-cli" TestReadmeRedisCLI runs.
const redisCLIDoc = "pkg/keyspace/README.md"

// docCommand is one "$ command" of a document's console block and the
// output the document says it prints.
type docCommand struct {
	line int
	cmd  string
	want []string
}

// readmeCommands returns the console blocks' commands of one "## " section
// of doc, a Markdown file named from the repository root.
func readmeCommands(t *testing.T, doc, section string) []docCommand {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", filepath.FromSlash(doc)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cmds []docCommand
	in, block := false, false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			in = line == "## "+section
		case !in:
		case line == "```console":
			block = true
		case line == "```":
			block = false
		case block && strings.HasPrefix(line, "$ "):
			cmds = append(cmds, docCommand{line: n, cmd: strings.TrimPrefix(line, "$ ")})
		case block && len(cmds) > 0:
			cmds[len(cmds)-1].want = append(cmds[len(cmds)-1].want, line)
		}
	}
	if len(cmds) == 0 {
		t.Fatalf("%s has no console commands under %q", doc, section)
	}
	return cmds
}

// matches reports whether got's lines match want's: "…" inside a line
// stands for any text, and a line that is only "…" for any lines.
func matches(got, want []string) bool {
	if len(want) == 0 {
		return len(got) == 0
	}
	if want[0] == "…" {
		for i := 0; i <= len(got); i++ {
			if matches(got[i:], want[1:]) {
				return true
			}
		}
		return false
	}
	if len(got) == 0 {
		return false
	}
	parts := strings.Split(want[0], "…")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	if !regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(got[0]) {
		return false
	}
	return matches(got[1:], want[1:])
}

// TestReadmeRedisCLI runs every command of redisCLIDoc's redis-cli section
// after the scenario it names, and checks that it prints what the document
// shows. Single commands run with --no-raw, as redis-cli prints them on a
// terminal; piped ones run as they are.
func TestReadmeRedisCLI(t *testing.T) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatal("redis-cli is not on PATH; install Redis")
	}
	// One handler at a time, so that the worker handles the scenario in
	// Stripe's order and the notifications it sends are the document's
	// (handled out of order, a settled failure sends no notice).
	s := startStack(t, "WORKER_CONCURRENCY", "1")
	s.trigger(t, "-objects", "42", "scenario")
	s.trigger(t, "-id", "evt_1PqReadme00000000000001", "-objects", "42", "-livemode", "charge.failed")
	insp := asynq.NewInspectorFromRedisClient(s.db.Client)
	poll.Value(t, 20*time.Second, "evt_1PqReadme00000000000001 completed", func() (*asynq.TaskInfo, error) {
		return redistest.TaskIn(insp, "stripe", "evt_1PqReadme00000000000001", asynq.TaskStateCompleted)
	})

	for _, c := range readmeCommands(t, redisCLIDoc, "Debugging with redis-cli") {
		t.Run(c.cmd, func(t *testing.T) {
			extra := "--no-raw"
			if strings.Contains(c.cmd, "|") {
				extra = ""
			}
			script := `redis-cli() { command redis-cli -u "$STRIPEQ_REDIS_URL" ` + extra + ` "$@"; }` + "\n" + c.cmd
			cmd := exec.Command("bash", "-c", script)
			cmd.Env = append(os.Environ(), "STRIPEQ_REDIS_URL="+s.db.URL)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s:%d: %v\n%s", redisCLIDoc, c.line, err, out)
			}
			got := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			for i := range got {
				got[i] = strings.TrimSpace(got[i])
			}
			want := make([]string, len(c.want))
			for i := range c.want {
				want[i] = strings.TrimSpace(c.want[i])
			}
			if !matches(got, want) {
				t.Errorf("%s:%d: %s printed\n%s\nthe document shows\n%s", redisCLIDoc, c.line, c.cmd, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestMatches(t *testing.T) {
	for _, tt := range []struct {
		got, want []string
		ok        bool
	}{
		{[]string{"a"}, []string{"a"}, true},
		{[]string{"a"}, []string{"b"}, false},
		{[]string{"abc"}, []string{"a…c"}, true},
		{[]string{"a", "x", "y", "b"}, []string{"a", "…", "b"}, true},
		{[]string{"a", "b"}, []string{"a"}, false},
		{[]string{"a.c"}, []string{"a.c"}, true},
		{[]string{"abc"}, []string{"a.c"}, false},
	} {
		if got := matches(tt.got, tt.want); got != tt.ok {
			t.Errorf("matches(%q, %q) = %v", tt.got, tt.want, got)
		}
	}
}
