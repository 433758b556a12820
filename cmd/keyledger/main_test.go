package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/projections/pgtest"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var (
	// dev prints shell lines a newcomer pastes or evals.
	secretLine  = regexp.MustCompile(`(?m)^export KEYLEDGER_ACCESS_KEY=(kla_\w+)$`)
	gatewayLine = regexp.MustCompile(`(?m)^export KEYLEDGER_GATEWAY_TOKEN=(\S+)$`)
)

// TestDevKeepsDataAcrossRestarts runs the real binary twice on one data directory:
// the first start bootstraps and prints a secret, the second does not, and the
// secret and the data still work.
func TestDevKeepsDataAcrossRestarts(t *testing.T) {
	bin := buildKeyledger(t)
	data := t.TempDir()
	db := pgtest.NewDatabase(t)
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	natsPort := strconv.Itoa(freePort(t))

	run := func() (stdout string, stop func()) {
		d := startDev(t, bin, data, addr, natsPort, db)
		return d.Stdout(), d.stop
	}
	get := func(secret, path string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}

	out, stop := run()
	m := secretLine.FindStringSubmatch(out)
	if m == nil {
		stop()
		t.Fatalf("first start printed no secret:\n%s", out)
	}
	secret := m[1]
	g := gatewayLine.FindStringSubmatch(out)
	if g == nil {
		stop()
		t.Fatalf("first start printed no gateway token:\n%s", out)
	}
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/workspaces", strings.NewReader(`{"name":"kept"}`))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 201 {
		stop()
		t.Fatalf("create workspace: %v %v", res, err)
	}
	var ws struct{ ID string }
	_ = json.NewDecoder(res.Body).Decode(&ws)
	res.Body.Close()

	// The operators' check, against the running server.
	verify := func(ip string) (string, int) {
		cmd := exec.Command(bin, "verify", "--server", "http://"+addr, "--credential", secret, "--workspace", ws.ID, "--product", "maas", "--ip", ip)
		cmd.Env = append(os.Environ(), "KEYLEDGER_GATEWAY_TOKEN="+g[1])
		out, err := cmd.Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	if out, code := verify("10.0.0.1"); code != 0 || !strings.Contains(out, `"code": "VALID"`) {
		stop()
		t.Fatalf("keyledger verify: exit %d\n%s", code, out)
	}
	// With no token and no --server: the address dev listens on and the token dev
	// keeps in its data dir.
	byEnv := exec.Command(bin, "verify", "--data-dir", data, "--credential", secret, "--workspace", ws.ID, "--product", "maas")
	byEnv.Env = append(withoutEnv("KEYLEDGER_GATEWAY_TOKEN", "KEYLEDGER_SERVER"), "KEYLEDGER_HTTP_ADDR="+addr)
	if out, err := byEnv.CombinedOutput(); err != nil || !strings.Contains(string(out), `"code": "VALID"`) {
		stop()
		t.Fatalf("keyledger verify from KEYLEDGER_HTTP_ADDR and the data dir: %v\n%s", err, out)
	}
	// A second dev while the first runs says which port is taken and exits non-zero.
	second := exec.Command(bin, "dev", "--data-dir", t.TempDir(), "--http-addr", addr, "--nats-port", natsPort)
	second.Env = append(os.Environ(), "KEYLEDGER_DATABASE_URL="+db)
	if out, err := second.CombinedOutput(); err == nil || !strings.Contains(string(out), "address already in use") ||
		!strings.Contains(string(out), "--nats-port") || !strings.Contains(string(out), "--http-addr") {
		stop()
		t.Fatalf("a second dev on the same ports: %v\n%s", err, out)
	}
	other := exec.Command(bin, "verify", "--server", "http://"+addr, "--credential", "kla_nope", "--workspace", ws.ID, "--product", "maas")
	other.Env = append(os.Environ(), "KEYLEDGER_GATEWAY_TOKEN="+g[1])
	if out, err := other.Output(); err == nil || !strings.Contains(string(out), "MALFORMED") {
		stop()
		t.Fatalf("keyledger verify of a bad credential: %v\n%s", err, out)
	}
	stop()

	out, stop = run()
	defer stop()
	if secretLine.MatchString(out) {
		t.Fatalf("second start bootstrapped again:\n%s", out)
	}
	if m := gatewayLine.FindStringSubmatch(out); m == nil || m[1] != g[1] {
		t.Fatalf("the gateway token changed or is not shown:\n%s", out)
	}
	if st := get(secret, "/v1/workspaces"); st != 200 {
		t.Fatalf("the first secret after restart: %d", st)
	}
	if _, err := os.Stat(filepath.Join(data, "secrets.json")); err != nil {
		t.Fatalf("dev secrets: %v", err)
	}
}

// withoutEnv is the environment less the variables named.
func withoutEnv(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !contains(names, name) {
			env = append(env, kv)
		}
	}
	return env
}

func TestServeRefusesWithoutSecrets(t *testing.T) {
	var c Config
	c.Replicas = 2
	err := c.Validate(need{nats: true, database: true, secrets: true})
	if err == nil {
		t.Fatal("serve must refuse to start")
	}
	for _, want := range []string{"KEYLEDGER_NATS_URL", "KEYLEDGER_DATABASE_URL", "KEYLEDGER_MASTER_KEY", "KEYLEDGER_PEPPER", "KEYLEDGER_GATEWAY_TOKEN", "KEYLEDGER_REPLICAS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not list %s: %v", want, err)
		}
	}
	c = Config{NATSURL: "nats://x", DatabaseURL: "postgres://x", Replicas: 3, MasterKey: "c2hvcnQ=", Pepper: strings.Repeat("A", 44), GatewayToken: strings.Repeat("t", 20)}
	if err := c.Validate(need{nats: true, database: true, secrets: true}); err == nil || !strings.Contains(err.Error(), "exactly 32 bytes") {
		t.Fatalf("short master key: %v", err)
	}
}
