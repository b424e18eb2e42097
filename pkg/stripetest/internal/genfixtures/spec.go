package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

// spec is the schemas of a Stripe OpenAPI spec (stripe-mock's spec3.json):
// what keys an object of each resource may have at the spec's API version.
type spec struct {
	version string
	schemas map[string]any
}

func loadSpec(path string) (*spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Info       struct{ Version string } `json:"info"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(f.Components.Schemas) == 0 {
		return nil, fmt.Errorf("%s: no components.schemas", path)
	}
	return &spec{version: f.Info.Version, schemas: f.Components.Schemas}, nil
}

// schema returns the schema of a resource ("invoice", "checkout.session").
func (s *spec) schema(resource string) obj {
	sc, ok := s.schemas[resource].(obj)
	if !ok {
		panic(fmt.Sprintf("spec %s has no schema %q", s.version, resource))
	}
	return sc
}

// alternatives flattens $ref, anyOf, oneOf and allOf into the schemas a
// value may match.
func (s *spec) alternatives(schema obj) []obj {
	if ref, ok := schema["$ref"].(string); ok {
		return s.alternatives(s.schema(strings.TrimPrefix(ref, "#/components/schemas/")))
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		if list, ok := schema[k].([]any); ok {
			var out []obj
			for _, x := range list {
				out = append(out, s.alternatives(x.(obj))...)
			}
			return out
		}
	}
	return []obj{schema}
}

// objectSchema is what the spec says about the keys of one object value.
type objectSchema struct {
	props    obj      // the keys it may have, each with its schema; nil for a free map
	free     any      // a free map's value schema (metadata); nil if not a free map
	required []string // keys it must have; nil when several alternatives fit
}

// objectFor returns what the schema allows for the object value v: the
// alternatives of schema that are objects, narrowed to those whose
// "object" enum names v's "object" and then to those that define all of
// v's keys. It reports false when schema allows no object.
func (s *spec) objectFor(schema obj, v obj) (objectSchema, bool) {
	var cands []obj
	for _, a := range s.alternatives(schema) {
		if _, ok := a["properties"]; ok {
			cands = append(cands, a)
		} else if ap, ok := a["additionalProperties"]; ok && ap != false {
			return objectSchema{free: ap}, true
		} else if a["type"] == "object" {
			return objectSchema{free: obj{}}, true // an object the spec leaves open
		}
	}
	if len(cands) == 0 {
		return objectSchema{}, false
	}
	if kind, ok := v["object"].(string); ok {
		var named []obj
		for _, c := range cands {
			p, _ := c["properties"].(obj)["object"].(obj)
			if enum, _ := p["enum"].([]any); slices.Contains(enum, any(kind)) {
				named = append(named, c)
			}
		}
		if len(named) > 0 {
			cands = named
		}
	}
	if len(cands) > 1 {
		var fit []obj
		for _, c := range cands {
			props := c["properties"].(obj)
			all := true
			for k := range v {
				if _, ok := props[k]; !ok {
					all = false
					break
				}
			}
			if all {
				fit = append(fit, c)
			}
		}
		if len(fit) > 0 {
			cands = fit
		}
	}
	out := objectSchema{props: obj{}}
	for _, c := range cands {
		for k, p := range c["properties"].(obj) {
			out.props[k] = p
		}
	}
	if len(cands) == 1 {
		for _, r := range asSlice(cands[0]["required"]) {
			out.required = append(out.required, r.(string))
		}
	}
	return out, true
}

// items returns the schema of a list value's elements, or nil.
func (s *spec) items(schema obj) obj {
	for _, a := range s.alternatives(schema) {
		if it, ok := a["items"].(obj); ok {
			return it
		}
	}
	return nil
}

// prune deletes, in place, every key of v (at any depth) that its schema
// does not define. stripe-mock's fixtures keep a few keys its spec no
// longer has (invoice.subscription: null, charge.source, …).
func (s *spec) prune(schema obj, v any) {
	switch v := v.(type) {
	case obj:
		shape, ok := s.objectFor(schema, v)
		if !ok {
			return
		}
		for k, x := range v {
			if shape.props == nil {
				if fs, ok := shape.free.(obj); ok {
					s.prune(fs, x)
				}
				continue
			}
			ps, ok := shape.props[k]
			if !ok {
				delete(v, k)
				continue
			}
			s.prune(ps.(obj), x)
		}
	case []any:
		if it := s.items(schema); it != nil {
			for _, x := range v {
				s.prune(it, x)
			}
		}
	}
}

// check appends to problems a line for every key of v (at any depth) its
// schema does not define, and, if required is set, for every key the
// schema requires that v lacks. exempt names paths ("invoice.id") whose
// required key may be missing.
func (s *spec) check(path string, schema obj, v any, required bool, exempt map[string]bool, problems *[]string) {
	switch v := v.(type) {
	case obj:
		shape, ok := s.objectFor(schema, v)
		if !ok {
			*problems = append(*problems, fmt.Sprintf("%s: an object where the spec has none", path))
			return
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if shape.props == nil {
				if fs, ok := shape.free.(obj); ok {
					s.check(path+"."+k, fs, v[k], required, exempt, problems)
				}
				continue
			}
			ps, ok := shape.props[k]
			if !ok {
				*problems = append(*problems, fmt.Sprintf("%s.%s: not in the %s spec", path, k, s.version))
				continue
			}
			s.check(path+"."+k, ps.(obj), v[k], required, exempt, problems)
		}
		if required {
			for _, k := range shape.required {
				if _, ok := v[k]; !ok && !exempt[path+"."+k] {
					*problems = append(*problems, fmt.Sprintf("%s.%s: required by the %s spec, missing", path, k, s.version))
				}
			}
		}
	case []any:
		if it := s.items(schema); it != nil {
			for i, x := range v {
				s.check(fmt.Sprintf("%s[%d]", path, i), it, x, required, exempt, problems)
			}
		}
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}
