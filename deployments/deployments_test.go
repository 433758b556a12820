package deployments_test

// These tests load each deployment file with the parser of its own tool, strictly
// (an unknown field is an error), and check it against the binary: the variables it
// reads, its default HTTP port, its routes. Nothing here needs Docker or a cluster;
// what they would add (building the image, running the containers) is listed in
// docs/deployments.md as not run.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	composetypes "github.com/compose-spec/compose-go/v2/types"
	"github.com/jackc/pgx/v5"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	dfparser "github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	natsserver "github.com/nats-io/nats-server/v2/server"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/keyledger/keyledger/audit"
)

// root is the repository root, seen from this package's folder.
const root = ".."

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---------------------------------------------------------------------------
// What the binary reads, from its own source.

var varName = regexp.MustCompile(`^KEYLEDGER_[A-Z0-9_]+$`)

// readers are the functions of cmd/keyledger through which a variable is read.
var readers = map[string]bool{"env": true, "envInt": true, "envDuration": true, "envSecret": true, "Getenv": true, "LookupEnv": true}

// binaryConfig is what cmd/keyledger (package main, so not importable) reads, found
// in its source: the KEYLEDGER_* variables passed to a reading function, and the
// default of KEYLEDGER_HTTP_ADDR.
type binaryConfig struct {
	vars            map[string]bool
	defaultHTTPAddr string
}

func readBinaryConfig(t *testing.T) binaryConfig {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "cmd", "keyledger", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	c := binaryConfig{vars: map[string]bool{}}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			var name string
			switch fun := call.Fun.(type) {
			case *ast.Ident:
				name = fun.Name
			case *ast.SelectorExpr:
				name = fun.Sel.Name
			}
			if !readers[name] {
				return true
			}
			var args []string
			for _, a := range call.Args {
				if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					args = append(args, s)
				} else {
					args = append(args, "")
				}
			}
			for _, s := range args {
				if varName.MatchString(s) {
					c.vars[s] = true
				}
			}
			if name == "env" && len(args) == 2 && args[0] == "KEYLEDGER_HTTP_ADDR" {
				c.defaultHTTPAddr = args[1]
			}
			return true
		})
	}
	// A rename of the reading functions must fail here, not make every check vacuous.
	for _, want := range []string{"KEYLEDGER_NATS_URL", "KEYLEDGER_REPLICAS", "KEYLEDGER_MASTER_KEY_FILE", "KEYLEDGER_DATABASE_URL_FILE"} {
		if !c.vars[want] {
			t.Fatalf("cmd/keyledger reads no %s through %v: the scan of its source is out of date (found %v)", want, readers, c.vars)
		}
	}
	if c.defaultHTTPAddr == "" {
		t.Fatal(`no env("KEYLEDGER_HTTP_ADDR", default) in cmd/keyledger`)
	}
	return c
}

// defaultPort is the port of the binary's default listen address (":8080").
func (c binaryConfig) defaultPort(t *testing.T) int {
	t.Helper()
	_, p, _ := strings.Cut(c.defaultHTTPAddr, ":")
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("default KEYLEDGER_HTTP_ADDR %q: %v", c.defaultHTTPAddr, err)
	}
	return port
}

// checkVars fails for every KEYLEDGER_* variable of env the binary does not read:
// a misspelt name is otherwise ignored without a word.
func (c binaryConfig) checkVars(t *testing.T, where string, env map[string]string) {
	t.Helper()
	for name := range env {
		if strings.HasPrefix(name, "KEYLEDGER_") && !c.vars[name] {
			t.Errorf("%s sets %s, which keyledger does not read", where, name)
		}
	}
}

// routePaths are the paths of the server's route table: every `path: "..."` field of
// a composite literal in the module's code (outside this folder).
func routePaths(t *testing.T) map[string]bool {
	t.Helper()
	paths := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "deployments", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		file, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil // a file mid-edit elsewhere; the build reports it
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if kv, ok := n.(*ast.KeyValueExpr); ok {
				if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "path" {
					if lit, ok := kv.Value.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						paths[s] = true
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// The probes and the load balancer's check call routes the server has.
func TestProbePathsAreRoutes(t *testing.T) {
	paths := routePaths(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if !paths[p] {
			t.Errorf("the server's route table has no %s (routes found: %d)", p, len(paths))
		}
	}
}

// ---------------------------------------------------------------------------
// Kubernetes

// k8sDecoder decodes into the typed API objects, strictly: an unknown or duplicate
// field is an error, as `kubectl apply --validate=strict` would have it.
func k8sDecoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{appsv1.AddToScheme, corev1.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}

// decodeObjects decodes every YAML document of data.
func decodeObjects(t *testing.T, name string, data []byte) []runtime.Object {
	t.Helper()
	dec := k8sDecoder(t)
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []runtime.Object
	for {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var probe map[string]any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if probe == nil { // only comments
			continue
		}
		obj, _, err := dec.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		objs = append(objs, obj)
	}
	return objs
}

// decodeOne decodes the one object of the file path into a T.
func decodeOne[T runtime.Object](t *testing.T, path string) T {
	t.Helper()
	objs := decodeObjects(t, path, readFile(t, path))
	if len(objs) != 1 {
		t.Fatalf("%s: %d objects, want 1", path, len(objs))
	}
	obj, ok := objs[0].(T)
	if !ok {
		t.Fatalf("%s: a %T", path, objs[0])
	}
	return obj
}

// The decoder is strict: a manifest with an unknown field fails.
func TestK8sDecoderIsStrict(t *testing.T) {
	bad := []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  selctor: {app: x}\n")
	if _, _, err := k8sDecoder(t).Decode(bad, nil, nil); err == nil || !strings.Contains(err.Error(), "selctor") {
		t.Fatalf("an unknown field: %v", err)
	}
	dup := []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  name: y\n")
	if _, _, err := k8sDecoder(t).Decode(dup, nil, nil); err == nil {
		t.Fatal("a duplicate field decoded")
	}
}

type k8sManifests struct {
	deployment *appsv1.Deployment
	service    *corev1.Service
	pdb        *policyv1.PodDisruptionBudget
	secret     *corev1.Secret
}

func loadK8s(t *testing.T) k8sManifests {
	t.Helper()
	dir := filepath.Join("k8s")
	return k8sManifests{
		deployment: decodeOne[*appsv1.Deployment](t, filepath.Join(dir, "deployment.yaml")),
		service:    decodeOne[*corev1.Service](t, filepath.Join(dir, "service.yaml")),
		pdb:        decodeOne[*policyv1.PodDisruptionBudget](t, filepath.Join(dir, "pdb.yaml")),
		secret:     decodeOne[*corev1.Secret](t, filepath.Join(dir, "secret.example.yaml")),
	}
}

// envMap is the container's variables with a literal value.
func envMap(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			m[e.Name] = e.Value
		}
	}
	return m
}

func TestK8sDeployment(t *testing.T) {
	bin := readBinaryConfig(t)
	m := loadK8s(t)
	d := m.deployment
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas: %d, want 2", ptrValue(d.Spec.Replicas))
	}
	labels := d.Spec.Template.Labels
	for k, v := range d.Spec.Selector.MatchLabels {
		if labels[k] != v {
			t.Errorf("the selector %s=%s does not select the pod template (%v)", k, v, labels)
		}
	}
	pod := d.Spec.Template.Spec
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("the pod must run as a non-root user: %+v", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !slices.Equal(c.Args, []string{"serve"}) || len(c.Command) != 0 {
		t.Errorf("the container runs %v %v, want the image's entrypoint with [serve]", c.Command, c.Args)
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("the container's securityContext: %+v", sc)
	}

	// The port is the binary's default listen port, since nothing sets KEYLEDGER_HTTP_ADDR.
	env := envMap(c)
	port := bin.defaultPort(t)
	if addr, ok := env["KEYLEDGER_HTTP_ADDR"]; ok {
		t.Errorf("KEYLEDGER_HTTP_ADDR=%s: the manifests assume the default %s", addr, bin.defaultHTTPAddr)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != int32(port) || c.Ports[0].Name != "http" {
		t.Errorf("container ports %+v, want http on %d (default %s)", c.Ports, port, bin.defaultHTTPAddr)
	}
	checkProbe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: no HTTP probe", name)
			return
		}
		if p.HTTPGet.Path != path || (p.HTTPGet.Port.String() != "http" && p.HTTPGet.Port.IntValue() != port) {
			t.Errorf("%s: GET %s on %s, want %s on the http port", name, p.HTTPGet.Path, p.HTTPGet.Port.String(), path)
		}
	}
	checkProbe("livenessProbe", c.LivenessProbe, "/healthz")
	checkProbe("readinessProbe", c.ReadinessProbe, "/readyz")
	if c.StartupProbe != nil {
		checkProbe("startupProbe", c.StartupProbe, "/healthz")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
		if req.IsZero() || lim.IsZero() {
			t.Errorf("resources: %s needs a request and a limit (%v)", r, c.Resources)
		} else if req.Cmp(lim) > 0 {
			t.Errorf("resources: the %s request %s is above the limit %s", r, req.String(), lim.String())
		}
	}

	// Variables: all read by the binary; NATS from the Helm chart's service.
	bin.checkVars(t, "deployment.yaml", env)
	if env["KEYLEDGER_NATS_URL"] != "nats://nats:4222" {
		t.Errorf("KEYLEDGER_NATS_URL=%q, want the NATS Helm chart's service nats://nats:4222", env["KEYLEDGER_NATS_URL"])
	}
	if env["KEYLEDGER_REPLICAS"] != "3" {
		t.Errorf("KEYLEDGER_REPLICAS=%q, want 3 (the chart's 3 servers)", env["KEYLEDGER_REPLICAS"])
	}
	// No secret in a plain variable: each comes as a file of the Secret.
	for _, e := range c.Env {
		for _, s := range []string{"KEYLEDGER_MASTER_KEY", "KEYLEDGER_PEPPER", "KEYLEDGER_GATEWAY_TOKEN", "KEYLEDGER_DATABASE_URL", "KEYLEDGER_AUDIT_SIGNING_KEY"} {
			if e.Name == s {
				t.Errorf("%s is set as a variable; want %s_FILE", s, s)
			}
		}
	}
	files := secretFiles(t, pod, c)
	for _, s := range []string{"KEYLEDGER_MASTER_KEY_FILE", "KEYLEDGER_PEPPER_FILE", "KEYLEDGER_GATEWAY_TOKEN_FILE", "KEYLEDGER_DATABASE_URL_FILE", "KEYLEDGER_AUDIT_SIGNING_KEY_FILE"} {
		path, ok := env[s]
		if !ok {
			t.Errorf("%s is not set", s)
			continue
		}
		key, ok := files[path]
		if !ok {
			t.Errorf("%s=%s is no file of the mounted Secret (files: %v)", s, path, files)
			continue
		}
		if _, ok := m.secret.StringData[key]; !ok {
			t.Errorf("%s reads the Secret's key %q, which secret.example.yaml lacks", s, key)
		}
	}
}

func ptrValue[T any](p *T) (v T) {
	if p != nil {
		v = *p
	}
	return v
}

// secretFiles maps the path of each file the container sees from a Secret volume to
// the Secret's key, and checks the Secret is the one of secret.example.yaml.
func secretFiles(t *testing.T, pod corev1.PodSpec, c corev1.Container) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, vm := range c.VolumeMounts {
		i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		if i < 0 {
			t.Errorf("volumeMount %s has no volume", vm.Name)
			continue
		}
		v := pod.Volumes[i]
		if v.Secret == nil {
			continue
		}
		if !vm.ReadOnly {
			t.Errorf("the secret volume %s is mounted writable", vm.Name)
		}
		if v.Secret.SecretName != "keyledger" {
			t.Errorf("the secret volume reads Secret %q, want keyledger (secret.example.yaml)", v.Secret.SecretName)
		}
		if v.Secret.DefaultMode != nil && *v.Secret.DefaultMode&0o007 != 0 {
			t.Errorf("the secret files are readable by others: mode %o", *v.Secret.DefaultMode)
		}
		for _, it := range v.Secret.Items {
			files[filepath.Join(vm.MountPath, it.Path)] = it.Key
		}
	}
	return files
}

func TestK8sServiceAndPDB(t *testing.T) {
	bin := readBinaryConfig(t)
	m := loadK8s(t)
	pod := m.deployment.Spec.Template
	selects := func(sel map[string]string) bool {
		for k, v := range sel {
			if pod.Labels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !selects(m.service.Spec.Selector) {
		t.Errorf("the Service selects %v, not the keyledger pods (%v)", m.service.Spec.Selector, pod.Labels)
	}
	if len(m.service.Spec.Ports) != 1 {
		t.Fatalf("service ports: %+v", m.service.Spec.Ports)
	}
	tp := m.service.Spec.Ports[0].TargetPort
	if tp.String() != "http" && tp.IntValue() != bin.defaultPort(t) {
		t.Errorf("the Service targets port %s, not the container's http port", tp.String())
	}
	if m.pdb.Spec.MinAvailable == nil || m.pdb.Spec.MinAvailable.IntValue() != 1 || m.pdb.Spec.MaxUnavailable != nil {
		t.Errorf("the PodDisruptionBudget: minAvailable %v maxUnavailable %v, want minAvailable 1", m.pdb.Spec.MinAvailable, m.pdb.Spec.MaxUnavailable)
	}
	if m.pdb.Spec.Selector == nil || !selects(m.pdb.Spec.Selector.MatchLabels) {
		t.Errorf("the PodDisruptionBudget does not select the keyledger pods: %v", m.pdb.Spec.Selector)
	}
}

// The example Secret carries placeholders only, each marked so.
func TestK8sSecretExampleHasPlaceholdersOnly(t *testing.T) {
	s := loadK8s(t).secret
	if len(s.Data) != 0 {
		t.Errorf("the example Secret has data (base64) values; want stringData placeholders only")
	}
	for _, key := range []string{"master-key", "pepper", "gateway-token", "database-url"} {
		v, ok := s.StringData[key]
		if !ok {
			t.Errorf("no %s", key)
			continue
		}
		if !strings.Contains(v, "REPLACE_ME") {
			t.Errorf("%s: %q is not marked as a placeholder (REPLACE_ME)", key, v)
		}
	}
}

// The kustomization decodes strictly into kustomize's own type, and kustomize builds
// it: the Deployment, the Service and the PodDisruptionBudget, never the example Secret.
func TestKustomization(t *testing.T) {
	var k kusttypes.Kustomization
	if err := yaml.UnmarshalStrict(readFile(t, filepath.Join("k8s", "kustomization.yaml")), &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.Kind != kusttypes.KustomizationKind || k.APIVersion != kusttypes.KustomizationVersion {
		t.Errorf("kustomization.yaml: %s %s", k.APIVersion, k.Kind)
	}
	if slices.Contains(k.Resources, "secret.example.yaml") {
		t.Error("kustomization.yaml deploys the example Secret and its placeholders")
	}
	var bad kusttypes.Kustomization
	if err := yaml.UnmarshalStrict([]byte("resources: [a.yaml]\nresourcez: [b.yaml]\n"), &bad); err == nil {
		t.Error("the strict decoding of a kustomization accepts an unknown field")
	}

	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "k8s")
	if err != nil {
		t.Fatalf("kustomize build deployments/k8s: %v", err)
	}
	out, err := resMap.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, obj := range decodeObjects(t, "kustomize build", out) {
		switch o := obj.(type) {
		case *appsv1.Deployment:
			kinds = append(kinds, "Deployment")
			img := o.Spec.Template.Spec.Containers[0].Image
			if img != "registry.example.com/keyledger:latest" {
				t.Errorf("the built Deployment's image is %q: the images: entry did not apply", img)
			}
			if o.Labels["app.kubernetes.io/part-of"] != "keyledger" {
				t.Errorf("the built Deployment lacks the kustomization's labels: %v", o.Labels)
			}
		case *corev1.Service:
			kinds = append(kinds, "Service")
		case *policyv1.PodDisruptionBudget:
			kinds = append(kinds, "PodDisruptionBudget")
		default:
			kinds = append(kinds, fmt.Sprintf("%T", obj))
		}
	}
	slices.Sort(kinds)
	if want := []string{"Deployment", "PodDisruptionBudget", "Service"}; !slices.Equal(kinds, want) {
		t.Errorf("kustomize build gives %v, want %v", kinds, want)
	}
}

// ---------------------------------------------------------------------------
// Compose

func loadComposeFile(t *testing.T, dir string) (*composetypes.Project, error) {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return loader.LoadWithContext(context.Background(), composetypes.ConfigDetails{
		WorkingDir:  abs,
		ConfigFiles: []composetypes.ConfigFile{{Filename: filepath.Join(abs, "compose.yaml")}},
		Environment: composetypes.Mapping{}, // nothing from this machine's environment
	}, func(o *loader.Options) { o.SetProjectName("keyledger", true) })
}

func loadCompose(t *testing.T) *composetypes.Project {
	t.Helper()
	p, err := loadComposeFile(t, ".")
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return p
}

// The loader validates against the compose specification's schema: an unknown field
// is an error.
func TestComposeLoaderIsStrict(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"nats.conf", "haproxy.cfg"} {
		if err := os.WriteFile(filepath.Join(dir, f), readFile(t, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bad := strings.Replace(string(readFile(t, "compose.yaml")), "  postgres:\n    image: postgres:15\n", "  postgres:\n    image: postgres:15\n    imagee: x\n", 1)
	if bad == string(readFile(t, "compose.yaml")) {
		t.Fatal("the test's edit of compose.yaml did not apply")
	}
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadComposeFile(t, dir); err == nil || !strings.Contains(err.Error(), "imagee") {
		t.Fatalf("an unknown field: %v", err)
	}
}

func service(t *testing.T, p *composetypes.Project, name string) composetypes.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return s
}

func composeEnv(s composetypes.ServiceConfig) map[string]string {
	m := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			m[k] = *v
		}
	}
	return m
}

var natsServices = []string{"nats-1", "nats-2", "nats-3"}

var keyledgerServices = []string{"keyledger-1", "keyledger-2"}

// natsImage matches an official NATS image of 2.12 or newer.
var natsImage = regexp.MustCompile(`^nats:(\d+)\.(\d+)`)

func TestComposeNATS(t *testing.T) {
	p := loadCompose(t)
	for _, name := range natsServices {
		s := service(t, p, name)
		m := natsImage.FindStringSubmatch(s.Image)
		if m == nil {
			t.Errorf("%s: image %q, want nats:2.12 or newer", name, s.Image)
		} else if major, _ := strconv.Atoi(m[1]); major < 2 || (major == 2 && atoi(m[2]) < 12) {
			t.Errorf("%s: image %q, want nats-server 2.12 or newer", name, s.Image)
		}
		// The server's name is the service's: JetStream clustering needs unique names.
		cmd := []string(s.Command)
		if i := slices.Index(cmd, "--name"); i < 0 || i+1 >= len(cmd) || cmd[i+1] != name {
			t.Errorf("%s: command %v does not name the server %s", name, cmd, name)
		}
		if i := slices.Index(cmd, "--config"); i < 0 || i+1 >= len(cmd) || !mountsConfig(s, "nats", cmd[i+1]) {
			t.Errorf("%s: command %v does not read the config nats.conf", name, cmd)
		}
		if s.HealthCheck == nil || !strings.Contains(strings.Join(s.HealthCheck.Test, " "), ":8222/healthz") {
			t.Errorf("%s: healthcheck %v, want GET :8222/healthz", name, s.HealthCheck)
		}
		if len(s.Volumes) != 1 || s.Volumes[0].Target != "/data" {
			t.Errorf("%s: volumes %v, want one on /data (JetStream's store_dir)", name, s.Volumes)
		}
	}
	if f := p.Configs["nats"].File; filepath.Base(f) != "nats.conf" {
		t.Errorf("config nats is %q, want nats.conf", f)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// mountsConfig tells whether the service has the project config source at target.
func mountsConfig(s composetypes.ServiceConfig, source, target string) bool {
	return slices.ContainsFunc(s.Configs, func(c composetypes.ServiceConfigObjConfig) bool {
		return c.Source == source && c.Target == target
	})
}

// nats.conf, through nats-server's own parser (warnings are failures too): JetStream
// on, and a cluster whose routes are the three compose services.
func TestNATSConfig(t *testing.T) {
	var o natsserver.Options
	if err := o.ProcessConfigFile("nats.conf"); err != nil {
		t.Fatalf("nats.conf: %v", err)
	}
	if !o.JetStream || o.StoreDir != "/data" {
		t.Errorf("JetStream %v in %q, want on in /data", o.JetStream, o.StoreDir)
	}
	if o.Port != 4222 || o.HTTPPort != 8222 || o.Cluster.Port != 6222 || o.Cluster.Name == "" {
		t.Errorf("ports: client %d, monitor %d, cluster %d (%q)", o.Port, o.HTTPPort, o.Cluster.Port, o.Cluster.Name)
	}
	var hosts []string
	for _, r := range o.Routes {
		if r.Port() != "6222" {
			t.Errorf("route %s: not the cluster port", r)
		}
		hosts = append(hosts, r.Hostname())
	}
	slices.Sort(hosts)
	if !slices.Equal(hosts, natsServices) {
		t.Errorf("routes to %v, want the compose services %v", hosts, natsServices)
	}
	if o.ServerName != "" {
		t.Errorf("server_name %q in the shared file: each node sets its own with --name", o.ServerName)
	}
}

func TestComposeKeyledger(t *testing.T) {
	bin := readBinaryConfig(t)
	p := loadCompose(t)
	var natsURLs []string
	for _, n := range natsServices {
		natsURLs = append(natsURLs, "nats://"+n+":4222")
	}
	for _, name := range append([]string{"migrate"}, keyledgerServices...) {
		s := service(t, p, name)
		env := composeEnv(s)
		bin.checkVars(t, "compose.yaml service "+name, env)
		if s.Build == nil || filepath.Base(s.Build.Dockerfile) != "Dockerfile" {
			t.Errorf("%s: not built from deployments/Dockerfile: %+v", name, s.Build)
		} else if ctx, _ := filepath.Abs(root); filepath.Clean(s.Build.Context) != ctx {
			t.Errorf("%s: build context %s, want the repository root %s", name, s.Build.Context, ctx)
		}
		// Secrets: files, each where its _FILE variable says.
		for _, v := range []string{"KEYLEDGER_DATABASE_URL_FILE", "KEYLEDGER_MASTER_KEY_FILE", "KEYLEDGER_PEPPER_FILE", "KEYLEDGER_GATEWAY_TOKEN_FILE", "KEYLEDGER_AUDIT_SIGNING_KEY_FILE"} {
			path := env[v]
			if !slices.ContainsFunc(s.Secrets, func(sec composetypes.ServiceSecretConfig) bool {
				return secretTarget(sec) == path
			}) {
				t.Errorf("%s: %s=%q is no secret of the service (%v)", name, v, path, s.Secrets)
			}
		}
		for _, v := range []string{"KEYLEDGER_MASTER_KEY", "KEYLEDGER_PEPPER", "KEYLEDGER_GATEWAY_TOKEN", "KEYLEDGER_DATABASE_URL", "KEYLEDGER_AUDIT_SIGNING_KEY"} {
			if _, ok := env[v]; ok {
				t.Errorf("%s: %s is a plain variable; want %s_FILE", name, v, v)
			}
		}
		if _, ok := env["KEYLEDGER_HTTP_ADDR"]; ok {
			t.Errorf("%s: KEYLEDGER_HTTP_ADDR is set; haproxy.cfg assumes the default %s", name, bin.defaultHTTPAddr)
		}
		if name == "migrate" {
			if !slices.Equal([]string(s.Command), []string{"migrate"}) {
				t.Errorf("migrate runs %v", s.Command)
			}
			continue
		}
		if !slices.Equal([]string(s.Command), []string{"serve"}) {
			t.Errorf("%s runs %v, want serve", name, s.Command)
		}
		if env["KEYLEDGER_REPLICAS"] != "3" {
			t.Errorf("%s: KEYLEDGER_REPLICAS=%q, want 3", name, env["KEYLEDGER_REPLICAS"])
		}
		if got := strings.Split(env["KEYLEDGER_NATS_URL"], ","); !slices.Equal(got, natsURLs) {
			t.Errorf("%s: KEYLEDGER_NATS_URL lists %v, want %v", name, got, natsURLs)
		}
		for _, dep := range append(slices.Clone(natsServices), "postgres") {
			if d, ok := s.DependsOn[dep]; !ok || d.Condition != composetypes.ServiceConditionHealthy {
				t.Errorf("%s: does not wait for %s to be healthy", name, dep)
			}
		}
		if d, ok := s.DependsOn["migrate"]; !ok || d.Condition != composetypes.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s: does not wait for the migrations", name)
		}
		if len(s.Ports) != 0 {
			t.Errorf("%s publishes ports %v: only the load balancer should", name, s.Ports)
		}
	}
	pg := service(t, p, "postgres")
	if pg.Image != "postgres:15" && !strings.HasPrefix(pg.Image, "postgres:15.") && !strings.HasPrefix(pg.Image, "postgres:15-") {
		t.Errorf("postgres image %q, want PostgreSQL 15", pg.Image)
	}
	if pg.HealthCheck == nil || !slices.Contains(pg.HealthCheck.Test, "pg_isready") {
		t.Errorf("postgres: healthcheck %v, want pg_isready", pg.HealthCheck)
	}
	for name, sec := range p.Secrets {
		if !strings.HasPrefix(sec.File, mustAbs(t, "secrets")+string(filepath.Separator)) {
			t.Errorf("secret %s is read from %s, outside deployments/secrets/ (which gen-secrets.sh writes and git ignores)", name, sec.File)
		}
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// secretTarget is where compose mounts a secret: /run/secrets/<source> by default.
func secretTarget(s composetypes.ServiceSecretConfig) string {
	if s.Target == "" {
		return "/run/secrets/" + s.Source
	}
	if strings.HasPrefix(s.Target, "/") {
		return s.Target
	}
	return "/run/secrets/" + s.Target
}

// The load balancer: haproxy.cfg, read line by line (HAProxy has no Go parser), is
// mounted by compose, balances over the keyledger services on the binary's default
// port and checks GET /readyz.
func TestLoadBalancer(t *testing.T) {
	bin := readBinaryConfig(t)
	p := loadCompose(t)
	lb := service(t, p, "lb")
	if !strings.HasPrefix(lb.Image, "haproxy:") {
		t.Errorf("lb image %q, want haproxy", lb.Image)
	}
	if !mountsConfig(lb, "haproxy", "/usr/local/etc/haproxy/haproxy.cfg") || filepath.Base(p.Configs["haproxy"].File) != "haproxy.cfg" {
		t.Errorf("lb does not mount haproxy.cfg where the haproxy image reads it: %v", lb.Configs)
	}
	port := bin.defaultPort(t)
	var bind string
	var servers []string
	var checks []string
	for _, line := range strings.Split(string(readFile(t, "haproxy.cfg")), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch {
		case f[0] == "bind":
			bind = f[1]
		case f[0] == "server" && len(f) >= 3:
			host, p, _ := strings.Cut(f[2], ":")
			if p != strconv.Itoa(port) {
				t.Errorf("haproxy server %s: port %s, want keyledger's default %d", f[1], p, port)
			}
			if !slices.Contains(f, "check") {
				t.Errorf("haproxy server %s is not health-checked", f[1])
			}
			servers = append(servers, host)
		case f[0] == "http-check":
			checks = append(checks, strings.Join(f[1:], " "))
		}
	}
	slices.Sort(servers)
	if !slices.Equal(servers, keyledgerServices) {
		t.Errorf("haproxy balances over %v, want %v", servers, keyledgerServices)
	}
	if !slices.Contains(checks, "send meth GET uri /readyz") || !slices.Contains(checks, "expect status 200") {
		t.Errorf("haproxy checks %v, want GET /readyz answering 200", checks)
	}
	_, bindPort, _ := strings.Cut(bind, ":")
	published := false
	for _, pc := range lb.Ports {
		if strconv.FormatUint(uint64(pc.Target), 10) == bindPort {
			published = true
		}
	}
	if !published {
		t.Errorf("haproxy binds %s, which lb does not publish (%v)", bind, lb.Ports)
	}
}

// gen-secrets.sh writes secrets keyledger accepts, and a database URL whose password
// is PostgreSQL's; a second run keeps them.
func TestGenSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	run := func() {
		if out, err := exec.Command("sh", "gen-secrets.sh", dir).CombinedOutput(); err != nil {
			t.Fatalf("gen-secrets.sh: %v\n%s", err, out)
		}
	}
	run()
	read := func(name string) string {
		b := readFile(t, filepath.Join(dir, name))
		if !strings.HasSuffix(string(b), "\n") || strings.Count(string(b), "\n") != 1 {
			t.Errorf("%s: want one line", name)
		}
		return strings.TrimSuffix(string(b), "\n")
	}
	p := loadCompose(t)
	for name := range p.Secrets {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("compose secret %s: gen-secrets.sh does not write it: %v", name, err)
			continue
		}
		if info.Mode().Perm()&0o004 == 0 {
			t.Errorf("%s: mode %v: user 65532 of the image cannot read the bind-mounted file", name, info.Mode())
		}
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("the secrets folder: %v %v, want mode 0700", info.Mode(), err)
	}
	for _, name := range []string{"master_key", "pepper"} {
		b, err := base64.StdEncoding.DecodeString(read(name))
		if err != nil || len(b) != 32 {
			t.Errorf("%s: not base64 of 32 bytes: %v", name, err)
		}
	}
	if tok := read("gateway_token"); len(tok) < 16 || !strings.HasPrefix(tok, "klg_") {
		t.Errorf("gateway_token %q", tok)
	}
	if _, err := audit.NewSigner(read("audit_signing_key")); err != nil {
		t.Errorf("audit_signing_key: %v", err)
	}
	cfg, err := pgx.ParseConfig(read("database_url"))
	if err != nil {
		t.Fatalf("database_url: %v", err)
	}
	pg := composeEnv(service(t, p, "postgres"))
	if cfg.Password != read("postgres_password") || cfg.User != pg["POSTGRES_USER"] || cfg.Database != pg["POSTGRES_DB"] || cfg.Host != "postgres" {
		t.Errorf("database_url %s@%s/%s does not match the postgres service (%v)", cfg.User, cfg.Host, cfg.Database, pg)
	}
	before := read("master_key")
	run()
	if read("master_key") != before {
		t.Error("a second run replaced an existing secret")
	}
}

// ---------------------------------------------------------------------------
// Dockerfile

// dockerfileStages parses the Dockerfile with BuildKit's own parser and linter: a
// syntax error, an unknown instruction or a lint warning fails.
func dockerfileStages(t *testing.T) []instructions.Stage {
	t.Helper()
	res, err := dfparser.Parse(bytes.NewReader(readFile(t, "Dockerfile")))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile: %s", w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []dfparser.Range) {
		t.Errorf("Dockerfile: lint %s: %s (%v)", rule, msg, loc)
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return stages
}

func TestDockerfile(t *testing.T) {
	bin := readBinaryConfig(t)
	stages := dockerfileStages(t)
	if len(stages) < 2 {
		t.Fatalf("%d stage(s): want a multi-stage build", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	// The build stage: the Go of go.mod, without cgo.
	goVersion := goModGo(t)
	if m := regexp.MustCompile(`^golang:(\d+\.\d+)`).FindStringSubmatch(build.BaseName); m == nil || !strings.HasPrefix(goVersion+".", m[1]+".") {
		t.Errorf("the build stage is FROM %s; go.mod wants go %s", build.BaseName, goVersion)
	}
	var buildsStatic bool
	for _, c := range build.Commands {
		if r, ok := c.(*instructions.RunCommand); ok {
			line := strings.Join(r.CmdLine, " ")
			if strings.Contains(line, "go build") && strings.Contains(line, "./cmd/keyledger") && strings.Contains(line, "CGO_ENABLED=0") {
				buildsStatic = true
			}
		}
	}
	if !buildsStatic {
		t.Error("no RUN CGO_ENABLED=0 ... go build ... ./cmd/keyledger in the build stage")
	}

	// The final stage: distroless static or scratch, the binary only, a non-root user.
	if !strings.HasPrefix(final.BaseName, "gcr.io/distroless/static") && final.BaseName != "scratch" {
		t.Errorf("the image is FROM %s, want distroless static or scratch", final.BaseName)
	}
	var user string
	var expose, entrypoint, cmd []string
	copiesBinary := false
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.ExposeCommand:
			expose = append(expose, c.Ports...)
		case *instructions.EntrypointCommand:
			if c.PrependShell {
				t.Error("ENTRYPOINT in shell form: the image has no shell")
			}
			entrypoint = c.CmdLine
		case *instructions.CmdCommand:
			if c.PrependShell {
				t.Error("CMD in shell form: the image has no shell")
			}
			cmd = c.CmdLine
		case *instructions.CopyCommand:
			if c.From == build.Name {
				copiesBinary = true
			}
		case *instructions.RunCommand:
			t.Errorf("RUN in the final stage: %v (the image has no shell)", c.CmdLine)
		case *instructions.HealthCheckCommand:
			t.Error("HEALTHCHECK in the final stage: the image has no shell or client to run it")
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); user == "" || uid == "root" || (err == nil && n == 0) {
		t.Errorf("USER %q: want a non-root user", user)
	} else if err != nil {
		t.Errorf("USER %q: want a numeric user, which Kubernetes' runAsNonRoot can verify", user)
	}
	if d := loadK8s(t).deployment; d.Spec.Template.Spec.SecurityContext.RunAsUser != nil && strconv.FormatInt(*d.Spec.Template.Spec.SecurityContext.RunAsUser, 10) != uid {
		t.Errorf("deployment.yaml runs as %d, the image as %s", *d.Spec.Template.Spec.SecurityContext.RunAsUser, uid)
	}
	if !copiesBinary {
		t.Errorf("the final stage copies nothing from the build stage %q", build.Name)
	}
	if want := []string{strconv.Itoa(bin.defaultPort(t))}; !slices.Equal(expose, want) {
		t.Errorf("EXPOSE %v, want %v (default %s)", expose, want, bin.defaultHTTPAddr)
	}
	if len(entrypoint) != 1 || filepath.Base(entrypoint[0]) != "keyledger" {
		t.Errorf("ENTRYPOINT %v, want keyledger", entrypoint)
	}
	if !slices.Equal(cmd, []string{"serve"}) {
		t.Errorf("CMD %v, want serve", cmd)
	}
}

// goModGo is the go line of go.mod ("1.26.8").
func goModGo(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(readFile(t, filepath.Join(root, "go.mod")))
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	return string(m[1])
}

// The build context (the repository root) leaves out what must not reach the image
// or slow the build: git, the secrets, built binaries.
func TestDockerignore(t *testing.T) {
	f, err := os.Open("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	for path, excluded := range map[string]bool{
		".git/config":                   true,
		"deployments/secrets/pepper":    true,
		"keyledger":                     true,
		"bin/keyledger":                 true,
		".keyledger/secrets.json":       true,
		"go.mod":                        false,
		"go.sum":                        false,
		"cmd/keyledger/main.go":         false,
		"projections/migrations/1.sql":  false,
		"deployments/Dockerfile":        false,
		"httpapi/testdata/fuzz/x/y.txt": false,
	} {
		got, err := pm.MatchesOrParentMatches(path)
		if err != nil {
			t.Fatal(err)
		}
		if got != excluded {
			t.Errorf("%s: excluded from the build context %v, want %v", path, got, excluded)
		}
	}
}

// The Dockerfile builds with CGO_ENABLED=0: every package the binary needs builds
// without cgo. (`go list` answers in a second; the static build itself was run by
// hand, see docs/deployments.md.)
func TestBinaryNeedsNoCgo(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{if .Error}}{{.Error}}{{end}}", "./cmd/keyledger")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("CGO_ENABLED=0 go list -deps ./cmd/keyledger: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/keyledger/keyledger/cmd/keyledger") {
		t.Fatalf("go list: %s", out)
	}
}
