package stripetask_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// decoded is what TestUnmarshalNew and FuzzUnmarshalNew decode into: a
// struct as the worker's handlers read (some fields, the rest skipped),
// and every value.
type decoded struct {
	ID   string `json:"id"`
	Data *struct {
		Object *struct {
			ID       string         `json:"id"`
			Customer any            `json:"customer"`
			Amount   int64          `json:"amount"`
			Metadata map[string]any `json:"metadata"`
		} `json:"object"`
	} `json:"data"`
}

// sameAsUnmarshal fails t unless UnmarshalNew and Unmarshal give data the
// same value and the same error, into a struct and into an any; data as it
// is, and after 4 KB of spaces, which UnmarshalNew scans.
func sameAsUnmarshal(t *testing.T, data []byte) {
	t.Helper()
	sameAs(t, data)
	sameAs(t, append(bytes.Repeat([]byte(" "), 4<<10), data...))
}

func sameAs(t *testing.T, data []byte) {
	t.Helper()
	var s1, s2 decoded
	err1, err2 := stripetask.UnmarshalNew(data, &s1), stripetask.Unmarshal(data, &s2)
	if errString(err1) != errString(err2) || !reflect.DeepEqual(s1, s2) {
		t.Errorf("into a struct: UnmarshalNew = %+v, %v; Unmarshal = %+v, %v", s1, err1, s2, err2)
	}
	var a1, a2 any
	err1, err2 = stripetask.UnmarshalNew(data, &a1), stripetask.Unmarshal(data, &a2)
	if errString(err1) != errString(err2) || !reflect.DeepEqual(a1, a2) {
		t.Errorf("into an any: UnmarshalNew = %v, %v; Unmarshal = %v, %v", a1, err1, a2, err2)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// unmarshalCases are real events and hostile ones: duplicate names
// (escaped, deep, in large objects), invalid UTF-8, wrong types, syntax
// errors before and after a duplicate.
func unmarshalCases() map[string]string {
	base := string(stripetest.Fixture("invoice.paid"))
	cases := map[string]string{
		"name twice":               `{"id":"evt_1","id":"evt_2"}`,
		"escaped name twice":       `{"id":"evt_1","\u0069d":"evt_2"}`,
		"name twice deep":          `{"data":{"object":{"metadata":{"k":1,"k":2}}}}`,
		"invalid UTF-8":            "{\"id\":\"evt_\xff\"}",
		"wrong type":               `{"id":1}`,
		"wrong type after a dup":   `{"data":{"object":{"a":1,"a":2,"amount":"x"}}}`,
		"a dup after a wrong type": `{"data":{"object":{"amount":"x","a":1,"a":2}}}`,
		"syntax error after a dup": `{"a":1,"a":2,}`,
		"syntax error":             `{"id":"evt_1",}`,
		"not an object":            `[1,2]`,
		"empty":                    ``,
		"escapes":                  `{"id":"evt_\"1\\","data":{"object":{"customer":"\u0063us_1"}}}`,
		"a dup in the invoice":     strings.Replace(base, `"object": "invoice",`, `"object": "invoice", "object": "invoice",`, 1),
		"customer twice":           strings.Replace(base, `"customer": `, `"customer": null, "customer": `, 1),
	}
	for _, typ := range stripetest.FixtureTypes() {
		cases["fixture "+typ] = string(stripetest.Fixture(typ))
	}
	return cases
}

// TestUnmarshalNew: UnmarshalNew returns what Unmarshal returns, value
// and error, for every fixture and every hostile event.
func TestUnmarshalNew(t *testing.T) {
	cases := unmarshalCases()
	if cases["a dup in the invoice"] == string(stripetest.Fixture("invoice.paid")) ||
		cases["customer twice"] == string(stripetest.Fixture("invoice.paid")) {
		t.Fatal("the fixture changed: nothing replaced")
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) { sameAsUnmarshal(t, []byte(data)) })
	}
}

func FuzzUnmarshalNew(f *testing.F) {
	for _, data := range unmarshalCases() {
		f.Add([]byte(data))
	}
	f.Fuzz(func(t *testing.T, data []byte) { sameAsUnmarshal(t, data) })
}

// BenchmarkUnmarshalNew is UnmarshalNew against Unmarshal, as the worker
// decodes: a few fields of the envelope and of data.object, the rest
// skipped, for the fixtures of the bench's mix.
func BenchmarkUnmarshalNew(b *testing.B) {
	for _, typ := range []string{"customer.subscription.updated", "invoice.paid", "charge.failed"} {
		body := stripetest.Fixture(typ)
		for _, f := range []struct {
			name      string
			unmarshal func([]byte, any) error
		}{{"Unmarshal", stripetask.Unmarshal}, {"UnmarshalNew", stripetask.UnmarshalNew}} {
			b.Run(typ+"/"+f.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					var v decoded
					if err := f.unmarshal(body, &v); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
