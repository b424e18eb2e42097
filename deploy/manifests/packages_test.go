package manifests

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// publicPackages are the supported public API: the only packages whose
// doc comment may say so (pkg/README.md, "Supported public API").
var publicPackages = []string{"pkg/records", "pkg/stripeq", "pkg/stripeq/builtin", "pkg/stripeq/builtin/events", "pkg/stripeq/stripeqtest"}

// TestPackageDocsSayTheirPromise: every package under pkg/ says in its
// doc comment whether it is a supported public API, covered by the
// module's compatibility promise, or internal, with none; the public ones
// are exactly publicPackages.
func TestPackageDocsSayTheirPromise(t *testing.T) {
	dirs := map[string]bool{}
	filepath.WalkDir(filepath.Join(root, "pkg"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") && !strings.Contains(path, "testdata") {
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			dirs[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if len(dirs) < 30 {
		t.Fatalf("found %d packages under pkg/; the walk is wrong", len(dirs))
	}
	for dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(root, dir, "*.go"))
		name, doc := "", ""
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			name = f.Name.Name
			if f.Doc != nil {
				doc += " " + f.Doc.Text()
			}
		}
		if name == "main" {
			continue // a command (go generate's), not an API
		}
		doc = strings.Join(strings.Fields(doc), " ")
		public := strings.Contains(doc, "supported public API")
		internal := strings.Contains(doc, "no compatibility promise")
		switch {
		case public == internal && !(public && slices.Contains(publicPackages, dir)):
			t.Errorf("%s: its doc must say either that it is a supported public API or that it has no compatibility promise", dir)
		case public && !slices.Contains(publicPackages, dir):
			t.Errorf("%s says it is a supported public API, which pkg/README.md does not list", dir)
		case !public && slices.Contains(publicPackages, dir):
			t.Errorf("%s is a supported public API, and its doc does not say so", dir)
		}
	}
}
