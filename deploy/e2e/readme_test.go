package e2e

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
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

	days := createdDays(t, insp, "stripe")
	for _, c := range readmeCommands(t, redisCLIDoc, "Debugging with redis-cli") {
		t.Run(c.cmd, func(t *testing.T) {
			extra := "--no-raw"
			if strings.Contains(c.cmd, "|") {
				extra = ""
			}
			run := func(day int64) []string {
				script := `redis-cli() { command redis-cli -u "$STRIPEQ_REDIS_URL" ` + extra + ` "$@"; }` + "\n"
				if day != 0 {
					// The day's own date (GNU date's -d @seconds).
					script += `date() { command date -d "@$STRIPEQ_DAY" "$@"; }` + "\n"
				}
				cmd := exec.Command("bash", "-c", script+c.cmd)
				cmd.Env = append(os.Environ(), "STRIPEQ_REDIS_URL="+s.db.URL, fmt.Sprintf("STRIPEQ_DAY=%d", day))
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("%s:%d: %v\n%s", redisCLIDoc, c.line, err, out)
				}
				got := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
				for i := range got {
					got[i] = strings.TrimSpace(got[i])
				}
				return got
			}
			var got []string
			if !strings.Contains(c.cmd, "$(date") {
				got = run(0)
			} else {
				// A command that names today's marker hash runs on the
				// day the events were created, whatever the day is now:
				// on each such day, its answers put together.
				var outs [][]string
				for _, day := range days {
					outs = append(outs, run(day))
				}
				got = acrossDays(outs)
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

// createdDays returns, for each UTC day on which an event of one of
// queue's tasks was created, a time in it (unix seconds), oldest first:
// the days whose marker hashes (stripeq:seen:{queue}:<yyyymmdd>) hold
// the events. A run that starts just after midnight UTC has events of
// both days (a scenario's events are created minutes before they are
// sent), and one that crosses it runs its commands on the next.
func createdDays(t *testing.T, insp *asynq.Inspector, queue string) []int64 {
	t.Helper()
	lists := []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		insp.ListPendingTasks, insp.ListActiveTasks, insp.ListScheduledTasks,
		insp.ListRetryTasks, insp.ListArchivedTasks, insp.ListCompletedTasks,
	}
	days := map[string]int64{}
	for _, list := range lists {
		tasks, err := list(queue, asynq.PageSize(1000))
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range tasks {
			if m, ok := stripetask.MetadataOf(info); ok && m.Created > 0 {
				days[time.Unix(m.Created, 0).UTC().Format("20060102")] = m.Created
			}
		}
	}
	if len(days) == 0 {
		t.Fatalf("no task of queue %s has an event creation time", queue)
	}
	out := slices.Collect(maps.Values(days))
	slices.Sort(out)
	return out
}

// acrossDays puts together the answers of one redis-cli command run on
// each day the events were created: with one day, its answer; with more,
// the sum of their integers ("(integer) N"), or the one answer that is
// not "(nil)".
func acrossDays(outs [][]string) []string {
	if len(outs) == 1 {
		return outs[0]
	}
	sum, ints := 0, true
	var found [][]string
	for _, o := range outs {
		var n int
		if len(o) != 1 {
			ints = false
		} else if _, err := fmt.Sscanf(o[0], "(integer) %d", &n); err != nil {
			ints = false
		}
		sum += n
		if len(o) != 1 || o[0] != "(nil)" {
			found = append(found, o)
		}
	}
	switch {
	case ints:
		return []string{fmt.Sprintf("(integer) %d", sum)}
	case len(found) == 1:
		return found[0]
	}
	return slices.Concat(outs...)
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

func TestAcrossDays(t *testing.T) {
	for _, tt := range []struct {
		name string
		outs [][]string
		want []string
	}{
		{"one day", [][]string{{"(integer) 10"}}, []string{"(integer) 10"}},
		{"counts add up", [][]string{{"(integer) 9"}, {"(integer) 1"}}, []string{"(integer) 10"}},
		{"the day that has it", [][]string{{"(nil)"}, {`"1765152000"`}}, []string{`"1765152000"`}},
		{"neither has it", [][]string{{"(nil)"}, {"(nil)"}}, []string{"(nil)", "(nil)"}},
		{"both have it", [][]string{{`"1"`}, {`"2"`}}, []string{`"1"`, `"2"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := acrossDays(tt.outs); !slices.Equal(got, tt.want) {
				t.Errorf("acrossDays(%q) = %q, want %q", tt.outs, got, tt.want)
			}
		})
	}
}
