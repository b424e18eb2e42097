package console

import (
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
)

// TestIDsAreEscapedInURLs: whatever IDs Redis holds, every URL the
// Console builds from one names exactly that ID. Delete on the detail
// page of evt_victim1#x deletes evt_victim1#x, not evt_victim1.
func TestIDsAreEscapedInURLs(t *testing.T) {
	hostile := []string{"evt_victim1#x", "evt_victim1?x=1", "evt_victim1/../x", "evt_victim1%2Fx", "evt_victim1 x", "evt_victim1\\x"}
	execs := []execindextest.Exec{{ID: "evt_victim1", Type: "customer.created", State: "completed"}}
	for _, id := range hostile {
		execs = append(execs, execindextest.Exec{ID: id, Type: "customer.created", State: "completed", Unchecked: true})
	}
	b := setup(t, execs)
	attr := regexp.MustCompile(`(?:href|data-url)="(/[^"]*)"`)
	for _, id := range hostile {
		t.Run(id, func(t *testing.T) {
			page := b.op(t, "GET", "/executions/"+url.PathEscape(id))
			if page.Code != 200 {
				t.Fatalf("detail page: %d", page.Code)
			}
			var deleteURL string
			for _, m := range attr.FindAllStringSubmatch(page.Body.String(), -1) {
				raw := html.UnescapeString(m[1])
				u, err := url.Parse(raw)
				if err != nil {
					t.Errorf("%s: %v", raw, err)
					continue
				}
				if !strings.HasPrefix(u.Path, "/executions/") && !strings.HasPrefix(u.Path, "/api/executions/") {
					continue
				}
				if u.Fragment != "" || u.RawQuery != "" || !strings.Contains(u.Path, id) {
					t.Errorf("URL %q does not name %q (path %q, query %q, fragment %q)", raw, id, u.Path, u.RawQuery, u.Fragment)
				}
				if strings.Contains(m[0], "data-url") && !strings.HasSuffix(u.Path, "/rerun") && !strings.HasSuffix(u.Path, "/cancel") {
					deleteURL = raw
				}
			}
			if deleteURL == "" {
				t.Fatal("no Delete button")
			}
			// The button's fetch goes to the URL as the page holds it.
			if rec := b.do(t, req{method: "DELETE", path: deleteURL, user: opUser, pass: opPass}); rec.Code != 200 {
				t.Fatalf("DELETE %s: %d %s", deleteURL, rec.Code, rec.Body.String())
			}
			if _, err := b.env.Inspector.GetTaskInfo("stripe", id); err == nil {
				t.Errorf("%q still exists", id)
			}
			if _, err := b.env.Inspector.GetTaskInfo("stripe", "evt_victim1"); err != nil {
				t.Errorf("evt_victim1 was deleted: %v", err)
			}
		})
	}
	// The list's links, too.
	list := decode[listing](t, b.op(t, "GET", "/api/executions"), 200)
	for _, e := range list.Executions {
		u, err := url.Parse(e.URL)
		if err != nil || u.Path != "/executions/"+e.ID || u.Fragment != "" || u.RawQuery != "" {
			t.Errorf("URL %q of %q", e.URL, e.ID)
		}
	}
}

// TestDeepEventIsNotAmplified: a small event nested thousands of levels
// deep is shown raw (and escaped), not indented into megabytes.
func TestDeepEventIsNotAmplified(t *testing.T) {
	b := setup(t, nil)
	const depth = 9990
	deep := strings.Repeat(`{"a":`, depth) + `"<b>x</b>"` + strings.Repeat("}", depth)
	body := execindextest.WithObjectField(execindextest.Body(execindextest.Exec{ID: "evt_deep", Type: "customer.created"}), "deeply_nested", deep)
	b.env.Store(t, body)
	rec := b.op(t, "GET", "/executions/evt_deep")
	page := rec.Body.String()
	if rec.Code != 200 || len(page) > 4*len(body)+64<<10 {
		t.Fatalf("status %d, page of %d bytes for an event of %d", rec.Code, len(page), len(body))
	}
	if !strings.Contains(page, `&lt;b&gt;x&lt;/b&gt;`) || strings.Contains(page, "<b>x") {
		t.Errorf("the raw event is not shown escaped")
	}
	// A normal event is still laid out.
	for _, tt := range []struct {
		in       string
		indented bool
	}{
		{`{"a":{"b":[1,2]}}`, true},
		{strings.Repeat("[", maxPrettyDepth) + strings.Repeat("]", maxPrettyDepth), true},
		{strings.Repeat("[", maxPrettyDepth+1) + strings.Repeat("]", maxPrettyDepth+1), false},
		{`{"s":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"["}`, true},
		{`not json`, false},
	} {
		if got := prettyJSON([]byte(tt.in)); (got != tt.in) != tt.indented {
			t.Errorf("prettyJSON(%.40s…) = %.60q, indented: %v", tt.in, got, got != tt.in)
		}
	}
}
