package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
)

// helpOf is what `keyledger <command> -h` prints.
func helpOf(t *testing.T, command string) string {
	t.Helper()
	sc, ok := lookup(command)
	if !ok {
		t.Fatalf("no subcommand %q", command)
	}
	var out bytes.Buffer
	var cfg Config
	if err := newFlagSet(sc, &cfg, flag.ContinueOnError, &out).Parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("%s -h: %v", command, err)
	}
	return out.String()
}

// Each subcommand lists the flags it reads and none of the others'.
func TestEachCommandListsOnlyItsFlags(t *testing.T) {
	all := []string{"nats-url", "database-url", "http-addr", "master-key", "pepper", "gateway-token", "replicas",
		"data-dir", "nats-port", "org-name", "primary-name", "server", "credential", "workspace", "product", "ip", "file", "batch", "from", "to",
		"endpoint", "secret", "durable", "usage-max-age", "audit-signing-key", "audit-previous-public-keys", "audit-origin",
		"audit-checkpoint-every", "audit-retention", "public-key", "in", "partial", "org", "after", "until"}
	signing := []string{"audit-signing-key", "audit-previous-public-keys", "audit-origin", "audit-checkpoint-every", "audit-retention"}
	want := map[string][]string{
		"dev":                         append([]string{"database-url", "http-addr", "master-key", "pepper", "gateway-token", "data-dir", "nats-port", "org-name", "primary-name", "usage-max-age"}, signing...),
		"serve":                       append([]string{"nats-url", "database-url", "http-addr", "master-key", "pepper", "gateway-token", "replicas", "usage-max-age"}, signing...),
		"migrate":                     {"database-url"},
		"bootstrap":                   {"nats-url", "pepper", "replicas", "org-name", "primary-name"},
		"verify":                      {"server", "gateway-token", "data-dir", "credential", "workspace", "product", "ip"},
		"usage send":                  {"server", "gateway-token", "data-dir", "file", "batch"},
		"costs reconcile":             {"nats-url", "database-url", "replicas", "from", "to"},
		"billing export":              {"nats-url", "replicas", "endpoint", "secret", "durable"},
		"billing replay-dead-letters": {"nats-url", "replicas", "endpoint", "secret", "durable"},
		"audit keygen":                {},
		"audit verify":                {"public-key", "in", "partial"},
		"events export":               {"nats-url", "replicas", "org", "after", "until"},
		"events tail":                 {"nats-url", "replicas", "org", "after"},
	}
	if len(want) != len(subcommands) {
		t.Fatalf("the test knows %d subcommands, main has %d", len(want), len(subcommands))
	}
	for command, flags := range want {
		help := helpOf(t, command)
		if !strings.Contains(help, "usage: keyledger "+command) {
			t.Errorf("%s -h has no usage line:\n%s", command, help)
		}
		for _, f := range all {
			listed := strings.Contains(help, "  -"+f+" ") || strings.Contains(help, "  -"+f+"\n") // a boolean has no value
			if wanted := contains(flags, f); listed != wanted {
				t.Errorf("%s -h: --%s listed %v, want %v\n%s", command, f, listed, wanted, help)
			}
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// verify finds the server from the variable that dev and serve listen on.
func TestVerifyServerFromHTTPAddr(t *testing.T) {
	t.Setenv("KEYLEDGER_SERVER", "") // restored at the end of the test
	os.Unsetenv("KEYLEDGER_SERVER")
	t.Setenv("KEYLEDGER_HTTP_ADDR", ":18123")
	sc, _ := lookup("verify")
	var cfg Config
	if err := newFlagSet(sc, &cfg, flag.ContinueOnError, io.Discard).Parse(nil); err != nil {
		t.Fatal(err)
	}
	if u, err := serverURL(cfg.Verify.Server); err != nil || u != "http://127.0.0.1:18123" {
		t.Fatalf("server from KEYLEDGER_HTTP_ADDR: %q %v", u, err)
	}
	cfg = Config{}
	if err := newFlagSet(sc, &cfg, flag.ContinueOnError, io.Discard).Parse([]string{"--server", "https://kl.example.com/"}); err != nil {
		t.Fatal(err)
	}
	if u, _ := serverURL(cfg.Verify.Server); u != "https://kl.example.com" {
		t.Fatalf("--server wins over KEYLEDGER_HTTP_ADDR: %q", u)
	}
}

func TestServerURL(t *testing.T) {
	for in, want := range map[string]string{
		":8080":                  "http://127.0.0.1:8080",
		"127.0.0.1:8080":         "http://127.0.0.1:8080",
		"0.0.0.0:8080":           "http://127.0.0.1:8080",
		"[::]:8080":              "http://127.0.0.1:8080",
		"localhost:9000":         "http://localhost:9000",
		"[::1]:8080":             "http://[::1]:8080",
		"http://10.0.0.5:8080":   "http://10.0.0.5:8080",
		"https://kl.example.com": "https://kl.example.com",
	} {
		if got, err := serverURL(in); err != nil || got != want {
			t.Errorf("serverURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "8080", "localhost", "ftp://x", "http://"} {
		if got, err := serverURL(bad); err == nil {
			t.Errorf("serverURL(%q) = %q, want an error", bad, got)
		}
	}
}

// A command that opens the streams takes the replicas they were created with, with
// their default, so that parsing no flag validates (costs reconcile once refused to
// run: "KEYLEDGER_REPLICAS must be 1, 3 or 5, got 0").
func TestStreamCommandsValidateWithDefaults(t *testing.T) {
	t.Setenv("KEYLEDGER_DATABASE_URL", defaultDatabaseURL)
	t.Setenv("KEYLEDGER_BILLING_ENDPOINT", "http://127.0.0.1:9/billing")
	t.Setenv("KEYLEDGER_BILLING_SECRET", strings.Repeat("s", 32))
	for _, command := range []string{"costs reconcile", "billing export", "billing replay-dead-letters"} {
		sc, _ := lookup(command)
		var cfg Config
		if err := newFlagSet(sc, &cfg, flag.ContinueOnError, io.Discard).Parse([]string{"--nats-url", "nats://127.0.0.1:4222"}); err != nil {
			t.Fatalf("%s: %v", command, err)
		}
		err := cfg.Validate(need{nats: true, database: true})
		if command != "costs reconcile" {
			_, err = cfg.billingConfig(nil)
		}
		if err != nil {
			t.Errorf("%s with defaults: %v", command, err)
		}
	}
}
