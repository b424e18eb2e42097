package console

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// exportLines reads an export: the IDs of its execution lines, and its
// last line, decoded.
func exportLines(t *testing.T, body string) (ids []string, last map[string]any) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	for i, line := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("line %d %.200q: %v", i+1, line, err)
		}
		if i == len(lines)-1 {
			return ids, v
		}
		id, _ := v["id"].(string)
		ids = append(ids, id)
	}
	return nil, nil
}

// TestExportEndsWithItsCount: every export ends with a line that says it
// is complete and how many executions it holds, so that a cut one shows.
func TestExportEndsWithItsCount(t *testing.T) {
	b := setup(t, seeds)
	for _, tt := range []struct {
		filter string
		want   int
	}{{"", len(seeds)}, {"state=failed", 3}, {"customer=cus_nobody", 0}} {
		rec := b.do(t, req{path: "/api/executions.ndjson?" + tt.filter, user: viewerUser, pass: viewerPass})
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", tt.filter, rec.Code, rec.Body.String())
		}
		ids, last := exportLines(t, rec.Body.String())
		if len(ids) != tt.want || last["complete"] != true || last["count"] != float64(tt.want) || len(last) != 2 {
			t.Errorf("%q: %d executions, then %v; want %d, then {complete: true, count: %d}", tt.filter, len(ids), last, tt.want, tt.want)
		}
	}
}

// slowTasks makes every GetTaskInfo take delay, as a loaded Redis would.
type slowTasks struct {
	inspector
	delay time.Duration
}

func (s slowTasks) GetTaskInfo(queue, id string) (*asynq.TaskInfo, error) {
	time.Sleep(s.delay)
	return s.inspector.GetTaskInfo(queue, id)
}

// TestExportOutlivesTheWriteTimeout: an export that takes longer than the
// server's write timeout, while it makes progress, is not cut.
func TestExportOutlivesTheWriteTimeout(t *testing.T) {
	b := setup(t, seeds)
	b.srv.tasks = slowTasks{inspector: b.srv.tasks, delay: 300 * time.Millisecond}
	srv := httptest.NewUnstartedServer(b.h)
	srv.Config.WriteTimeout = 100 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	hr, _ := http.NewRequest("GET", srv.URL+"/api/executions.ndjson", nil)
	hr.SetBasicAuth(viewerUser, viewerPass)
	resp, err := srv.Client().Do(hr)
	if err != nil {
		t.Fatalf("export cut: %v", err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&body); err != nil {
		t.Fatalf("export cut after %d bytes: %v", body.Len(), err)
	}
	if ids, last := exportLines(t, body.String()); len(ids) != len(seeds) || last["complete"] != true {
		t.Errorf("%d executions, then %v; want %d and complete", len(ids), last, len(seeds))
	}
}

// gatedTasks holds every GetTaskInfo until gate closes, and says on
// entered when one starts.
type gatedTasks struct {
	inspector
	entered chan struct{}
	gate    chan struct{}
}

func (g gatedTasks) GetTaskInfo(queue, id string) (*asynq.TaskInfo, error) {
	g.entered <- struct{}{}
	<-g.gate
	return g.inspector.GetTaskInfo(queue, id)
}

// TestExportsAreLimited: each user runs at most maxUserExports exports at
// once and the dashboard maxExports; past either, 429 says which, at once.
func TestExportsAreLimited(t *testing.T) {
	b := setup(t, seeds[:1]) // one execution: one GetTaskInfo per export
	gated := gatedTasks{inspector: b.srv.tasks, entered: make(chan struct{}, 16), gate: make(chan struct{})}
	b.srv.tasks = gated
	srv := httptest.NewServer(b.h)
	t.Cleanup(srv.Close)
	client := &http.Client{Timeout: 10 * time.Second}
	export := func(user, pass string) (int, string, error) {
		hr, _ := http.NewRequest("GET", srv.URL+"/api/executions.ndjson", nil)
		hr.SetBasicAuth(user, pass)
		resp, err := client.Do(hr)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		var body strings.Builder
		_, err = bufio.NewReader(resp.Body).WriteTo(&body)
		return resp.StatusCode, body.String(), err
	}
	// running starts an export that waits at the gate.
	var wg sync.WaitGroup
	running := func(user, pass string) {
		wg.Go(func() {
			if status, body, err := export(user, pass); status != 200 || err != nil || !strings.Contains(body, `"complete":true`) {
				t.Errorf("%s's export: %d %v %.200s", user, status, err, body)
			}
		})
		<-gated.entered
	}
	refused := func(user, pass, why string) {
		t.Helper()
		if status, body, err := export(user, pass); status != 429 || !strings.Contains(body, why) {
			t.Errorf("%s's export: %d %v %.200s; want 429 saying %q", user, status, err, body, why)
		}
	}
	for range maxUserExports {
		running(viewerUser, viewerPass)
	}
	refused(viewerUser, viewerPass, "of yours")
	for range maxExports - maxUserExports {
		running(opUser, opPass)
	}
	refused(opUser, opPass, "on this dashboard")
	close(gated.gate)
	wg.Wait()
	if status, body, err := export(opUser, opPass); status != 200 || err != nil || !strings.Contains(body, `"complete":true`) {
		t.Errorf("an export once the others ended: %d %v %.200s", status, err, body)
	}
}
