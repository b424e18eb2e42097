package keyspace_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// keyLiteral matches a Redis key of stripeq's or asynq's in a string: the
// prefix, then a character that continues a key ("stripeq:customer:",
// "asynq:{"), not the space of a message ("stripeq: Run called twice").
var keyLiteral = regexp.MustCompile(`(^|[^A-Za-z0-9_])(stripeq|asynq):([^\s]|$)`)

// owners are the packages (directories from the module root) whose
// non-test files may spell keys: this one.
var owners = map[string]bool{"pkg/keyspace": true}

// TestOnlyKeyspaceSpellsKeys fails on a string literal that spells a key
// of stripeq's or asynq's in a non-test Go file outside pkg/keyspace: the
// commands, pkg/ (test helpers such as pkg/redistest included), deploy/
// (the bench included). Test files may spell keys, to check them.
func TestOnlyKeyspaceSpellsKeys(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		if owners[filepath.ToSlash(rel)] {
			return nil
		}
		files++
		for _, lit := range keyLiterals(t, path) {
			t.Errorf("%s: %s spells a Redis key: build it with pkg/keyspace", lit.pos, lit.text)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("scanned %d files; the walk is wrong", files)
	}
}

type literal struct {
	pos  token.Position
	text string
}

// keyLiterals returns the string literals of the Go file path that spell
// a key.
func keyLiterals(t *testing.T, path string) []literal {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var out []literal
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		s, err := strconv.Unquote(lit.Value)
		if err == nil && keyLiteral.MatchString(s) {
			text := lit.Value
			if len(text) > 60 {
				text = text[:60] + "…"
			}
			out = append(out, literal{fset.Position(lit.Pos()), text})
		}
		return true
	})
	return out
}

// TestKeyLiteral shows what counts as a key literal.
func TestKeyLiteral(t *testing.T) {
	for _, c := range []struct {
		s    string
		want bool
	}{
		{"stripeq:customer:{", true},
		{"asynq:{", true},
		{"stripeq:", true},
		{`redis.call("DEL", "stripeq:x")`, true},
		{"kept for DEDUPE_WINDOW (stripeq:seen:*)", true},
		{"stripeq: Run called twice", false},
		{":rotating_light: stripeq: event %s", false},
		{"mystripeq:x", false},
		{"stripeq_attempt", false},
	} {
		if got := keyLiteral.MatchString(c.s); got != c.want {
			t.Errorf("%q: %v, want %v", c.s, got, c.want)
		}
	}
}
