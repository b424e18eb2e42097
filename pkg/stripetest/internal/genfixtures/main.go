// Command genfixtures writes the Stripe webhook event fixtures of
// pkg/stripetest: one customer's story (stripetest.Lifecycle), one event per
// type, at each API version of stripetest.APIVersions.
//
// 2023-10-16 (testdata/events/<type>.json): every event wraps an object
// taken from stripe-mock v0.180.0's fixtures3.json (Stripe API 2023-10-16,
// the version stripe-go v76 speaks), with IDs rewritten so that all events
// describe one customer, subscription, invoice, payment intent, charge,
// dispute and checkout session, and with the fields that the event type
// implies (status, failure details, …) set (story.go). The generator only
// changes fields the fixture already has (set panics on any other); the one
// field it adds (add) and the two it removes (delete) are ones the
// 2023-10-16 API has, or leaves out, for these objects.
//
// 2025-03-31.basil (testdata/events/2025-03-31.basil/<type>.json): the
// 2023-10-16 objects with the breaking changes of 2024-09-30.acacia and
// 2025-03-31.basil applied, each naming its changelog entry (basil.go).
//
// 2026-08-26.dahlia (testdata/events/2026-08-26.dahlia/<type>.json): the
// basil story laid over stripe-mock v0.203.0's fixtures3.json, whose spec3.json
// is 2026-08-26.dahlia, with every key the spec does not define dropped from
// the fixtures (dahlia.go).
//
// Before writing anything it checks, and refuses to write on any failure:
//   - every key of every dahlia object (and event envelope) is one the
//     dahlia spec defines, and every key the spec requires is there;
//   - every key of every basil object is one the dahlia spec defines (no
//     key a release up to basil removed is left);
//   - every key of every 2023-10-16 object is one the 2023-10-16 spec
//     (stripe-mock v0.180.0's) defines.
//
// Both stripe-mock modules must be in the module cache (go tool task
// fixtures downloads them):
//
//	go mod download github.com/stripe/stripe-mock@v0.180.0 github.com/stripe/stripe-mock@v0.203.0
//
// Run from pkg/stripetest (go generate does that):
//
//	go run ./internal/genfixtures -out testdata/events
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/stripeq/stripeq/pkg/stripetest"
)

type obj = map[string]any

type event struct {
	ID              string    `json:"id"`
	Object          string    `json:"object"`
	APIVersion      string    `json:"api_version"`
	Created         int64     `json:"created"`
	Data            eventData `json:"data"`
	Livemode        bool      `json:"livemode"`
	PendingWebhooks int       `json:"pending_webhooks"`
	Request         request   `json:"request"`
	Type            string    `json:"type"`
}

type eventData struct {
	Object             obj `json:"object"`
	PreviousAttributes obj `json:"previous_attributes,omitempty"`
}

type request struct {
	ID             *string `json:"id"`
	IdempotencyKey *string `json:"idempotency_key"`
}

// The stripe-mock releases whose embedded fixtures and spec the story is
// built on.
const (
	stripeMock2023   = "v0.180.0" // spec: 2023-10-16
	stripeMockDahlia = "v0.203.0" // spec: 2026-08-26.dahlia
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("genfixtures: ")
	mock2023 := flag.String("stripe-mock-2023", "", "stripe-mock "+stripeMock2023+"'s module directory (default: the module cache's)")
	mockDahlia := flag.String("stripe-mock-dahlia", "", "stripe-mock "+stripeMockDahlia+"'s module directory (default: the module cache's)")
	out := flag.String("out", "testdata/events", "directory to write the 2023-10-16 <type>.json files to; each later version goes to <version>/ in it")
	version := flag.String("version", "", "write only this API version's files (default: every version's); all are checked regardless")
	markDeleted := flag.Bool("mark-deleted", false, `add "deleted": true to the customer.deleted object (real customer.deleted webhooks carry the customer as it was, without it)`)
	flag.Parse()
	if *version != "" && !slices.Contains(stripetest.APIVersions(), *version) {
		log.Fatalf("-version %q: the versions are %s", *version, strings.Join(stripetest.APIVersions(), ", "))
	}
	if *mock2023 == "" {
		*mock2023 = moduleDir(stripeMock2023)
	}
	if *mockDahlia == "" {
		*mockDahlia = moduleDir(stripeMockDahlia)
	}

	res2023, spec2023 := openapi(*mock2023)
	resDahlia, specDahlia := openapi(*mockDahlia)
	if spec2023.version != stripetest.APIVersion20231016 || specDahlia.version != stripetest.APIVersionDahlia {
		log.Fatalf("specs are %s and %s, want %s and %s", spec2023.version, specDahlia.version, stripetest.APIVersion20231016, stripetest.APIVersionDahlia)
	}

	g := &gen{res: res2023, markDeleted: *markDeleted}
	d := newDahlia(specDahlia, resDahlia)
	events, problems := tell(g, d, spec2023, specDahlia)
	if len(problems) > 0 {
		log.Fatalf("nothing written; %d problems:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}

	for _, v := range stripetest.APIVersions() {
		if *version != "" && v != *version {
			continue
		}
		dir := *out
		if v != stripetest.APIVersion20231016 {
			dir = filepath.Join(*out, v)
		}
		if err := write(dir, events[v]); err != nil {
			log.Fatal(err)
		}
	}
}

// tell returns the story's events at each API version, and a line for each
// problem the checks find:
//   - 2023-10-16: every key is one spec2023 defines;
//   - 2025-03-31.basil: every key of the objects is one specDahlia defines
//     (stripe-mock has no basil spec; no key a release up to basil removed
//     is left, and no later release removed one of the story's);
//   - 2026-08-26.dahlia: every key of the events and objects is one
//     specDahlia defines, and every key it requires is there.
func tell(g *gen, d *dahlia, spec2023, specDahlia *spec) (map[string][]event, []string) {
	events := map[string][]event{}
	var problems []string
	for _, t := range stripetest.Lifecycle() {
		o, prev := g.object(t)
		e := newEvent(t, stripetest.APIVersion20231016, o, prev)
		problems = append(problems, checkEvent(spec2023, e, false)...)
		events[e.APIVersion] = append(events[e.APIVersion], e)

		bo, bprev := toBasil(o, prev)
		e = newEvent(t, stripetest.APIVersionBasil, bo, bprev)
		problems = append(problems, checkObject(specDahlia, e, false)...)
		events[e.APIVersion] = append(events[e.APIVersion], e)

		do := d.object(bo)
		e = newEvent(t, stripetest.APIVersionDahlia, do, d.previous(do, bprev))
		problems = append(problems, checkEvent(specDahlia, e, true)...)
		events[e.APIVersion] = append(events[e.APIVersion], e)
	}
	return events, append(problems, d.problems...)
}

// exemptRequired lists the keys the dahlia spec requires that an object of
// the story may lack, by event type and path.
var exemptRequired = map[string]map[string]bool{
	// Stripe's description of invoice.upcoming: "Note: The received
	// Invoice object will not have an invoice ID." (It has none at
	// 2023-10-16 either.)
	"invoice.upcoming": {"invoice.id": true},
}

func newEvent(t, version string, o, prev obj) event {
	return event{
		ID:              "evt_stripeq_" + strings.ReplaceAll(t, ".", "_"),
		Object:          "event",
		APIVersion:      version,
		Created:         at(t),
		Data:            eventData{Object: o, PreviousAttributes: prev},
		PendingWebhooks: 1,
		Type:            t,
	}
}

// checkEvent checks e's envelope and objects against sp (see checkObject).
func checkEvent(sp *spec, e event, full bool) []string {
	var problems []string
	var envelope obj
	b, _ := json.Marshal(e)
	_ = json.Unmarshal(b, &envelope)
	envelope["data"] = obj{"object": obj{}} // the objects are checked below
	sp.check(e.Type+" (event)", sp.schema("event"), envelope, full, nil, &problems)
	return append(problems, checkObject(sp, e, full)...)
}

// checkObject returns a line for every key of e's object and previous
// attributes that sp does not define, and, if full, for every key sp
// requires of the object that it lacks.
func checkObject(sp *spec, e event, full bool) []string {
	var problems []string
	o := e.Data.Object
	kind := o["object"].(string)
	schema := sp.schema(kind)
	sp.check(fmt.Sprintf("%s %s: %s", e.APIVersion, e.Type, kind), schema, o, full, prefixed(fmt.Sprintf("%s %s: ", e.APIVersion, e.Type), exemptRequired[e.Type]), &problems)
	if e.Data.PreviousAttributes != nil {
		sp.check(fmt.Sprintf("%s %s: previous_attributes", e.APIVersion, e.Type), schema, e.Data.PreviousAttributes, false, nil, &problems)
	}
	return problems
}

// prefixed returns the keys of m with p before each.
func prefixed(p string, m map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[p+k] = true
	}
	return out
}

// write replaces the <type>.json files in dir by events.
func write(dir string, events []event) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	for _, e := range events {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(e); err != nil { // Encode ends with a newline
			return fmt.Errorf("%s: %w", e.Type, err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Type+".json"), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// moduleDir returns the module cache's directory of stripe-mock at version,
// or exits saying how to download it.
func moduleDir(version string) string {
	p, err := cachedModule(version)
	if err != nil {
		log.Fatalf("%v\nrun: go mod download github.com/stripe/stripe-mock@%s (or pass -stripe-mock-2023 and -stripe-mock-dahlia)", err, version)
	}
	return p
}

// cachedModule returns the module cache's directory of stripe-mock at
// version, or an error if it is not there.
func cachedModule(version string) (string, error) {
	modcache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	p := filepath.Join(strings.TrimSpace(string(modcache)), "github.com", "stripe", "stripe-mock@"+version)
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

// openapi loads the fixtures and spec a stripe-mock module embeds, or
// exits.
func openapi(moduleDir string) (obj, *spec) {
	res, sp, err := loadOpenAPI(moduleDir)
	if err != nil {
		log.Fatal(err)
	}
	return res, sp
}

func loadOpenAPI(moduleDir string) (obj, *spec, error) {
	dir := filepath.Join(moduleDir, "embedded", "openapi")
	res, err := load(filepath.Join(dir, "fixtures3.json"))
	if err != nil {
		return nil, nil, err
	}
	sp, err := loadSpec(filepath.Join(dir, "spec3.json"))
	return res, sp, err
}

func load(path string) (obj, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var f struct {
		Resources obj `json:"resources"`
	}
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.Resources == nil {
		return nil, fmt.Errorf("%s: no resources", path)
	}
	return f.Resources, nil
}
