package manifests

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stripeq/stripeq/pkg/keyspace"
)

// keysTableHeader starts deploy/README.md's table of Redis keys.
const keysTableHeader = "| key | type | what |"

// keysDoc is the document that holds the key table, from the root.
const keysDoc = "pkg/keyspace/README.md"

// queue is the queue the key table writes its keys with.
const queue = "{stripe}"

// keyRenders is every exported name of pkg/keyspace, rendered with the
// placeholders the key table writes ("<customer id>", queue "stripe"). A
// name ending in "/" is a prefix: some documented key starts with it.
func keyRenders() map[string]string {
	const q = "stripe"
	return map[string]string{
		"Prefix":                keyspace.Prefix + "/",
		"AsynqPrefix":           keyspace.AsynqPrefix + "/",
		"AsynqQueues":           keyspace.AsynqQueues,
		"Queue":                 keyspace.Queue(q) + "/",
		"Task":                  keyspace.Task(q, "<event id>"),
		"Pending":               keyspace.Pending(q),
		"Active":                keyspace.Active(q),
		"Scheduled":             keyspace.Scheduled(q),
		"Retry":                 keyspace.Retry(q),
		"Archived":              keyspace.Archived(q),
		"Completed":             keyspace.Completed(q),
		"Customer":              keyspace.Customer("<customer id>"),
		"CustomerOpenDisputes":  keyspace.CustomerOpenDisputes("<customer id>"),
		"CustomerDisputeEvents": keyspace.CustomerDisputeEvents("<customer id>"),
		"Subscription":          keyspace.Subscription("<sub id>"),
		"Dispute":               keyspace.Dispute("<dp id>"),
		"Charge":                keyspace.Charge("<ch id>"),
		"Notifications":         keyspace.Notifications,
		"Notified":              keyspace.Notified("<kind>", "<id>"),
		"Once":                  keyspace.Once("<event id>", "<kind>"),
		"Index":                 keyspace.Index(q) + "/",
		"IndexAll":              keyspace.IndexAll(q),
		"IndexSet":              keyspace.IndexSet(q, "type", "<t>"),
		"IndexKeys":             keyspace.IndexKeys(q),
		"IndexValues":           keyspace.IndexValues(q, "<field>"),
		"IndexReruns":           keyspace.IndexReruns(q, "<id>"),
		"IndexRuns":             keyspace.IndexRuns(q, "<id>"),
		"IndexRerunSeq":         keyspace.IndexRerunSeq(q),
		"IndexImplicit":         keyspace.IndexImplicit(q),
		"Fail":                  keyspace.Fail(q) + "/",
		"FailAll":               keyspace.FailAll(q),
		"FailRecord":            keyspace.FailRecord(q, "<task id>"),
		"FailAttempts":          keyspace.FailAttempts(q, "<task id>"),
		"Seen":                  keyspace.Seen(q, "<yyyymmdd>"),
		"Slots":                 keyspace.Slots(q),
		"SlotsWanted":           keyspace.SlotsWanted(q),
		"Alert":                 keyspace.Alert(q) + "/",
		"AlertSeen":             keyspace.AlertSeen(q, "<kind>"),
		"AlertByType":           keyspace.AlertByType(q),
		"AlertByError":          keyspace.AlertByError(q),
		"AlertLock":             keyspace.AlertLock(q),
		"Job":                   keyspace.Job(q, "<id>"),
		"DeliveryAttempts":      keyspace.DeliveryAttempts("<delivery task id>"),
		"DeliveryOrder":         keyspace.DeliveryOrder("<name>", "<customer id>"),
		"DeliveryReruns":        keyspace.DeliveryReruns("<delivery task id>"),
		"Recovery":              keyspace.Recovery("<id>"),
		"RecoveryEvents":        keyspace.RecoveryEvents("<id>"),
		"Recoveries":            keyspace.Recoveries,
		"RecoveriesCheck":       keyspace.RecoveriesCheck,
		"DashboardSession":      keyspace.DashboardSession("<sha256>"),
		"DashboardSessions":     keyspace.DashboardSessions("<user>"),
		"Audit":                 keyspace.Audit,
		"TestClaim":             strings.Replace(keyspace.TestClaim(7), "7", "<n>", 1),
		// Not names (a space first): the keys of a destination's queue,
		// "dest-<name>".
		" destination task":    keyspace.Task("dest-<name>", "<event id>:dest:<name>"),
		" destination pending": keyspace.Pending("dest-<name>"),
		// The index's other sets, as IndexSet.
		" index livemode":   keyspace.IndexSet(q, "livemode", "<b>"),
		" index apiVersion": keyspace.IndexSet(q, "apiVersion", "<v>"),
		" index customer":   keyspace.IndexSet(q, "customer", "<c>"),
		" index account":    keyspace.IndexSet(q, "account", "<a>"),
		" index ref":        keyspace.IndexSet(q, "ref", "<id or email>"),
		" index prefix":     keyspace.IndexSet(q, "prefix", "<p>"),
		" index source":     keyspace.IndexSet(q, "source", "recovery"),
	}
}

// TestKeyTable checks deploy/README.md's "Redis key layout" table against
// pkg/keyspace, the one owner of the layout: every exported name of
// keyspace is rendered here (a new key must be added below, and so to the
// table), every key it renders is a row of the table, and every key of
// the table is one keyspace renders.
func TestKeyTable(t *testing.T) {
	documented := keyTable(t)
	renders := keyRenders()
	for _, name := range keyspaceNames(t) {
		if _, ok := renders[name]; !ok {
			t.Errorf("keyspace.%s is not rendered by keyRenders: add it, and its key to %s's key table", name, keysDoc)
		}
	}
	rendered := map[string]bool{}
	for name, key := range renders {
		if prefix, ok := strings.CutSuffix(key, "/"); ok {
			if !slices.ContainsFunc(documented, func(d string) bool { return strings.HasPrefix(d, prefix) }) {
				t.Errorf("no key of %s's table starts with keyspace.%s, %s", keysDoc, name, prefix)
			}
			continue
		}
		rendered[key] = true
		if !slices.Contains(documented, key) {
			t.Errorf("keyspace.%s is %s, which %s's key table lacks", strings.TrimSpace(name), key, keysDoc)
		}
	}
	for _, d := range documented {
		if !rendered[d] && !strings.Contains(d, "…") && !strings.Contains(d, "{stripe-") {
			t.Errorf("%s's key table has %s, which pkg/keyspace does not spell", keysDoc, d)
		}
	}
}

// keyspaceNames returns the exported top-level functions and constants of
// pkg/keyspace.
func keyspaceNames(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join(root, "pkg", "keyspace", "keyspace.go"), nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil && d.Name.IsExported() {
				names = append(names, d.Name.Name)
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				if v, ok := s.(*ast.ValueSpec); ok {
					for _, n := range v.Names {
						if n.IsExported() {
							names = append(names, n.Name)
						}
					}
				}
			}
		}
	}
	if len(names) < 20 {
		t.Fatalf("pkg/keyspace exports %d names; the parser is wrong", len(names))
	}
	return names
}

// keyTable returns the keys of keysDoc's key table. A row names one key
// or more, in backquotes; one that starts with ":" continues the first
// key of its row after its hash tag: `stripeq:idx:{stripe}:all`,
// `:type:<t>` is stripeq:idx:{stripe}:all and stripeq:idx:{stripe}:type:<t>.
func keyTable(t *testing.T) []string {
	t.Helper()
	code := regexp.MustCompile("`([^`]+)`")
	var keys []string
	for _, r := range tableRows(t, keysDoc, keysTableHeader, 4) {
		base := ""
		for _, m := range code.FindAllStringSubmatch(r.cells[1], -1) {
			k := m[1]
			if rest, ok := strings.CutPrefix(k, ":"); ok && base != "" {
				k = base + ":" + rest
			} else if j := strings.Index(k, "}"); j >= 0 {
				base = k[:j+1]
			}
			keys = append(keys, k)
		}
	}
	if len(keys) < 20 || !slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(k, queue) }) {
		t.Fatalf("%s's key table has %d keys; the parser is wrong", keysDoc, len(keys))
	}
	return keys
}
