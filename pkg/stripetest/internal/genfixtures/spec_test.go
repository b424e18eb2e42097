package main

import (
	"encoding/json"
	"reflect"
	"testing"
)

// testSpec has a resource "thing" with a free map, a nullable child object,
// a list of children and an expandable (ID or object) field.
func testSpec(t *testing.T) *spec {
	t.Helper()
	var schemas obj
	err := json.Unmarshal([]byte(`{
		"thing": {"type": "object", "required": ["id", "object"], "properties": {
			"id": {"type": "string"},
			"object": {"type": "string", "enum": ["thing"]},
			"metadata": {"type": "object", "additionalProperties": {"type": "string"}},
			"child": {"anyOf": [{"$ref": "#/components/schemas/child"}], "nullable": true},
			"children": {"type": "array", "items": {"$ref": "#/components/schemas/child"}},
			"owner": {"anyOf": [{"type": "string"}, {"$ref": "#/components/schemas/owner"}, {"$ref": "#/components/schemas/deleted_owner"}]}
		}},
		"child": {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}},
		"owner": {"type": "object", "required": ["name"], "properties": {"object": {"enum": ["owner"]}, "name": {"type": "string"}}},
		"deleted_owner": {"type": "object", "required": ["deleted"], "properties": {"object": {"enum": ["owner"]}, "deleted": {"type": "boolean"}}}
	}`), &schemas)
	if err != nil {
		t.Fatal(err)
	}
	return &spec{version: "test", schemas: schemas}
}

func decodeObj(t *testing.T, s string) obj {
	t.Helper()
	var o obj
	if err := json.Unmarshal([]byte(s), &o); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestSpecPrune(t *testing.T) {
	sp := testSpec(t)
	v := decodeObj(t, `{"id": "t1", "object": "thing", "gone": null, "metadata": {"any": "x"},
		"child": {"a": 1, "gone": 2}, "children": [{"a": 1, "gone": 3}], "owner": {"object": "owner", "name": "n", "gone": 4}}`)
	sp.prune(sp.schema("thing"), v)
	want := decodeObj(t, `{"id": "t1", "object": "thing", "metadata": {"any": "x"},
		"child": {"a": 1}, "children": [{"a": 1}], "owner": {"object": "owner", "name": "n"}}`)
	if !reflect.DeepEqual(v, want) {
		t.Errorf("pruned to\n%v\nwant\n%v", v, want)
	}
}

func TestSpecCheck(t *testing.T) {
	tests := []struct {
		name     string
		v        string
		required bool
		exempt   map[string]bool
		want     []string
	}{
		{"spec-shaped", `{"id": "t1", "object": "thing", "metadata": {"k": "v"}, "child": null, "children": [{"a": 1}], "owner": "o1"}`, true, nil, nil},
		{"unknown keys at any depth", `{"id": "t1", "object": "thing", "x": 1, "child": {"a": 1, "y": 2}, "children": [{"a": 1}, {"a": 2, "z": 3}]}`, false, nil, []string{
			"thing.child.y: not in the test spec", "thing.children[1].z: not in the test spec", "thing.x: not in the test spec",
		}},
		{"missing required keys", `{"object": "thing", "child": {"b": 1}}`, true, nil, []string{
			"thing.child.a: required by the test spec, missing", "thing.id: required by the test spec, missing",
		}},
		{"required not checked", `{"object": "thing", "child": {"b": 1}}`, false, nil, nil},
		{"exempt", `{"object": "thing"}`, true, map[string]bool{"thing.id": true}, nil},
		{"the alternative whose keys fit", `{"id": "t1", "object": "thing", "owner": {"object": "owner", "deleted": true}}`, true, nil, nil},
		{"an object where the spec has a string", `{"id": "t1", "object": "thing", "metadata": {"k": {"deep": 1}}}`, false, nil, []string{
			"thing.metadata.k: an object where the spec has none",
		}},
	}
	sp := testSpec(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			sp.check("thing", sp.schema("thing"), decodeObj(t, tc.v), tc.required, tc.exempt, &got)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}
