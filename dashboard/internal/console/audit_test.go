package console

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
)

// TestAudit: every operator action is in the audit log, newest first,
// with who, what, how many it acted on, the reason and the result
// (refusals too, acting on none);
// viewers read it and do nothing else; entries past AUDIT_RETENTION are
// neither shown nor kept.
func TestAudit(t *testing.T) {
	b := setup(t, seeds)
	// An action from before the retention.
	old := time.Now().Add(-b.srv.cfg.AuditRetention - time.Hour).UnixMilli()
	if err := b.db.Client.XAdd(t.Context(), &redis.XAddArgs{Stream: audit.Key, ID: strconv.FormatInt(old, 10) + "-0", Values: []any{"action", "rerun", "target", "evt_old"}}).Err(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []req{
		{method: "POST", path: "/api/executions/evt_03/rerun?reason=INC-42%20card%20network"},
		{method: "POST", path: "/api/executions/evt_07/cancel"},
		{method: "DELETE", path: "/api/executions/evt_05?reason=test%20data"},
		{method: "POST", path: "/api/executions/evt_04/discard?reason=sent%20by%20mistake"},
		{method: "POST", path: "/api/executions/rerun", headers: map[string]string{"Content-Type": "application/json"},
			body: `{"query":"state=failed&type=invoice.payment_failed","expect":2,"reason":"INC-42"}`},
		{method: "POST", path: "/api/executions/evt_nope/rerun?reason=typo"},
	} {
		r.user, r.pass = opUser, opPass
		if rec := b.do(t, r); rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", r.method, r.path, rec.Code, rec.Body.String())
		}
	}
	p := decode[audit.Page](t, b.do(t, req{path: "/api/audit", user: viewerUser, pass: viewerPass}), 200)
	type row struct {
		action, target string
		count          int
		reason, result string
	}
	var got []row
	for _, e := range p.Entries {
		if e.User != opUser || e.At.IsZero() || time.Since(e.At) > time.Minute {
			t.Errorf("entry %+v", e)
		}
		got = append(got, row{e.Action, e.Target, e.Count, e.Reason, e.Result})
	}
	want := []row{
		{"rerun", "evt_nope", 0, "typo", "no such execution"},
		{"bulk_rerun", "state=failed&type=invoice.payment_failed", 0, "INC-42", "not possible in this state: the filter now matches 3 executions, not the 2 confirmed; look again"},
		{"discard", "evt_04", 1, "sent by mistake", "ok"},
		{"delete", "evt_05", 1, "test data", "ok"},
		{"cancel", "evt_07", 1, "", "ok"},
		{"rerun", "evt_03", 1, "INC-42 card network", "ok"},
	}
	if len(got) != len(want) {
		t.Fatalf("audit log:\n%+v\nwant\n%+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if p.Entries[5].Detail != "evt_03:rerun:1" || p.Entries[5].URL != "/executions/evt_03" {
		t.Errorf("re-run entry %+v", p.Entries[5])
	}

	// Paging: two at a time, then the rest from Next.
	p2 := decode[audit.Page](t, b.op(t, "GET", "/api/audit?limit=2"), 200)
	if len(p2.Entries) != 2 || p2.Next != p2.Entries[1].ID {
		t.Fatalf("page of 2: %+v", p2)
	}
	p3 := decode[audit.Page](t, b.op(t, "GET", "/api/audit?limit=10&before="+p2.Next), 200)
	if len(p3.Entries) != 4 || p3.Entries[0].Action != "discard" || p3.Next != "" {
		t.Errorf("next page: %+v", p3)
	}
	for _, bad := range []string{"?limit=0", "?limit=501", "?before=yesterday", "?colour=red", "?action=reboot", "?from=yesterday"} {
		if rec := b.op(t, "GET", "/api/audit"+bad); rec.Code != 400 {
			t.Errorf("GET /api/audit%s = %d, want 400", bad, rec.Code)
		}
	}

	// The page shows them.
	page := b.op(t, "GET", "/audit").Body.String()
	for _, s := range []string{"INC-42 card network", "bulk_rerun", "sent by mistake", "evt_03:rerun:1", "no such execution"} {
		if !strings.Contains(page, s) {
			t.Errorf("/audit lacks %q", s)
		}
	}

	// The action from before the retention is neither shown (above) nor
	// kept: the first write after it trimmed it.
	if n := b.db.Client.XLen(t.Context(), audit.Key).Val(); n != 6 {
		t.Errorf("%d entries kept, want the 6 within the retention", n)
	}
}

func TestAuditRetentionSetting(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  time.Duration
		ok    bool
	}{{"", audit.DefaultRetention, true}, {"720h", 720 * time.Hour, true}, {"10m", 0, false}, {"soon", 0, false}} {
		vars := map[string]string{"DASHBOARD_USER": opUser, "DASHBOARD_PASSWORD": opPass, "AUDIT_RETENTION": tt.value}
		cfg, err := LoadConfig(func(k string) string { return vars[k] })
		if (err == nil) != tt.ok || (tt.ok && cfg.AuditRetention != tt.want) {
			t.Errorf("AUDIT_RETENTION=%q: %v, %v", tt.value, cfg.AuditRetention, err)
		}
		if err != nil && !strings.Contains(err.Error(), "AUDIT_RETENTION") {
			t.Errorf("error does not name the variable: %v", err)
		}
	}
}

// TestAuditAsynqmon: an operator's change through asynqmon is in the
// audit log by its API path, with its result (asynqmon answers 500 for an
// unknown task); a read is not.
func TestAuditAsynqmon(t *testing.T) {
	b := setup(t, seeds[:1]) // evt_01, archived
	b.op(t, "GET", "/monitoring/api/queues")
	if rec := b.op(t, "POST", "/monitoring/api/queues/stripe/archived_tasks/evt_01:run"); rec.Code/100 != 2 {
		t.Fatalf("run in asynqmon: %d", rec.Code)
	}
	b.op(t, "DELETE", "/monitoring/api/queues/stripe/archived_tasks/evt_nope")
	p := decode[audit.Page](t, b.op(t, "GET", "/api/audit"), 200)
	if len(p.Entries) != 2 {
		t.Fatalf("audit log %+v, want the two changes", p.Entries)
	}
	if e := p.Entries[1]; e.Action != "asynqmon" || e.Target != "POST queues/stripe/archived_tasks/evt_01:run" || e.Result != "ok" || e.User != opUser {
		t.Errorf("run entry %+v", e)
	}
	if e := p.Entries[0]; e.Target != "DELETE queues/stripe/archived_tasks/evt_nope" || !strings.HasPrefix(e.Result, "HTTP ") {
		t.Errorf("failed delete entry %+v", e)
	}
}

// auditRow is what the audit tests compare of an entry.
type auditRow struct {
	Action, Target string
	Count          int
	Reason, Result string
	Detail         string
}

// auditRows reads the whole audit log, newest first.
func auditRows(t *testing.T, b *bundle) []auditRow {
	t.Helper()
	var rows []auditRow
	for _, e := range decode[audit.Page](t, b.op(t, "GET", "/api/audit?limit=500"), 200).Entries {
		if e.User != opUser {
			t.Errorf("entry by %q: %+v", e.User, e)
		}
		rows = append(rows, auditRow{e.Action, e.Target, e.Count, e.Reason, e.Result, e.Detail})
	}
	return rows
}

// checkAudit compares the audit log, newest first, with want.
func checkAudit(t *testing.T, b *bundle, want ...auditRow) {
	t.Helper()
	got := auditRows(t, b)
	if len(got) != len(want) {
		t.Fatalf("audit log:\n%+v\nwant\n%+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d:\n%+v\nwant\n%+v", i, got[i], want[i])
		}
	}
}

// TestAuditDeliveryRerun: re-running a delivery, from the API or the
// page's form, is audited with what it did; a refusal too.
func TestAuditDeliveryRerun(t *testing.T) {
	b := setup(t, nil)
	ids := enqueueDeliveries(t, b, "app", "app")
	insp := asynq.NewInspectorFromRedisClient(b.db.Client)
	for _, id := range ids {
		if err := insp.ArchiveTask("dest-app", id); err != nil {
			t.Fatal(err)
		}
	}
	if rec := b.op(t, "POST", "/api/deliveries/"+ids[0]+"/rerun?reason=INC-7"); rec.Code != 200 {
		t.Fatalf("API re-run: %d %s", rec.Code, rec.Body.String())
	}
	if rec := b.op(t, "POST", "/deliveries/"+ids[1]+"/rerun"); rec.Code != 303 {
		t.Fatalf("form re-run: %d %s", rec.Code, rec.Body.String())
	}
	if rec := b.op(t, "POST", "/api/deliveries/"+ids[0]+"/rerun"); rec.Code != 409 {
		t.Fatalf("re-run of a pending delivery: %d %s", rec.Code, rec.Body.String())
	}
	checkAudit(t, b,
		auditRow{"delivery_rerun", ids[0], 0, "", "not possible in this state: " + ids[0] + " is pending", ""},
		auditRow{"delivery_rerun", ids[1], 1, "", "ok", "run now"},
		auditRow{"delivery_rerun", ids[0], 1, "INC-7", "ok", "run now"},
	)
}

// TestAuditRerunSelectedNamesWhatItActedOn: "re-run selected" records the
// executions it re-ran, not the IDs it was asked for: made-up IDs beside
// a real one cannot hide it.
func TestAuditRerunSelectedNamesWhatItActedOn(t *testing.T) {
	b := setup(t, seeds)
	var fake []string
	for i := range 45 {
		fake = append(fake, fmt.Sprintf(`"evt_%s%02d"`, strings.Repeat("0", 20), i))
	}
	json := map[string]string{"Content-Type": "application/json"}
	for _, body := range []string{
		`{"ids":[` + strings.Join(fake, ",") + `,"evt_08"],"reason":"INC-1"}`,
		`{"ids":["evt_05","evt_03","evt_01","evt_nope"]}`,
	} {
		if rec := b.do(t, req{method: "POST", path: "/api/executions/rerun-selected", user: opUser, pass: opPass, headers: json, body: body}); rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
	}
	checkAudit(t, b,
		auditRow{"rerun_selected", "evt_01,evt_03", 2, "", "ok", "1 run, 1 copied, 2 skipped, 0 failed, of 4 asked"},
		auditRow{"rerun_selected", "evt_08", 1, "INC-1", "ok", "1 run, 0 copied, 45 skipped, 0 failed, of 46 asked"},
	)
}

// TestAuditAsynqmonCounts: every change made through asynqmon is audited
// with what it changed: how many tasks, and which when it names them.
func TestAuditAsynqmonCounts(t *testing.T) {
	b := setup(t, seeds)
	json := map[string]string{"Content-Type": "application/json"}
	for _, r := range []req{
		{method: "POST", path: "/monitoring/api/queues/stripe/archived_tasks:run_all"},
		{method: "POST", path: "/monitoring/api/queues/stripe/retry_tasks:batch_archive", headers: json, body: `{"task_ids":["evt_02","evt_nope"]}`},
		{method: "DELETE", path: "/monitoring/api/queues/stripe/scheduled_tasks/evt_06"},
		{method: "POST", path: "/monitoring/api/queues/stripe/active_tasks:cancel_all"},
		{method: "DELETE", path: "/monitoring/api/queues/stripe/completed_tasks:delete_all"},
		{method: "POST", path: "/monitoring/api/queues/stripe:resume"},
	} {
		r.user, r.pass = opUser, opPass
		if rec := b.do(t, r); rec.Code/100 != 2 {
			t.Fatalf("%s %s: %d %s", r.method, r.path, rec.Code, rec.Body.String())
		}
	}
	checkAudit(t, b,
		auditRow{"asynqmon", "POST queues/stripe:resume", 0, "", "ok", ""},
		auditRow{"asynqmon", "DELETE queues/stripe/completed_tasks:delete_all", 2, "", "ok", ""},
		auditRow{"asynqmon", "POST queues/stripe/active_tasks:cancel_all", 1, "", "ok", "evt_07"},
		auditRow{"asynqmon", "DELETE queues/stripe/scheduled_tasks/evt_06", 1, "", "ok", "evt_06"},
		auditRow{"asynqmon", "POST queues/stripe/retry_tasks:batch_archive", 1, "", "ok", "evt_02"},
		auditRow{"asynqmon", "POST queues/stripe/archived_tasks:run_all", 2, "", "ok", ""},
	)
}
