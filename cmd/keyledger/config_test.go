package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cleanEnv removes every KEYLEDGER_* variable for the test (the dev secrets are often
// exported in a developer's shell) and restores them at its end.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "KEYLEDGER_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

// setEnv sets the variables for the test.
func setEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

// parseCommand is the Config of `keyledger <command> args...` in the current environment.
func parseCommand(t *testing.T, command string, args ...string) Config {
	t.Helper()
	sc, ok := lookup(command)
	if !ok {
		t.Fatalf("no subcommand %q", command)
	}
	var cfg Config
	if err := newFlagSet(sc, &cfg, flag.ContinueOnError, io.Discard).Parse(args); err != nil {
		t.Fatalf("%s %v: %v", command, args, err)
	}
	return cfg
}

// writeFile writes content to a new file of the test and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	testMasterKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	testPepper    = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	testToken     = "klg_0123456789abcdef"
	testDBURL     = "postgres://keyledger:s3cr3t-pw@db.internal:5432/keyledger?sslmode=require"
)

// serveEnv is a complete, valid environment for serve.
func serveEnv() map[string]string {
	return map[string]string{
		"KEYLEDGER_NATS_URL":      "nats://n1:4222,nats://n2:4222,nats://n3:4222",
		"KEYLEDGER_DATABASE_URL":  testDBURL,
		"KEYLEDGER_MASTER_KEY":    testMasterKey,
		"KEYLEDGER_PEPPER":        testPepper,
		"KEYLEDGER_GATEWAY_TOKEN": testToken,
		"KEYLEDGER_REPLICAS":      "3",
	}
}

var serveNeed = need{nats: true, database: true, secrets: true}

// fileSecrets are the secrets that can come from a file, each with the field it sets.
var fileSecrets = []struct {
	name, fileName, value string
	field                 func(Config) string
}{
	{"KEYLEDGER_MASTER_KEY", "KEYLEDGER_MASTER_KEY_FILE", testMasterKey, func(c Config) string { return c.MasterKey }},
	{"KEYLEDGER_PEPPER", "KEYLEDGER_PEPPER_FILE", testPepper, func(c Config) string { return c.Pepper }},
	{"KEYLEDGER_GATEWAY_TOKEN", "KEYLEDGER_GATEWAY_TOKEN_FILE", testToken, func(c Config) string { return c.GatewayToken }},
	{"KEYLEDGER_DATABASE_URL", "KEYLEDGER_DATABASE_URL_FILE", testDBURL, func(c Config) string { return c.DatabaseURL }},
}

// Each secret can come from the file its _FILE variable names, as Docker and
// Kubernetes secrets are mounted: the trailing newline is not part of it.
func TestSecretsFromFiles(t *testing.T) {
	for _, s := range fileSecrets {
		for _, ending := range []string{"", "\n", "\r\n", "\n\n"} {
			t.Run(s.fileName+"/"+strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(ending), func(t *testing.T) {
				cleanEnv(t)
				env := serveEnv()
				delete(env, s.name)
				env[s.fileName] = writeFile(t, "secret", s.value+ending)
				setEnv(t, env)
				cfg := parseCommand(t, "serve")
				if got := s.field(cfg); got != s.value {
					t.Fatalf("%s: got %q, want %q", s.fileName, got, s.value)
				}
				if err := cfg.Validate(serveNeed); err != nil {
					t.Fatalf("serve with %s: %v", s.fileName, err)
				}
			})
		}
	}
}

// A secret given both ways is ambiguous: an error naming both variables, never a
// silent choice of one.
func TestSecretVariableAndFileBothSet(t *testing.T) {
	for _, s := range fileSecrets {
		t.Run(s.fileName, func(t *testing.T) {
			cleanEnv(t)
			env := serveEnv()
			env[s.fileName] = writeFile(t, "secret", s.value+"\n")
			setEnv(t, env)
			c := parseCommand(t, "serve")
			err := c.Validate(serveNeed)
			if err == nil {
				t.Fatalf("both %s and %s set: no error", s.name, s.fileName)
			}
			for _, want := range []string{s.name, s.fileName} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not name %s: %v", want, err)
				}
			}
		})
	}
}

// A file that cannot be read is an error naming the variable and the file.
func TestSecretFileUnreadable(t *testing.T) {
	for _, s := range fileSecrets {
		t.Run(s.fileName, func(t *testing.T) {
			cleanEnv(t)
			env := serveEnv()
			delete(env, s.name)
			missing := filepath.Join(t.TempDir(), "no-such-secret")
			env[s.fileName] = missing
			setEnv(t, env)
			c := parseCommand(t, "serve")
			err := c.Validate(serveNeed)
			if err == nil {
				t.Fatalf("%s=%s (missing): no error", s.fileName, missing)
			}
			for _, want := range []string{s.fileName, missing} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not name %s: %v", want, err)
				}
			}
			// One problem, one message: not also "is required".
			if strings.Contains(err.Error(), "is required") {
				t.Errorf("an unreadable file is reported as a missing secret too: %v", err)
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		cleanEnv(t)
		env := serveEnv()
		delete(env, "KEYLEDGER_PEPPER")
		empty := writeFile(t, "pepper", "\n")
		env["KEYLEDGER_PEPPER_FILE"] = empty
		setEnv(t, env)
		c := parseCommand(t, "serve")
		err := c.Validate(serveNeed)
		if err == nil || !strings.Contains(err.Error(), "KEYLEDGER_PEPPER_FILE") || !strings.Contains(err.Error(), empty) {
			t.Fatalf("an empty secret file: %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		cleanEnv(t)
		env := serveEnv()
		delete(env, "KEYLEDGER_MASTER_KEY")
		dir := t.TempDir()
		env["KEYLEDGER_MASTER_KEY_FILE"] = dir
		setEnv(t, env)
		c := parseCommand(t, "serve")
		err := c.Validate(serveNeed)
		if err == nil || !strings.Contains(err.Error(), "KEYLEDGER_MASTER_KEY_FILE") || !strings.Contains(err.Error(), dir) {
			t.Fatalf("a directory as the secret file: %v", err)
		}
	})
}

// The other subcommands that read a secret read its file too: migrate the database
// URL, bootstrap the pepper, dev all of them.
func TestSecretFilesInOtherCommands(t *testing.T) {
	cleanEnv(t)
	setEnv(t, map[string]string{
		"KEYLEDGER_DATABASE_URL_FILE": writeFile(t, "db", testDBURL+"\n"),
		"KEYLEDGER_PEPPER_FILE":       writeFile(t, "pepper", testPepper+"\n"),
		"KEYLEDGER_NATS_URL":          "nats://127.0.0.1:4222",
	})
	if c := parseCommand(t, "migrate"); c.DatabaseURL != testDBURL || c.Validate(need{database: true}) != nil {
		t.Errorf("migrate: %q %v", c.DatabaseURL, c.Validate(need{database: true}))
	}
	if c := parseCommand(t, "bootstrap"); c.Pepper != testPepper || c.Validate(need{nats: true, pepper: true}) != nil {
		t.Errorf("bootstrap: %q %v", c.Pepper, c.Validate(need{nats: true, pepper: true}))
	}
	if c := parseCommand(t, "dev"); c.DatabaseURL != testDBURL || c.Pepper != testPepper {
		t.Errorf("dev: %q %q", c.DatabaseURL, c.Pepper)
	}
}

// A flag on the command line still wins over the environment, file or not.
func TestFlagWinsOverSecretFile(t *testing.T) {
	cleanEnv(t)
	env := serveEnv()
	delete(env, "KEYLEDGER_GATEWAY_TOKEN")
	env["KEYLEDGER_GATEWAY_TOKEN_FILE"] = writeFile(t, "token", testToken+"\n")
	setEnv(t, env)
	c := parseCommand(t, "serve", "--gateway-token", "klg_from_the_command_line")
	if c.GatewayToken != "klg_from_the_command_line" {
		t.Fatalf("--gateway-token: got %q", c.GatewayToken)
	}
}

// -h prints no secret read from a file, the database URL (whose password is why it
// has a file) included.
func TestHelpPrintsNoSecretFromFile(t *testing.T) {
	cleanEnv(t)
	setEnv(t, map[string]string{
		"KEYLEDGER_DATABASE_URL_FILE":  writeFile(t, "db", testDBURL+"\n"),
		"KEYLEDGER_MASTER_KEY_FILE":    writeFile(t, "mk", testMasterKey+"\n"),
		"KEYLEDGER_PEPPER_FILE":        writeFile(t, "pepper", testPepper+"\n"),
		"KEYLEDGER_GATEWAY_TOKEN_FILE": writeFile(t, "token", testToken+"\n"),
	})
	for _, command := range []string{"dev", "serve", "migrate", "bootstrap", "verify"} {
		help := helpOf(t, command)
		for _, secret := range []string{"s3cr3t-pw", testMasterKey, testPepper, testToken} {
			if strings.Contains(help, secret) {
				t.Errorf("%s -h prints a secret (%s):\n%s", command, secret, help)
			}
		}
	}
}

// A malformed number or duration is an error naming the variable and the value, not
// a silent fall back to the default.
func TestMalformedNumbersAndDurations(t *testing.T) {
	for _, tc := range []struct {
		command, name, value string
		need                 need
	}{
		{"serve", "KEYLEDGER_REPLICAS", "three", serveNeed},
		{"serve", "KEYLEDGER_REPLICAS", "3.0", serveNeed},
		{"bootstrap", "KEYLEDGER_REPLICAS", "three", need{nats: true, pepper: true}},
		{"dev", "KEYLEDGER_DEV_NATS_PORT", "fourteen", need{database: true, secrets: true, dev: true}},
		{"serve", "KEYLEDGER_NATS_READ_TIMEOUT", "soon", serveNeed},
		{"serve", "KEYLEDGER_NATS_WRITE_TIMEOUT", "5", serveNeed}, // no unit
		{"dev", "KEYLEDGER_NATS_WRITE_TIMEOUT", "5 seconds", need{database: true, secrets: true, dev: true}},
	} {
		t.Run(tc.command+"/"+tc.name+"="+tc.value, func(t *testing.T) {
			cleanEnv(t)
			env := serveEnv()
			env[tc.name] = tc.value
			setEnv(t, env)
			c := parseCommand(t, tc.command)
			c.DataDir = t.TempDir()
			err := c.Validate(tc.need)
			if err == nil {
				t.Fatalf("%s=%q: no error", tc.name, tc.value)
			}
			for _, want := range []string{tc.name, tc.value} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not name %q: %v", want, err)
				}
			}
		})
	}
}

// Well-formed values are read, and unset (or empty) ones keep their defaults.
func TestNumbersAndDurationsFromEnv(t *testing.T) {
	cleanEnv(t)
	env := serveEnv()
	env["KEYLEDGER_REPLICAS"] = "5"
	env["KEYLEDGER_NATS_READ_TIMEOUT"] = "750ms"
	env["KEYLEDGER_NATS_WRITE_TIMEOUT"] = "1m"
	env["KEYLEDGER_USAGE_MAX_AGE"] = "72h"
	setEnv(t, env)
	c := parseCommand(t, "serve")
	if c.Replicas != 5 || c.ReadTimeout != 750*time.Millisecond || c.WriteTimeout != time.Minute || c.UsageMaxAge != 72*time.Hour {
		t.Fatalf("from the environment: replicas %d, read %v, write %v", c.Replicas, c.ReadTimeout, c.WriteTimeout)
	}
	if err := c.Validate(serveNeed); err != nil {
		t.Fatal(err)
	}

	cleanEnv(t)
	env = serveEnv()
	env["KEYLEDGER_REPLICAS"] = ""
	env["KEYLEDGER_NATS_READ_TIMEOUT"] = ""
	setEnv(t, env)
	c = parseCommand(t, "serve")
	if c.Replicas != 1 || c.ReadTimeout != 2*time.Second || c.WriteTimeout != 5*time.Second || c.UsageMaxAge != 35*24*time.Hour {
		t.Fatalf("defaults: replicas %d, read %v, write %v", c.Replicas, c.ReadTimeout, c.WriteTimeout)
	}
	if err := c.Validate(serveNeed); err != nil {
		t.Fatal(err)
	}

	cleanEnv(t)
	t.Setenv("KEYLEDGER_DEV_NATS_PORT", "15222")
	if c := parseCommand(t, "dev"); c.NATSPort != 15222 {
		t.Fatalf("KEYLEDGER_DEV_NATS_PORT: %d", c.NATSPort)
	}
}

// The problems of the environment come with the others, all in one error.
func TestEnvironmentProblemsJoinTheOthers(t *testing.T) {
	cleanEnv(t)
	setEnv(t, map[string]string{
		"KEYLEDGER_REPLICAS":        "three",
		"KEYLEDGER_MASTER_KEY":      testMasterKey,
		"KEYLEDGER_MASTER_KEY_FILE": writeFile(t, "mk", testMasterKey),
	})
	c := parseCommand(t, "serve")
	err := c.Validate(serveNeed)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"KEYLEDGER_REPLICAS", "three", "KEYLEDGER_MASTER_KEY_FILE", "KEYLEDGER_NATS_URL", "KEYLEDGER_PEPPER"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s: %v", want, err)
		}
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) < 4 {
		t.Errorf("want the problems joined, one each: %v", err)
	}
}
