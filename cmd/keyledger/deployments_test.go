package main

// The environments that deployments/ gives the binary, through the binary's own
// configuration code: the compose services and the Kubernetes Deployment, their
// secret files replaced by files of the test. deployments/deployments_test.go
// checks the files themselves.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	composetypes "github.com/compose-spec/compose-go/v2/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/keyledger/keyledger/audit"
)

const deploymentsDir = "../../deployments"

// needOf is what Validate asks of the subcommand, as its run function does.
var needOf = map[string]need{
	"serve":     serveNeed,
	"migrate":   {database: true},
	"bootstrap": {nats: true, pepper: true},
}

// testAuditKey is an audit signing key keyledger accepts.
var testAuditKey = func() string {
	skey, _, err := audit.GenerateKey("keyledger-test")
	if err != nil {
		panic(err)
	}
	return skey
}()

// validSecrets are secret values keyledger accepts, by their file's base name in
// compose (master_key) or Kubernetes (master-key).
func validSecret(t *testing.T, base string) string {
	t.Helper()
	switch strings.ReplaceAll(base, "-", "_") {
	case "master_key":
		return testMasterKey
	case "pepper":
		return testPepper
	case "gateway_token":
		return testToken
	case "database_url":
		return testDBURL
	case "audit_signing_key":
		return testAuditKey
	}
	t.Fatalf("no test value for the secret file %s", base)
	return ""
}

// withSecretFiles rewrites each KEYLEDGER_*_FILE of env to a file of the test holding
// value(path) and a newline, as a mounted secret has it.
func withSecretFiles(t *testing.T, env map[string]string, value func(path string) string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	out := map[string]string{}
	for k, v := range env {
		if strings.HasPrefix(k, "KEYLEDGER_") && strings.HasSuffix(k, "_FILE") {
			local := filepath.Join(dir, filepath.Base(v))
			if err := os.WriteFile(local, []byte(value(v)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			v = local
		}
		out[k] = v
	}
	return out
}

func loadComposeProject(t *testing.T) *composetypes.Project {
	t.Helper()
	abs, err := filepath.Abs(deploymentsDir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), composetypes.ConfigDetails{
		WorkingDir:  abs,
		ConfigFiles: []composetypes.ConfigFile{{Filename: filepath.Join(abs, "compose.yaml")}},
		Environment: composetypes.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("keyledger", true) })
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return p
}

// Each keyledger service of compose.yaml (the one-shot migrate and the serving
// instances) passes its subcommand's Validate with the environment compose gives it,
// and so does `bootstrap` run in that environment (docs/deployments.md).
func TestComposeEnvironmentPassesValidate(t *testing.T) {
	p := loadComposeProject(t)
	var checked int
	for _, s := range p.Services {
		if s.Build == nil || len(s.Command) == 0 {
			continue // not a keyledger service
		}
		commands := []string{s.Command[0]}
		if s.Command[0] == "serve" {
			commands = append(commands, "bootstrap")
		}
		for _, command := range commands {
			t.Run(s.Name+"/"+command, func(t *testing.T) {
				checked++
				cleanEnv(t)
				env := map[string]string{}
				for k, v := range s.Environment {
					if v != nil {
						env[k] = *v
					}
				}
				setEnv(t, withSecretFiles(t, env, func(path string) string { return validSecret(t, filepath.Base(path)) }))
				cfg := parseCommand(t, command, s.Command[1:]...)
				if err := cfg.Validate(needOf[command]); err != nil {
					t.Fatalf("%s %s in compose's environment: %v", s.Name, command, err)
				}
				if command == "serve" && (cfg.Replicas != 3 || strings.Count(cfg.NATSURL, "nats://") != 3) {
					t.Errorf("%s: replicas %d, NATS %s", s.Name, cfg.Replicas, cfg.NATSURL)
				}
			})
		}
	}
	if checked < 5 {
		t.Fatalf("checked %d keyledger services and commands in compose.yaml, want migrate and two instances", checked)
	}
}

func loadK8sDeployment(t *testing.T) (*appsv1.Deployment, corev1.Container) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deploymentsDir, "k8s", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(b, &d); err != nil {
		t.Fatalf("deployment.yaml: %v", err)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("deployment.yaml: %d containers", len(d.Spec.Template.Spec.Containers))
	}
	return &d, d.Spec.Template.Spec.Containers[0]
}

func k8sEnv(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	return env
}

// The Kubernetes Deployment's container passes serve's Validate with valid secrets in
// its files, and fails it with the placeholders of secret.example.yaml: a Secret
// applied unedited cannot start an instance.
func TestK8sEnvironmentPassesValidate(t *testing.T) {
	_, c := loadK8sDeployment(t)
	if len(c.Args) == 0 {
		t.Fatal("the container has no args")
	}
	command := c.Args[0]

	cleanEnv(t)
	setEnv(t, withSecretFiles(t, k8sEnv(c), func(path string) string { return validSecret(t, filepath.Base(path)) }))
	cfg := parseCommand(t, command, c.Args[1:]...)
	if err := cfg.Validate(needOf[command]); err != nil {
		t.Fatalf("%s in the Deployment's environment: %v", command, err)
	}

	b, err := os.ReadFile(filepath.Join(deploymentsDir, "k8s", "secret.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var secret corev1.Secret
	if err := yaml.UnmarshalStrict(b, &secret); err != nil {
		t.Fatalf("secret.example.yaml: %v", err)
	}
	cleanEnv(t)
	setEnv(t, withSecretFiles(t, k8sEnv(c), func(path string) string {
		v, ok := secret.StringData[filepath.Base(path)]
		if !ok {
			t.Fatalf("secret.example.yaml has no key %s", filepath.Base(path))
		}
		return v
	}))
	cfg = parseCommand(t, command, c.Args[1:]...)
	err = cfg.Validate(needOf[command])
	if err == nil {
		t.Fatal("serve starts with the placeholder secrets of secret.example.yaml")
	}
	for _, want := range []string{"KEYLEDGER_MASTER_KEY", "KEYLEDGER_PEPPER", "KEYLEDGER_GATEWAY_TOKEN", "KEYLEDGER_AUDIT_SIGNING_KEY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the placeholder %s is accepted: %v", want, err)
		}
	}
}
