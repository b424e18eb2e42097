package manifests

import (
	"bufio"
	"encoding/json"
	"go/version"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var dockerfilePath = filepath.Join(root, "deploy", "Dockerfile")

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, …
	args string
	line int
}

// stage is one FROM and the instructions under it.
type stage struct {
	image, name string
	instrs      []instruction
}

type dockerfile struct {
	directives map[string]string // parser directives: syntax, escape
	args       map[string]string // ARGs before the first FROM, with defaults
	stages     []stage
}

func parseDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	f, err := os.Open(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	df := &dockerfile{directives: map[string]string{}, args: map[string]string{}}
	directive := regexp.MustCompile(`^#\s*([a-z]+)\s*=\s*(\S+)\s*$`)
	sc := bufio.NewScanner(f)
	var cur *instruction
	inDirectives := true
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if inDirectives {
			if m := directive.FindStringSubmatch(trimmed); m != nil {
				df.directives[m[1]] = m[2]
				continue
			}
			inDirectives = false
		}
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur == nil) {
			continue
		}
		if cur == nil {
			cmd, args, _ := strings.Cut(trimmed, " ")
			cur = &instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: n}
		} else {
			cur.args += " " + trimmed
		}
		if strings.HasSuffix(cur.args, `\`) {
			cur.args = strings.TrimSpace(strings.TrimSuffix(cur.args, `\`))
			continue
		}
		in := *cur
		cur = nil
		switch {
		case in.cmd == "FROM":
			fields := strings.Fields(in.args)
			s := stage{image: fields[len(fields)-1]}
			if i := slices.IndexFunc(fields, func(f string) bool { return strings.EqualFold(f, "AS") }); i > 0 && i+1 < len(fields) {
				s.image, s.name = fields[i-1], fields[i+1]
			}
			df.stages = append(df.stages, s)
		case len(df.stages) == 0:
			if in.cmd != "ARG" {
				t.Errorf("Dockerfile:%d: only ARG may come before the first FROM", in.line)
			}
			k, v, _ := strings.Cut(in.args, "=")
			df.args[k] = v
		default:
			df.stages[len(df.stages)-1].instrs = append(df.stages[len(df.stages)-1].instrs, in)
		}
	}
	if cur != nil {
		t.Errorf("Dockerfile:%d: continuation at end of file", cur.line)
	}
	if len(df.stages) == 0 {
		t.Fatal("Dockerfile has no FROM")
	}
	return df
}

// expand substitutes ${NAME} and $NAME with the global ARG defaults.
func (df *dockerfile) expand(s string) string {
	return os.Expand(s, func(k string) string { return df.args[k] })
}

// final returns the last stage's instructions named cmd.
func (df *dockerfile) final(cmd string) []instruction {
	var out []instruction
	for _, in := range df.stages[len(df.stages)-1].instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// execForm decodes an instruction's JSON (exec) form, which the final
// stage needs: distroless has no /bin/sh to run the shell form.
func execForm(t *testing.T, in instruction, s string) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(s), &argv); err != nil || len(argv) == 0 {
		t.Errorf("Dockerfile:%d: %s %s: use the exec form [\"…\"]; the image has no shell", in.line, in.cmd, s)
		return nil
	}
	return argv
}

// imageHealthcheck returns the command of the image's HEALTHCHECK.
func imageHealthcheck(t *testing.T) []string {
	t.Helper()
	df := parseDockerfile(t)
	hcs := df.final("HEALTHCHECK")
	if len(hcs) != 1 {
		t.Fatalf("the final stage has %d HEALTHCHECKs, want 1", len(hcs))
	}
	i := strings.Index(hcs[0].args, "CMD ")
	if i < 0 {
		t.Fatalf("Dockerfile:%d: HEALTHCHECK without CMD", hcs[0].line)
	}
	return execForm(t, hcs[0], strings.TrimSpace(hcs[0].args[i+len("CMD "):]))
}

// TestDockerfileHadolint runs hadolint when it is installed. It is not in
// Debian's or npm's registries, so on this project's machines
// TestDockerfile's own checks stand in for it.
func TestDockerfileHadolint(t *testing.T) {
	p, err := exec.LookPath("hadolint")
	if err != nil {
		t.Skip("hadolint is not on PATH; TestDockerfile checks the rules that matter here")
	}
	if out, err := exec.Command(p, "--no-color", dockerfilePath).CombinedOutput(); err != nil {
		t.Fatalf("hadolint: %v\n%s", err, out)
	}
}

func TestDockerfile(t *testing.T) {
	df := parseDockerfile(t)
	final := df.stages[len(df.stages)-1]
	built := map[string]bool{}

	t.Run("multi-stage", func(t *testing.T) {
		if len(df.stages) < 2 {
			t.Fatalf("%d stage(s): build in one stage and copy the binaries into a small one", len(df.stages))
		}
		base := df.expand(final.image)
		if !strings.HasPrefix(base, "gcr.io/distroless/static") && base != "scratch" {
			t.Errorf("final stage FROM %s: want distroless/static or scratch (the binaries are static)", base)
		}
		for _, in := range final.instrs {
			if in.cmd == "RUN" {
				t.Errorf("Dockerfile:%d: RUN in the final stage; it has no shell", in.line)
			}
		}
	})

	t.Run("pinned base images", func(t *testing.T) { // hadolint DL3006, DL3007
		names := map[string]bool{}
		for _, s := range df.stages {
			img := df.expand(s.image)
			if names[img] || img == "scratch" {
				continue // an earlier stage, or no image at all
			}
			if s.name != "" {
				names[s.name] = true
			}
			if strings.Contains(img, "@sha256:") {
				continue
			}
			_, tag, ok := strings.Cut(lastPathElem(img), ":")
			if !ok || tag == "" || tag == "latest" || strings.Contains(s.image, "$") && !strings.Contains(img, ":") {
				t.Errorf("FROM %s (%s): pin an explicit tag other than latest, or a digest", s.image, img)
			}
		}
	})

	t.Run("go version", func(t *testing.T) {
		goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(goMod)
		if m == nil {
			t.Fatal("go.mod has no go directive")
		}
		want := "go" + string(m[1])
		img := df.expand(df.stages[0].image)
		tag := regexp.MustCompile(`^golang:(\d+\.\d+(?:\.\d+)?)`).FindStringSubmatch(img)
		if tag == nil {
			t.Fatalf("first stage FROM %s: want a golang:<version> build image", img)
		}
		if got := "go" + tag[1]; version.Compare(got, want) < 0 {
			t.Errorf("build image Go %s is older than go.mod's %s", got, want)
		}
	})

	t.Run("build", func(t *testing.T) {
		var cgoOff bool
		var build string
		for _, in := range df.stages[0].instrs {
			if (in.cmd == "ENV" || in.cmd == "ARG" || in.cmd == "RUN") && strings.Contains(in.args, "CGO_ENABLED=0") {
				cgoOff = true
			}
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				build = in.args
			}
			if in.cmd == "WORKDIR" && !strings.HasPrefix(in.args, "/") { // DL3000
				t.Errorf("Dockerfile:%d: WORKDIR %s is not absolute", in.line, in.args)
			}
			if in.cmd == "COPY" {
				checkCopySources(t, in)
			}
		}
		if !cgoOff {
			t.Error("the build stage does not set CGO_ENABLED=0: the binaries would need libc, which distroless/static lacks")
		}
		for _, pkg := range append(slices.Clone(commands), "deploy/healthcheck") {
			if !regexp.MustCompile(`\./` + regexp.QuoteMeta(pkg) + `(\s|$)`).MatchString(build) {
				t.Errorf("go build does not build ./%s", pkg)
			}
			built[filepath.Base(pkg)] = true
		}
	})

	t.Run("final stage", func(t *testing.T) {
		for _, in := range df.stages[len(df.stages)-1].instrs {
			if in.cmd == "ADD" { // DL3020
				t.Errorf("Dockerfile:%d: use COPY, not ADD", in.line)
			}
		}
		users := df.final("USER")
		if len(users) == 0 {
			t.Fatal("no USER: the image would run as root")
		}
		user := users[len(users)-1].args
		uid, _, _ := strings.Cut(user, ":")
		if uid == "0" || uid == "root" || !regexp.MustCompile(`^[1-9]\d*$`).MatchString(uid) {
			t.Errorf("USER %s: want a numeric non-root UID, which Kubernetes' runAsNonRoot can verify", user)
		}
		for _, in := range df.final("ENTRYPOINT") {
			t.Errorf("Dockerfile:%d: ENTRYPOINT; the command is the container's first argument (api, worker or dashboard)", in.line)
		}
		cmds := df.final("CMD")
		if len(cmds) != 1 {
			t.Fatalf("%d CMDs in the final stage, want 1", len(cmds))
		}
		if argv := execForm(t, cmds[0], cmds[0].args); len(argv) > 0 && !slices.Contains(commands, filepath.Base(argv[0])) {
			t.Errorf("CMD %v: want one of the commands %v", argv, commands)
		}
		var exposed []string
		for _, in := range df.final("EXPOSE") {
			exposed = append(exposed, strings.Fields(in.args)...)
		}
		c := loadCompose(t)
		for _, command := range commands {
			port := composePort(t, command, c.Services[command].Environment, commandSource(t, command))
			if !slices.Contains(exposed, port) {
				t.Errorf("EXPOSE %v lacks %s's port %s (as compose.yaml runs it)", exposed, command, port)
			}
		}
	})

	t.Run("healthcheck", func(t *testing.T) {
		hc := df.final("HEALTHCHECK")
		if len(hc) == 1 {
			for _, opt := range []string{"--interval=", "--timeout=", "--retries="} {
				if !strings.Contains(hc[0].args, opt) {
					t.Errorf("HEALTHCHECK: set %s explicitly", strings.TrimSuffix(opt, "="))
				}
			}
		}
		test := imageHealthcheck(t)
		if len(test) == 0 {
			return
		}
		if !strings.HasPrefix(test[0], "/usr/local/bin/") {
			t.Errorf("HEALTHCHECK runs %s: want the helper copied to /usr/local/bin", test[0])
		}
		src := commandSource(t, "api")
		_, port, _ := net.SplitHostPort(src.defaults["API_ADDR"])
		checkHealthURL(t, "api", test, port, src)
	})

	t.Run("dockerignore", func(t *testing.T) {
		raw, err := os.ReadFile(dockerfilePath + ".dockerignore")
		if err != nil {
			t.Fatalf("%v: without it the whole repository, .git included, is sent to the builder", err)
		}
		lines := strings.Split(string(raw), "\n")
		if !slices.Contains(lines, "*") {
			t.Error("Dockerfile.dockerignore: start from * and re-include what the build copies")
		}
		for _, in := range df.stages[0].instrs {
			if in.cmd != "COPY" {
				continue
			}
			for _, src := range copySources(in) {
				if !slices.Contains(lines, "!"+src) {
					t.Errorf("Dockerfile:%d: COPY %s, but Dockerfile.dockerignore does not re-include !%s", in.line, src, src)
				}
			}
		}
	})

	if len(built) > 0 {
		t.Run("binaries copied", func(t *testing.T) {
			var copied string
			for _, in := range df.final("COPY") {
				copied += " " + in.args
			}
			for b := range built {
				if !strings.Contains(copied, "/"+b) {
					t.Errorf("the final stage does not copy %s", b)
				}
			}
		})
	}
}

// copySources returns a build-context COPY's sources (not --from copies).
func copySources(in instruction) []string {
	var fields []string
	for _, f := range strings.Fields(in.args) {
		if strings.HasPrefix(f, "--from") {
			return nil
		}
		if !strings.HasPrefix(f, "--") {
			fields = append(fields, f)
		}
	}
	if len(fields) < 2 {
		return nil
	}
	return fields[:len(fields)-1]
}

func checkCopySources(t *testing.T, in instruction) {
	t.Helper()
	for _, src := range copySources(in) {
		if _, err := os.Stat(filepath.Join(root, src)); err != nil {
			t.Errorf("Dockerfile:%d: COPY %s: %v (the build context is the repository root)", in.line, src, err)
		}
	}
}
