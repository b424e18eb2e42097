package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/compress"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestCompressedPayloads runs the three binaries with
// PAYLOAD_COMPRESSION=zstd: the stored payload is a zstd frame that gives
// back the body byte for byte; the worker handles it; the Console's detail
// and asynqmon show the event JSON; and a re-run copy, stored as its
// original was, runs too.
func TestCompressedPayloads(t *testing.T) {
	s := startStack(t, "PAYLOAD_COMPRESSION", "zstd")
	id := "evt_e2e_zstd"
	body := stripetest.Edit(stripetest.Event("customer.updated", id, time.Now().Add(-time.Minute)), func(e map[string]any) {
		stripetest.Object(e)["email"] = "zstd@e2e.example.com"
	})
	if status, msg := s.deliver(t, body); status != 200 || msg != "Received" {
		t.Fatalf("delivery answered %d %q", status, msg)
	}
	insp := asynq.NewInspectorFromRedisClient(s.db.Client)
	poll.Until(t, 20*time.Second, "the task to complete", func() bool {
		info, err := insp.GetTaskInfo("stripe", id)
		return err == nil && info.State == asynq.TaskStateCompleted
	})
	info, err := insp.GetTaskInfo("stripe", id)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := stripetask.Body(info.Payload)
	if !compress.IsCompressed(info.Payload) || err != nil || !bytes.Equal(stored, body) {
		t.Fatalf("stored payload: %d bytes, compressed %v, decompresses to the body: %v (%v)",
			len(info.Payload), compress.IsCompressed(info.Payload), bytes.Equal(stored, body), err)
	}
	ctx := context.Background()
	if email := s.db.Client.HGet(ctx, records.CustomerKey("cus_stripeq_demo"), "email").Val(); email != "zstd@e2e.example.com" {
		t.Errorf("customer record email = %q: the worker did not apply the compressed event", email)
	}

	// The Console's detail carries the event JSON.
	status, raw := get(t, s.dashURL+"/api/executions/"+id, s.dashUser, s.dashPass)
	var detail struct{ Payload json.RawMessage }
	if status != 200 || json.Unmarshal(raw, &detail) != nil || !strings.Contains(string(detail.Payload), `"email":"zstd@e2e.example.com"`) {
		t.Errorf("Console detail: %d, payload %.120s", status, detail.Payload)
	}
	// So does asynqmon's list, through its PayloadFormatter.
	status, raw = get(t, s.dashURL+"/monitoring/api/queues/stripe/completed_tasks", s.dashUser, s.dashPass)
	var list struct {
		Tasks []struct{ ID, Payload string } `json:"tasks"`
	}
	if status != 200 || json.Unmarshal(raw, &list) != nil || len(list.Tasks) != 1 || !strings.Contains(list.Tasks[0].Payload, `"email":"zstd@e2e.example.com"`) {
		t.Errorf("asynqmon: %d %.300s", status, raw)
	}

	// A re-run copy keeps the frame as stored and is handled.
	req, _ := http.NewRequest(http.MethodPost, s.dashURL+"/api/executions/"+id+"/rerun", nil)
	req.SetBasicAuth(s.dashUser, s.dashPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rerun struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&rerun)
	resp.Body.Close()
	if resp.StatusCode != 200 || rerun.ID == "" {
		t.Fatalf("re-run: %d %+v", resp.StatusCode, rerun)
	}
	poll.Until(t, 20*time.Second, "the re-run copy to complete", func() bool {
		info, err := insp.GetTaskInfo("stripe", rerun.ID)
		return err == nil && info.State == asynq.TaskStateCompleted
	})
	cp, err := insp.GetTaskInfo("stripe", rerun.ID)
	if err != nil || !bytes.Equal(cp.Payload, info.Payload) {
		t.Errorf("re-run copy payload differs from the original's stored frame (%v)", err)
	}
	t.Logf("a %d-byte event stored in %d bytes; handled, shown, re-run", len(body), len(info.Payload))
}
