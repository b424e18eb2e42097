package manifests

import (
	"cmp"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// root is the repository root, from this package's directory.
const root = "../.."

// module is the module path, the prefix of the repository's own imports.
const module = "github.com/stripeq/stripeq"

// commands are the three binaries of the image, by directory.
var commands = []string{"api", "worker", "dashboard"}

// tools are the commands outside the image, run with go tool task, by the
// name the configuration table's "used by" column gives them → directory.
// Their variables are documented as the image's are.
var tools = map[string]string{"recover": "deploy/recover"}

// documented is every command the configuration table names: the image's,
// then the tools.
func documented() []string {
	return append(slices.Clone(commands), sorted(tools)...)
}

// envVarName is the shape of an environment variable name.
var envVarName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// readerMethods are the envconfig.Reader methods that read a variable. Fail
// only reports one and is left out.
var readerMethods = map[string]bool{"Lookup": true, "String": true, "Int": true, "IntRange": true, "Duration": true, "List": true, "Required": true, "Credential": true, "Bool": true}

// source is what the tests learn from a command's Go code.
type source struct {
	// vars are the environment variables the command reads, in its own
	// package and in every package of this module it imports.
	vars map[string]bool
	// defaults maps a variable read with env.String or env.Duration to the
	// literal default given there, when it is a literal.
	defaults map[string]string
	// routes are the GET paths served without authentication: those
	// registered directly on the router passed to routes() (before any
	// group, so before any login), and net/http ServeMux patterns such as
	// mux.HandleFunc("GET /healthz", …), in the command or a package of
	// this module it imports.
	routes map[string]bool
}

var (
	sourcesOnce sync.Once
	sources     map[string]*source
	sourcesErr  error
)

// commandSource returns what the code of command (a directory name) reads
// and serves.
func commandSource(t *testing.T, command string) *source {
	t.Helper()
	sourcesOnce.Do(func() {
		sources = map[string]*source{}
		for _, c := range documented() {
			s := &source{vars: map[string]bool{}, defaults: map[string]string{}, routes: map[string]bool{}}
			dir := cmp.Or(tools[c], c)
			if sourcesErr = scanPackages(dir, s); sourcesErr != nil {
				return
			}
			sources[c] = s
		}
	})
	if sourcesErr != nil {
		t.Fatalf("scan the commands' sources: %v", sourcesErr)
	}
	s, ok := sources[command]
	if !ok {
		t.Fatalf("%q is not one of the commands %v", command, documented())
	}
	return s
}

// scanPackages scans the package in dir (relative to root) and every package
// of this module it imports, transitively, skipping test files.
func scanPackages(dir string, s *source) error {
	seen := map[string]bool{}
	queue := []string{dir}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seen[d] {
			continue
		}
		seen[d] = true
		// The command's own packages (its internal/…) hold its routes.
		imports, err := scanPackage(d, s, d == dir || strings.HasPrefix(d, dir+"/"))
		if err != nil {
			return err
		}
		for _, imp := range imports {
			if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
				queue = append(queue, rel)
			}
		}
	}
	return nil
}

// scanPackage records the variables one package reads, its ServeMux
// routes (and, for the command and its own packages, their routes.go), and returns its
// imports.
func scanPackage(dir string, s *source, isCommand bool) ([]string, error) {
	fset := token.NewFileSet()
	matches, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var imports []string
	for _, path := range matches {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			imports = append(imports, p)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			name, ok := stringLit(call.Args[0])
			if !ok || !envVarName.MatchString(name) {
				return true
			}
			switch fun := call.Fun.(type) {
			case *ast.Ident: // getenv("LOG_LEVEL"), as pkg/logging reads
				if fun.Name == "getenv" {
					s.vars[name] = true
				}
			case *ast.SelectorExpr:
				switch {
				case readerMethods[fun.Sel.Name]:
					s.vars[name] = true
					if len(call.Args) > 1 && (fun.Sel.Name == "String" || fun.Sel.Name == "Duration") {
						if def, ok := stringLit(call.Args[1]); ok {
							s.defaults[name] = def
						} else if d := durationLit(call.Args[1]); d != "" {
							s.defaults[name] = d
						}
					}
				case isIdent(fun.X, "os") && (fun.Sel.Name == "Getenv" || fun.Sel.Name == "LookupEnv"):
					s.vars[name] = true
				}
			}
			return true
		})
		if isCommand && filepath.Base(path) == "routes.go" {
			scanRoutes(f, s)
		}
		// A ServeMux serves its patterns openly, in the command or in a
		// package it imports (pkg/metrics).
		scanMuxPatterns(f, s)
	}
	if len(matches) == 0 {
		return nil, os.ErrNotExist
	}
	return imports, nil
}

// scanRoutes records the GET paths registered on the routes method's router
// parameter itself: r.GET("/healthz", …), not group.GET(…).
func scanRoutes(f *ast.File, s *source) {
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "routes" || len(fn.Type.Params.List) == 0 || len(fn.Type.Params.List[0].Names) == 0 {
			continue
		}
		router := fn.Type.Params.List[0].Names[0].Name
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "GET" || !isIdent(sel.X, router) {
				return true
			}
			if path, ok := stringLit(call.Args[0]); ok {
				s.routes[path] = true
			}
			return true
		})
	}
}

// scanMuxPatterns records the GET paths of net/http ServeMux patterns:
// mux.Handle("GET /metrics", …), mux.HandleFunc("GET /healthz", …).
func scanMuxPatterns(f *ast.File, s *source) {
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) != 2 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
			return true
		}
		pattern, ok := stringLit(call.Args[0])
		if !ok {
			return true
		}
		method, path, hasMethod := strings.Cut(pattern, " ")
		switch {
		case !hasMethod && strings.HasPrefix(pattern, "/"):
			s.routes[pattern] = true
		case hasMethod && method == "GET" && strings.HasPrefix(path, "/"):
			s.routes[path] = true
		}
		return true
	})
}

// durationLit renders `30*time.Second` and the like as "30s"; "" otherwise.
func durationLit(e ast.Expr) string {
	b, ok := e.(*ast.BinaryExpr)
	if !ok || b.Op != token.MUL {
		return ""
	}
	n, ok := b.X.(*ast.BasicLit)
	sel, ok2 := b.Y.(*ast.SelectorExpr)
	if !ok || !ok2 || n.Kind != token.INT || !isIdent(sel.X, "time") {
		return ""
	}
	unit := map[string]string{"Second": "s", "Minute": "m", "Hour": "h", "Millisecond": "ms"}[sel.Sel.Name]
	if unit == "" {
		return ""
	}
	return n.Value + unit
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// allVars is every variable any command reads.
func allVars(t *testing.T) map[string]bool {
	t.Helper()
	all := map[string]bool{}
	for _, c := range commands {
		for v := range commandSource(t, c).vars {
			all[v] = true
		}
	}
	return all
}

// TestSourceScan guards the scanner itself: if the commands' code changes
// shape so that it finds nothing, every other check would pass vacuously.
func TestSourceScan(t *testing.T) {
	tests := []struct {
		command  string
		vars     []string
		defaults map[string]string
		routes   []string
	}{
		{"api", []string{"REDIS_URL", "QUEUE_NAME", "LOG_FORMAT", "LOG_LEVEL", "API_ADDR", "STRIPE_WEBHOOK_SECRET", "TASK_RETENTION"},
			map[string]string{"API_ADDR": ":8080"}, []string{"/healthz", "/readyz"}},
		{"worker", []string{"REDIS_URL", "QUEUE_NAME", "LOG_FORMAT", "WORKER_CONCURRENCY", "GLOBAL_CONCURRENCY", "WORKER_SHUTDOWN_TIMEOUT", "SMTP_URL", "NOTIFY_FROM", "METRICS_ADDR"},
			map[string]string{"WORKER_SHUTDOWN_TIMEOUT": "30s"}, []string{"/healthz", "/metrics"}},
		{"dashboard", []string{"REDIS_URL", "QUEUE_NAME", "LOG_LEVEL", "DASHBOARD_ADDR", "DASHBOARD_USER", "DASHBOARD_PASSWORD", "RECOVER_INTERVAL", "ALERT_WEBHOOK_URL"},
			map[string]string{"DASHBOARD_ADDR": "127.0.0.1:8081"}, []string{"/healthz"}},
		{"recover", []string{"REDIS_URL", "QUEUE_SHARDS", "LOG_FORMAT", "STRIPE_SECRET_KEY", "STRIPE_EVENTS", "DEDUPE_WINDOW", "TASK_RETENTION", "PAYLOAD_COMPRESSION"},
			nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			s := commandSource(t, tt.command)
			for _, v := range tt.vars {
				if !s.vars[v] {
					t.Errorf("scanner did not find %s among the variables %s reads: %v", v, tt.command, sorted(s.vars))
				}
			}
			for k, want := range tt.defaults {
				if got := s.defaults[k]; got != want {
					t.Errorf("default of %s = %q, want %q", k, got, want)
				}
			}
			for _, r := range tt.routes {
				if !s.routes[r] {
					t.Errorf("scanner did not find GET %s among %s's routes: %v", r, tt.command, sorted(s.routes))
				}
			}
			if s.vars["TEST_REDIS_URL"] {
				t.Errorf("%s reads TEST_REDIS_URL: the scanner followed a test package", tt.command)
			}
		})
	}
	if commandSource(t, "dashboard").routes["/"] {
		t.Error(`the dashboard's "/" is behind a login, but the scanner counts it as open`)
	}
}

func sorted[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
