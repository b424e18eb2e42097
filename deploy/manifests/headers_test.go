package manifests

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// headersDoc holds the table of a task's headers.
const headersDoc = "api/README.md"

// TestHeaderTable checks api/README.md's table of a task's headers
// against the header constants of pkg/stripetask (HeaderType, …): each
// header the contract names has a row, and each row is a header.
func TestHeaderTable(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join(root, "pkg", "stripetask", "stripetask.go"), nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var headers []string
	ast.Inspect(f, func(n ast.Node) bool {
		v, ok := n.(*ast.ValueSpec)
		if !ok || len(v.Names) != 1 || len(v.Values) != 1 || !strings.HasPrefix(v.Names[0].Name, "Header") {
			return true
		}
		if lit, ok := v.Values[0].(*ast.BasicLit); ok {
			s, _ := strconv.Unquote(lit.Value)
			headers = append(headers, s)
		}
		return true
	})
	if len(headers) < 8 {
		t.Fatalf("pkg/stripetask names %d headers; the parser is wrong", len(headers))
	}
	name := regexp.MustCompile("^ `([A-Za-z]+)` $")
	var rows []string
	for _, r := range tableRows(t, headersDoc, "| header | value |", 3) {
		if m := name.FindStringSubmatch(r.cells[1]); m != nil {
			rows = append(rows, m[1])
		}
	}
	for _, h := range headers {
		if !slices.Contains(rows, h) {
			t.Errorf("%s's header table lacks %q, a header of pkg/stripetask", headersDoc, h)
		}
	}
	for _, r := range rows {
		if !slices.Contains(headers, r) {
			t.Errorf("%s's header table has %q, which pkg/stripetask does not name", headersDoc, r)
		}
	}
}
