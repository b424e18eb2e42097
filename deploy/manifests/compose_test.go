package manifests

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

var (
	composePath = filepath.Join(root, "deploy", "compose.yaml")
	envExample  = filepath.Join(root, "deploy", ".env.example")
)

// compose is the part of the Compose Specification that deploy/compose.yaml
// uses. Decoding is strict, so a misspelt key fails; a key the spec has but
// this struct lacks fails too, and is added here when compose.yaml needs it.
type compose struct {
	Services map[string]composeService  `json:"services"`
	Volumes  map[string]json.RawMessage `json:"volumes"`
}

type composeService struct {
	Image       string            `json:"image"`
	Build       *composeBuild     `json:"build"`
	Command     []string          `json:"command"`
	Ports       []string          `json:"ports"`
	Environment map[string]string `json:"environment"`
	Volumes     []string          `json:"volumes"`
	Healthcheck *composeHealth    `json:"healthcheck"`
	DependsOn   map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Deploy *struct {
		Replicas int `json:"replicas"`
	} `json:"deploy"`
	ReadOnly        bool     `json:"read_only"`
	Tmpfs           []string `json:"tmpfs"`
	CapDrop         []string `json:"cap_drop"`
	SecurityOpt     []string `json:"security_opt"`
	Restart         string   `json:"restart"`
	StopGracePeriod string   `json:"stop_grace_period"`
}

type composeBuild struct {
	Context    string `json:"context"`
	Dockerfile string `json:"dockerfile"`
}

type composeHealth struct {
	Test        []string `json:"test"`
	Disable     bool     `json:"disable"`
	Interval    string   `json:"interval"`
	Timeout     string   `json:"timeout"`
	Retries     int      `json:"retries"`
	StartPeriod string   `json:"start_period"`
}

// loadCompose decodes compose.yaml strictly, after dropping the top-level
// x- extension fields (YAML anchors, already merged into the services).
func loadCompose(t *testing.T) *compose {
	t.Helper()
	raw, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		t.Fatal(err)
	}
	for k := range top {
		if strings.HasPrefix(k, "x-") {
			delete(top, k)
		}
	}
	js, _ = json.Marshal(top)
	var c compose
	if err := yaml.UnmarshalStrict(js, &c); err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	return &c
}

// readEnvExample returns .env.example's assignments in order.
func readEnvExample(t *testing.T) (keys []string, values map[string]string) {
	t.Helper()
	f, err := os.Open(envExample)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	values = map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !envVarName.MatchString(k) {
			t.Errorf("%s:%d: %q is not NAME=value", envExample, n, line)
			continue
		}
		if _, dup := values[k]; dup {
			t.Errorf("%s:%d: %s is set twice", envExample, n, k)
		}
		keys = append(keys, k)
		values[k] = v
	}
	return keys, values
}

// interpolation matches ${NAME}, ${NAME:-default}, ${NAME-default},
// ${NAME:?error} and ${NAME?error}.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// resolve interpolates s with .env.example's values, as compose would with
// deploy/.env copied from it.
func resolve(s string, values map[string]string) string {
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		g := interpolation.FindStringSubmatch(m)
		if v := values[g[1]]; v != "" {
			return v
		}
		if g[2] == ":-" || g[2] == "-" {
			return g[3]
		}
		return ""
	})
}

// fixedInCompose are variables compose.yaml sets to a literal because the
// stack's ports and health checks depend on them.
var fixedInCompose = []string{"API_ADDR", "DASHBOARD_ADDR", "METRICS_ADDR"}

func TestCompose(t *testing.T) {
	c := loadCompose(t)
	keys, values := readEnvExample(t)
	raw, _ := os.ReadFile(composePath)

	wantServices := append([]string{"redis"}, commands...)
	if got := sorted(c.Services); !slices.Equal(got, sortedSlice(wantServices)) {
		t.Fatalf("services %v, want %v", got, sortedSlice(wantServices))
	}

	t.Run("redis", func(t *testing.T) {
		r := c.Services["redis"]
		if !regexp.MustCompile(`^redis:7\.\d+(\.\d+)?(-[a-z0-9.]+)?$`).MatchString(r.Image) {
			t.Errorf("image %q: want a pinned Redis 7.x tag", r.Image)
		}
		var conf string
		for _, v := range r.Volumes {
			if host, ctr, ok := strings.Cut(v, ":"); ok && filepath.Base(host) == "redis.conf" {
				conf = strings.TrimSuffix(ctr, ":ro")
				if _, err := os.Stat(filepath.Join(root, "deploy", host)); err != nil {
					t.Errorf("volume %s: %v", v, err)
				}
			}
		}
		if conf == "" || len(r.Command) < 2 || r.Command[0] != "redis-server" || r.Command[1] != conf {
			t.Errorf("command %v: want redis-server started with deploy/redis.conf (mounted at %q)", r.Command, conf)
		}
		if !slices.Contains(r.Command, "--dir") {
			t.Error("command: want --dir on the data volume, where the AOF is written")
		}
		if r.Healthcheck == nil || len(r.Healthcheck.Test) == 0 || r.Healthcheck.Disable {
			t.Error("want a healthcheck, which the other services wait for")
		}
		if len(r.Ports) > 0 {
			t.Errorf("ports %v: keep Redis off the host's network", r.Ports)
		}
	})

	var image string
	for _, name := range commands {
		s := c.Services[name]
		src := commandSource(t, name)
		t.Run(name, func(t *testing.T) {
			if !slices.Equal(s.Command, []string{name}) {
				t.Errorf("command %v, want [%s]", s.Command, name)
			}
			if image == "" {
				image = s.Image
			}
			if s.Image != image || s.Build == nil || s.Build.Context != ".." || s.Build.Dockerfile != "deploy/Dockerfile" {
				t.Errorf("image %q build %+v: want the one image, built from deploy/Dockerfile in the repository root", s.Image, s.Build)
			}
			if s.DependsOn["redis"].Condition != "service_healthy" {
				t.Error("depends_on: want redis with condition service_healthy")
			}
			if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
				t.Error("want read_only, cap_drop [ALL] and no-new-privileges, as in Kubernetes")
			}
			resolved := map[string]string{}
			for k, v := range s.Environment {
				if !src.vars[k] {
					t.Errorf("environment %s: %s never reads it (it reads %v)", k, name, sorted(src.vars))
				}
				resolved[k] = resolve(v, values)
				if slices.Contains(fixedInCompose, k) && strings.Contains(v, "${") {
					t.Errorf("environment %s: keep it a literal, the ports and health check depend on it", k)
				}
			}
			for v := range src.vars {
				if _, ok := s.Environment[v]; !ok {
					t.Errorf("environment: %s reads %s, which compose does not pass (so deploy/.env cannot set it)", name, v)
				}
			}
			checkComposeHealth(t, name, s, src, resolved)
			if name == "dashboard" && !loopback(resolved["DASHBOARD_ADDR"]) {
				for _, v := range []string{"DASHBOARD_USER", "DASHBOARD_PASSWORD"} {
					if !strings.Contains(s.Environment[v], ":?") {
						t.Errorf("environment %s: required off loopback; use ${%s:?…} so compose says so", v, v)
					}
				}
			}
			if name == "api" && !strings.Contains(s.Environment["STRIPE_WEBHOOK_SECRET"], ":?") {
				t.Error("environment STRIPE_WEBHOOK_SECRET: required; use ${STRIPE_WEBHOOK_SECRET:?…} so compose says so")
			}
			if name == "worker" {
				if s.Deploy == nil || s.Deploy.Replicas < 2 {
					t.Error("deploy.replicas: want two workers")
				}
				shutdown, err := time.ParseDuration(resolved["WORKER_SHUTDOWN_TIMEOUT"])
				if err != nil {
					t.Fatalf("WORKER_SHUTDOWN_TIMEOUT resolves to %q: %v", resolved["WORKER_SHUTDOWN_TIMEOUT"], err)
				}
				grace, err := time.ParseDuration(s.StopGracePeriod)
				if err != nil || grace < shutdown+5*time.Second {
					t.Errorf("stop_grace_period %q: want at least WORKER_SHUTDOWN_TIMEOUT (%s) + 5s; Docker's default is 10s", s.StopGracePeriod, shutdown)
				}
			}
		})
	}

	t.Run("env example", func(t *testing.T) {
		used := map[string]bool{}
		for _, m := range interpolation.FindAllStringSubmatch(string(raw), -1) {
			used[m[1]] = true
		}
		for v := range used {
			if _, ok := values[v]; !ok {
				t.Errorf("compose.yaml uses ${%s}, which .env.example does not list", v)
			}
		}
		all := allVars(t)
		for _, k := range keys {
			if strings.HasPrefix(k, "COMPOSE_") {
				continue // compose's own settings, read from .env too
			}
			if !used[k] {
				t.Errorf(".env.example lists %s, which compose.yaml never uses", k)
			}
			if !all[k] {
				t.Errorf(".env.example lists %s, which no command reads", k)
			}
			if secretVar(k) && k != "REDIS_URL" && values[k] != "" {
				t.Errorf(".env.example: %s is a secret; leave it empty", k)
			}
		}
		if u := values["REDIS_URL"]; strings.Contains(u, "@") {
			t.Errorf(".env.example: REDIS_URL %q carries a password; leave it out", u)
		}
		for v := range all {
			if !used[v] && !slices.Contains(fixedInCompose, v) {
				t.Errorf("a command reads %s, which neither .env.example nor compose.yaml sets", v)
			}
		}
	})

	t.Run("docker compose config", func(t *testing.T) { composeConfig(t, values) })
}

func checkComposeHealth(t *testing.T, name string, s composeService, src *source, resolved map[string]string) {
	t.Helper()
	port := composePort(t, name, resolved, src)
	switch {
	case name == "worker" && len(s.Ports) > 0:
		t.Errorf("ports %v: the workers are replicas, whose published ports would collide", s.Ports)
	case name != "worker" && (len(s.Ports) != 1 || !strings.HasSuffix(s.Ports[0], ":"+port)):
		t.Errorf("ports %v: want one, publishing container port %s (%s)", s.Ports, port, listenAddr[name])
	}
	if name == "dashboard" && len(s.Ports) == 1 && !strings.HasPrefix(s.Ports[0], "127.0.0.1:") {
		t.Errorf("ports %v: publish the dashboard on 127.0.0.1 only", s.Ports)
	}
	test := imageHealthcheck(t)
	if s.Healthcheck != nil {
		if s.Healthcheck.Disable {
			t.Fatal("healthcheck disabled")
		}
		if len(s.Healthcheck.Test) == 0 || s.Healthcheck.Test[0] != "CMD" {
			t.Fatalf("healthcheck test %v: want the exec form [CMD, …]; the image has no shell", s.Healthcheck.Test)
		}
		test = s.Healthcheck.Test[1:]
	}
	checkHealthURL(t, name, test, port, src)
}

// composePort is the port a command listens on in the compose stack.
func composePort(t *testing.T, name string, resolved map[string]string, src *source) string {
	t.Helper()
	addrVar := listenAddr[name]
	addr := resolved[addrVar]
	if addr == "" {
		addr = src.defaults[addrVar]
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q in compose.yaml: %v", addrVar, addr, err)
	}
	return port
}

// checkHealthURL checks that a healthcheck command runs the image's
// healthcheck helper on an open GET route at the command's port.
func checkHealthURL(t *testing.T, name string, test []string, port string, src *source) {
	t.Helper()
	if len(test) == 0 || filepath.Base(test[0]) != "healthcheck" {
		t.Errorf("healthcheck %v: want the image's healthcheck helper", test)
		return
	}
	rawURL := test[len(test)-1]
	m := regexp.MustCompile(`^http://127\.0\.0\.1:(\d+)(/\S*)$`).FindStringSubmatch(rawURL)
	if m == nil {
		t.Errorf("healthcheck URL %q: want http://127.0.0.1:PORT/PATH", rawURL)
		return
	}
	if m[1] != port {
		t.Errorf("healthcheck URL %q: port %s, but %s listens on %s", rawURL, m[1], name, port)
	}
	if !src.routes[m[2]] {
		t.Errorf("healthcheck URL %q: %s is not an open GET route of %s (%v)", rawURL, m[2], name, sorted(src.routes))
	}
}

// composeConfig has Docker Compose itself validate compose.yaml, when it is
// installed (this is static: no engine is needed).
func composeConfig(t *testing.T, values map[string]string) {
	var cmd []string
	if p, err := exec.LookPath("docker"); err == nil && exec.Command(p, "compose", "version").Run() == nil {
		cmd = []string{p, "compose"}
	} else if p, err := exec.LookPath("docker-compose"); err == nil {
		cmd = []string{p}
	} else {
		t.Skip("neither `docker compose` nor docker-compose is installed; the strict decoding above still ran")
	}
	// An .env as an operator would fill it, with placeholders for what
	// .env.example leaves empty but compose requires.
	var b strings.Builder
	for k, v := range values {
		switch k {
		case "STRIPE_WEBHOOK_SECRET":
			v = "whsec_placeholder"
		case "DASHBOARD_USER":
			v = "admin"
		case "DASHBOARD_PASSWORD":
			v = "placeholder"
		}
		b.WriteString(k + "=" + v + "\n")
	}
	envFile := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(envFile, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(composePath)
	args := append(cmd[1:], "--env-file", envFile, "-f", abs, "config", "-q")
	run := exec.Command(cmd[0], args...)
	run.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", cmd[0], strings.Join(args, " "), err, out)
	}
	// And without the required secrets, compose must refuse with their names.
	empty := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	args = append(cmd[1:], "--env-file", empty, "-f", abs, "config", "-q")
	run = exec.Command(cmd[0], args...)
	run.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	out, err := run.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "STRIPE_WEBHOOK_SECRET") && !strings.Contains(string(out), "DASHBOARD_") {
		t.Errorf("compose config without secrets: err %v, output %q; want a refusal naming the missing variable", err, out)
	}
}

func sortedSlice(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
