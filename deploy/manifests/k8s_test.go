package manifests

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/stripeq/stripeq/pkg/httpserver"
)

// k8sDir holds the manifests, one component per file; subdirectories hold
// optional extras (the autoscaler).
var k8sDir = filepath.Join(root, "deploy", "k8s")

// secretName is the one Secret the manifests may reference. It is created
// by the operator, never committed.
const secretName = "stripeq-secrets"

// secretVar reports whether a variable's value is a secret and so must come
// from secretName. REDIS_URL, SMTP_URL and ALERT_WEBHOOK_URL carry
// credentials in the URL.
func secretVar(name string) bool {
	switch name {
	case "REDIS_URL", "SMTP_URL", "ALERT_WEBHOOK_URL", "DASHBOARD_USER", "DASHBOARD_VIEWER_USER":
		return true
	}
	return strings.Contains(name, "SECRET") || strings.Contains(name, "PASSWORD") || strings.HasSuffix(name, "_KEY")
}

// manifests is every object under deploy/k8s, decoded strictly.
type manifests struct {
	deployments map[string]*appsv1.Deployment // by command
	services    []*corev1.Service
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
}

// decodeStrict decodes one YAML document into out, failing on unknown and
// duplicate fields.
func decodeStrict(doc []byte, out any) error {
	return yaml.UnmarshalStrict(doc, out)
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{deployments: map[string]*appsv1.Deployment{}}
	var files []string
	err := filepath.WalkDir(k8sDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no manifests under %s", k8sDir)
	}
	for _, path := range files {
		if ext := filepath.Ext(path); ext != ".yaml" {
			t.Errorf("%s: only .yaml manifests belong in deploy/k8s", path)
			continue
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
		for i := 0; ; i++ {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			where := fmt.Sprintf("%s (document %d)", path, i+1)
			if err := m.add(doc); err != nil {
				t.Errorf("%s: %v", where, err)
			}
		}
	}
	return m
}

func (m *manifests) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	switch gvk := tm.APIVersion + "/" + tm.Kind; gvk {
	case "apps/v1/Deployment":
		var d appsv1.Deployment
		if err := decodeStrict(doc, &d); err != nil {
			return err
		}
		if len(d.Spec.Template.Spec.Containers) != 1 || len(d.Spec.Template.Spec.Containers[0].Args) == 0 {
			return fmt.Errorf("Deployment %s: want one container whose args name the command", d.Name)
		}
		command := d.Spec.Template.Spec.Containers[0].Args[0]
		if !slices.Contains(commands, command) {
			return fmt.Errorf("Deployment %s runs %q, not one of %v", d.Name, command, commands)
		}
		if m.deployments[command] != nil {
			return fmt.Errorf("two Deployments run %s", command)
		}
		m.deployments[command] = &d
	case "v1/Service":
		var s corev1.Service
		if err := decodeStrict(doc, &s); err != nil {
			return err
		}
		m.services = append(m.services, &s)
	case "policy/v1/PodDisruptionBudget":
		var p policyv1.PodDisruptionBudget
		if err := decodeStrict(doc, &p); err != nil {
			return err
		}
		m.pdbs = append(m.pdbs, &p)
	case "autoscaling/v2/HorizontalPodAutoscaler":
		var h autoscalingv2.HorizontalPodAutoscaler
		if err := decodeStrict(doc, &h); err != nil {
			return err
		}
		m.hpas = append(m.hpas, &h)
	case "v1/Secret":
		return errors.New("a Secret is committed: create " + secretName + " in the cluster instead (deploy/README.md, \"Kubernetes\")")
	default:
		return fmt.Errorf("unexpected kind %q: add it to the test's decoder", gvk)
	}
	return nil
}

var commentLine = regexp.MustCompile(`(?m)^\s*#.*$`)

func stripComments(doc []byte) []byte { return commentLine.ReplaceAll(doc, nil) }

// TestStrictDecodingRejectsUnknownFields shows that the decoder the other
// tests rely on does reject a misspelt field and a duplicate key.
func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"unknown field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n"},
		{"misplaced field", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: [{port: 80, targetPort: http, path: /}]\n"},
		{"duplicate key", "apiVersion: v1\nkind: Service\nmetadata: {name: x, name: y}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := (&manifests{deployments: map[string]*appsv1.Deployment{}}).add([]byte(tt.doc)); err == nil {
				t.Fatal("decoded without error")
			}
		})
	}
}

func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	for _, c := range commands {
		if m.deployments[c] == nil {
			t.Fatalf("no Deployment runs %s", c)
		}
	}
	var image string
	for _, c := range commands {
		d := m.deployments[c]
		t.Run(c, func(t *testing.T) {
			pod := d.Spec.Template.Spec
			ctr := pod.Containers[0]
			src := commandSource(t, c)

			if image == "" {
				image = ctr.Image
			}
			if ctr.Image != image {
				t.Errorf("image %q, want the one image %q for all three commands", ctr.Image, image)
			}
			if _, tag, ok := strings.Cut(lastPathElem(ctr.Image), ":"); !ok || tag == "" || tag == "latest" {
				if !strings.Contains(ctr.Image, "@sha256:") {
					t.Errorf("image %q: pin a tag other than latest, or a digest", ctr.Image)
				}
			}
			if len(ctr.Command) != 0 {
				t.Errorf("command %q: the image has no entrypoint; put the command in args", ctr.Command)
			}

			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("selector %v does not match the pod's labels %v", d.Spec.Selector, d.Spec.Template.Labels)
			}

			checkEnv(t, c, src, ctr)
			checkSecurity(t, pod, ctr)
			checkResources(t, ctr)
			checkProbes(t, c, src, ctr, env(ctr))
			checkScrape(t, c, src, d.Spec.Template.Annotations, ctr)
			checkGracePeriod(t, c, src, pod, ctr)
			checkPDB(t, d, m.pdbs)
			checkService(t, c, d, m.services)
		})
	}
	t.Run("autoscaler", func(t *testing.T) { checkHPA(t, m) })
	if n := len(m.services); n != 2 {
		t.Errorf("%d Services, want 2: the api's and the dashboard's (the worker serves no HTTP)", n)
	}
	if n := len(m.pdbs); n != len(commands) {
		t.Errorf("%d PodDisruptionBudgets, want one per Deployment", n)
	}
}

func lastPathElem(image string) string { return image[strings.LastIndex(image, "/")+1:] }

// env returns a container's literal env values by name.
func env(ctr corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range ctr.Env {
		if e.ValueFrom == nil {
			out[e.Name] = e.Value
		}
	}
	return out
}

// setting returns a variable's value as the container sees it: its literal
// env value, else the command's default from the code.
func setting(t *testing.T, name string, values map[string]string, src *source) string {
	t.Helper()
	if v, ok := values[name]; ok && v != "" {
		return v
	}
	def, ok := src.defaults[name]
	if !ok {
		t.Fatalf("%s is not set and its default could not be read from the code", name)
	}
	return def
}

func checkEnv(t *testing.T, command string, src *source, ctr corev1.Container) {
	t.Helper()
	if len(ctr.EnvFrom) > 0 {
		t.Errorf("envFrom hides which variables reach %s: list them under env", command)
	}
	seen := map[string]bool{}
	for _, e := range ctr.Env {
		if seen[e.Name] {
			t.Errorf("env %s is set twice", e.Name)
		}
		seen[e.Name] = true
		if !src.vars[e.Name] {
			t.Errorf("env %s: %s never reads it (it reads %v)", e.Name, command, sorted(src.vars))
		}
		if secretVar(e.Name) {
			ref := (*corev1.SecretKeySelector)(nil)
			if e.ValueFrom != nil {
				ref = e.ValueFrom.SecretKeyRef
			}
			if e.Value != "" || ref == nil || ref.Name != secretName {
				t.Errorf("env %s holds a secret: take it from secretKeyRef %s, never a value", e.Name, secretName)
			}
		} else if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name != secretName {
			t.Errorf("env %s: secretKeyRef %q, want %s", e.Name, e.ValueFrom.SecretKeyRef.Name, secretName)
		}
	}
	required := map[string][]string{
		"api":       {"REDIS_URL", "STRIPE_WEBHOOK_SECRET"},
		"worker":    {"REDIS_URL"},
		"dashboard": {"REDIS_URL", "DASHBOARD_ADDR"},
	}[command]
	if command == "dashboard" && !loopback(env(ctr)["DASHBOARD_ADDR"]) {
		// dashboard/internal/console/config.go refuses a non-loopback address without both.
		required = append(required, "DASHBOARD_USER", "DASHBOARD_PASSWORD")
	}
	for _, name := range required {
		if !seen[name] {
			t.Errorf("env %s is required by %s but not set", name, command)
			continue
		}
		for _, e := range ctr.Env {
			if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && ptrTrue(e.ValueFrom.SecretKeyRef.Optional) {
				t.Errorf("env %s is required by %s, so its secretKeyRef must not be optional", name, command)
			}
		}
	}
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

func ptrTrue(b *bool) bool { return b != nil && *b }

func checkSecurity(t *testing.T, pod corev1.PodSpec, ctr corev1.Container) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || !ptrTrue(psc.RunAsNonRoot) || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("pod securityContext: want runAsNonRoot and a non-zero runAsUser (the image's 65532)")
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod securityContext: want seccompProfile RuntimeDefault")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken: want false; stripeq never calls the Kubernetes API")
	}
	sc := ctr.SecurityContext
	switch {
	case sc == nil:
		t.Error("container securityContext missing")
	case !ptrTrue(sc.ReadOnlyRootFilesystem):
		t.Error("container securityContext: want readOnlyRootFilesystem")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("container securityContext: want allowPrivilegeEscalation false")
	case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0:
		t.Error("container securityContext: want capabilities drop [ALL] and none added")
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("container securityContext: privileged")
	}
}

func checkResources(t *testing.T, ctr corev1.Container) {
	t.Helper()
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := ctr.Resources.Requests[r]
		lim, okLim := ctr.Resources.Limits[r]
		if !okReq || !okLim {
			t.Errorf("resources: want a request and a limit for %s", r)
			continue
		}
		if req.Cmp(lim) > 0 {
			t.Errorf("resources: %s request %s exceeds its limit %s", r, req.String(), lim.String())
		}
	}
}

// listenAddr is the variable holding each command's HTTP listen address.
// The worker's (METRICS_ADDR) has no default: unset, it serves nothing.
var listenAddr = map[string]string{"api": "API_ADDR", "dashboard": "DASHBOARD_ADDR", "worker": "METRICS_ADDR"}

// wantProbes are the probe paths of each command: the api's readiness
// follows Redis, no liveness does.
var wantProbes = map[string]struct{ readiness, liveness string }{
	"api":       {"/readyz", "/healthz"},
	"dashboard": {"/healthz", "/healthz"},
	"worker":    {"/healthz", "/healthz"},
}

// wantService is whether a command gets a Service: the worker is sent no
// traffic (Prometheus scrapes its pods).
var wantService = map[string]bool{"api": true, "dashboard": true, "worker": false}

func checkProbes(t *testing.T, command string, src *source, ctr corev1.Container, values map[string]string) {
	t.Helper()
	if ctr.StartupProbe != nil && ctr.StartupProbe.HTTPGet != nil {
		t.Error("startupProbe: not expected; the commands start in well under a second")
	}
	want := wantProbes[command]
	_, portStr, err := net.SplitHostPort(setting(t, listenAddr[command], values, src))
	if err != nil {
		t.Fatalf("%s: %v", listenAddr[command], err)
	}
	listen, _ := strconv.Atoi(portStr)
	ports := ctr.Ports
	if command == "api" {
		// The api's metrics have their own port (METRICS_ADDR), which its
		// Service must not expose.
		_, metricsPort, err := net.SplitHostPort(setting(t, "METRICS_ADDR", values, src))
		if err != nil {
			t.Fatalf("METRICS_ADDR: %v", err)
		}
		mp, _ := strconv.Atoi(metricsPort)
		ports = slices.DeleteFunc(slices.Clone(ports), func(p corev1.ContainerPort) bool { return p.Name == "metrics" && p.ContainerPort == int32(mp) })
		if len(ports) != len(ctr.Ports)-1 {
			t.Errorf("ports %v: want a port named metrics at METRICS_ADDR's %d", ctr.Ports, mp)
		}
	}
	if len(ports) != 1 || ports[0].ContainerPort != int32(listen) {
		t.Errorf("ports %v: want one containerPort %d, where %s listens (%s)", ctr.Ports, listen, command, listenAddr[command])
	}
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{{"readinessProbe", ctr.ReadinessProbe, want.readiness}, {"livenessProbe", ctr.LivenessProbe, want.liveness}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe of %s", p.kind, p.path)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path {
			t.Errorf("%s path %q, want %q", p.kind, g.Path, p.path)
		}
		if !src.routes[g.Path] {
			t.Errorf("%s path %q is not an open GET route of %s (routes.go has %v)", p.kind, g.Path, command, sorted(src.routes))
		}
		if port, ok := resolvePort(ctr, g.Port); !ok || port != int32(listen) {
			t.Errorf("%s port %s resolves to %d, want %d", p.kind, g.Port.String(), port, listen)
		}
		if p.probe.TimeoutSeconds < 1 || p.probe.PeriodSeconds < 1 || p.probe.FailureThreshold < 1 {
			t.Errorf("%s: set timeoutSeconds, periodSeconds and failureThreshold explicitly", p.kind)
		}
	}
	if ctr.LivenessProbe != nil && ctr.LivenessProbe.HTTPGet != nil && ctr.LivenessProbe.HTTPGet.Path == "/readyz" {
		t.Error("livenessProbe on /readyz would restart every pod during a Redis outage")
	}
}

// resolvePort turns a probe's or Service's port (number or name) into the
// container's port number.
func resolvePort(ctr corev1.Container, p intstr.IntOrString) (int32, bool) {
	if p.Type == intstr.Int {
		for _, cp := range ctr.Ports {
			if cp.ContainerPort == p.IntVal {
				return p.IntVal, true
			}
		}
		return p.IntVal, false
	}
	for _, cp := range ctr.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// checkScrape checks the prometheus.io annotations, when present, against
// the command's routes and ports.
func checkScrape(t *testing.T, command string, src *source, annotations map[string]string, ctr corev1.Container) {
	t.Helper()
	if annotations["prometheus.io/scrape"] != "true" {
		return
	}
	path := annotations["prometheus.io/path"]
	if !src.routes[path] {
		t.Errorf("prometheus.io/path %q is not a GET route of %s (%v)", path, command, sorted(src.routes))
	}
	port, err := strconv.Atoi(annotations["prometheus.io/port"])
	if err != nil {
		t.Errorf("prometheus.io/port %q: %v", annotations["prometheus.io/port"], err)
	} else if _, ok := resolvePort(ctr, intstr.FromInt32(int32(port))); !ok {
		t.Errorf("prometheus.io/port %d is no port of %s", port, command)
	}
}

func checkGracePeriod(t *testing.T, command string, src *source, pod corev1.PodSpec, ctr corev1.Container) {
	t.Helper()
	if pod.TerminationGracePeriodSeconds == nil {
		t.Error("terminationGracePeriodSeconds: set it explicitly")
		return
	}
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	var need time.Duration
	switch command {
	case "worker":
		d, err := time.ParseDuration(setting(t, "WORKER_SHUTDOWN_TIMEOUT", env(ctr), src))
		if err != nil {
			t.Fatalf("WORKER_SHUTDOWN_TIMEOUT: %v", err)
		}
		need = d
	default:
		need = httpserver.ShutdownTimeout
	}
	if ctr.Lifecycle != nil && ctr.Lifecycle.PreStop != nil {
		if s := ctr.Lifecycle.PreStop.Sleep; s != nil {
			need += time.Duration(s.Seconds) * time.Second
		}
		if ctr.Lifecycle.PreStop.Exec != nil {
			t.Error("preStop exec: the image has no shell or sleep binary; use the sleep action")
		}
	}
	// A margin for the process to exit after its own timeout.
	if grace < need+5*time.Second {
		t.Errorf("terminationGracePeriodSeconds %s: want at least %s (shutdown timeout and preStop) + 5s", grace, need)
	}
}

func checkPDB(t *testing.T, d *appsv1.Deployment, pdbs []*policyv1.PodDisruptionBudget) {
	t.Helper()
	var found *policyv1.PodDisruptionBudget
	for _, p := range pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			if found != nil {
				t.Errorf("PodDisruptionBudgets %s and %s both select %s", found.Name, p.Name, d.Name)
			}
			found = p
		}
	}
	if found == nil {
		t.Errorf("no PodDisruptionBudget selects %s", d.Name)
		return
	}
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	if mA := found.Spec.MinAvailable; mA != nil && mA.Type == intstr.Int && mA.IntVal >= replicas {
		t.Errorf("PodDisruptionBudget %s: minAvailable %d with %d replicas blocks every node drain", found.Name, mA.IntVal, replicas)
	}
	if found.Spec.MinAvailable == nil && found.Spec.MaxUnavailable == nil {
		t.Errorf("PodDisruptionBudget %s sets neither minAvailable nor maxUnavailable", found.Name)
	}
}

func checkService(t *testing.T, command string, d *appsv1.Deployment, services []*corev1.Service) {
	t.Helper()
	ctr := d.Spec.Template.Spec.Containers[0]
	var matched int
	for _, s := range services {
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			continue
		}
		matched++
		for _, p := range s.Spec.Ports {
			if _, ok := resolvePort(ctr, p.TargetPort); !ok {
				t.Errorf("Service %s port %d: targetPort %s is no port of %s", s.Name, p.Port, p.TargetPort.String(), command)
			}
		}
		if s.Spec.Type != "" && s.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("Service %s is %s: keep it ClusterIP and expose it through an Ingress with TLS", s.Name, s.Spec.Type)
		}
	}
	switch {
	case wantService[command] && matched != 1:
		t.Errorf("%d Services select %s, want 1", matched, command)
	case !wantService[command] && matched != 0:
		t.Errorf("%d Services select %s, which is sent no traffic", matched, command)
	}
}

func checkHPA(t *testing.T, m *manifests) {
	if len(m.hpas) != 1 {
		t.Fatalf("%d HorizontalPodAutoscalers, want the worker's example", len(m.hpas))
	}
	h := m.hpas[0]
	w := m.deployments["worker"]
	if ref := h.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != w.Name {
		t.Errorf("scaleTargetRef %+v, want the worker Deployment %s", ref, w.Name)
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
		t.Errorf("minReplicas %v, maxReplicas %d", h.Spec.MinReplicas, h.Spec.MaxReplicas)
	}
	values := env(w.Spec.Template.Spec.Containers[0])
	src := commandSource(t, "worker")
	queue := values["QUEUE_NAME"]
	if queue == "" {
		queue = "stripe"
	}
	if len(h.Spec.Metrics) == 0 {
		t.Fatal("no metrics")
	}
	for _, metric := range h.Spec.Metrics {
		if metric.Type != autoscalingv2.ExternalMetricSourceType || metric.External == nil {
			t.Errorf("metric %s: want an External metric of the queue", metric.Type)
			continue
		}
		id := metric.External.Metric
		if id.Name == "asynq_queue_size" {
			t.Error("asynq_queue_size counts completed and archived tasks too, which more workers never drain; scale on the pending count")
		}
		if id.Selector == nil || id.Selector.MatchLabels["queue"] != queue {
			t.Errorf("metric %s: want the selector queue=%s, the worker's QUEUE_NAME", id.Name, queue)
		}
	}
	// Replicas past GLOBAL_CONCURRENCY / WORKER_CONCURRENCY only wait for a
	// global slot.
	perProc, err1 := strconv.Atoi(values["WORKER_CONCURRENCY"])
	global, err2 := strconv.Atoi(values["GLOBAL_CONCURRENCY"])
	if err1 != nil || err2 != nil || !src.vars["GLOBAL_CONCURRENCY"] {
		t.Fatal("the worker Deployment must set WORKER_CONCURRENCY and GLOBAL_CONCURRENCY, which bound what autoscaling buys")
	}
	if global != 0 && int(h.Spec.MaxReplicas)*perProc > global {
		t.Errorf("maxReplicas %d × WORKER_CONCURRENCY %d > GLOBAL_CONCURRENCY %d: the extra workers would only wait for slots",
			h.Spec.MaxReplicas, perProc, global)
	}
}
