package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeVerifier answers /v1/verify with the decision given, for the token given.
func fakeVerifier(t *testing.T, token string, allowed bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/verify" || r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(401)
			return
		}
		code := "NOT_FOUND"
		if allowed {
			code = "VALID"
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"allowed": allowed, "code": code})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Without a token, verify uses the one `keyledger dev` keeps in its data dir.
func TestVerifyReadsTheDevGatewayToken(t *testing.T) {
	dir := t.TempDir()
	secrets, err := loadDevSecrets(dir) // as `keyledger dev` writes them
	if err != nil {
		t.Fatal(err)
	}
	srv := fakeVerifier(t, secrets.GatewayToken, true)
	cfg := Config{DataDir: dir, Verify: VerifyConfig{Server: srv.URL, Credential: "klm_x", Workspace: "ws_x", Product: "maas", IP: "10.0.0.1"}}
	var out strings.Builder
	if err := runVerify(context.Background(), cfg, &out); err != nil {
		t.Fatalf("verify with the dev token: %v", err)
	}
	if !strings.Contains(out.String(), `"code": "VALID"`) {
		t.Fatalf("the decision is not printed: %s", out.String())
	}

	// A refusal is errRefused (exit 3), not a failure to ask.
	cfg.GatewayToken = "another-token-of-16+"
	cfg.Verify.Server = fakeVerifier(t, cfg.GatewayToken, false).URL
	if err := runVerify(context.Background(), cfg, io.Discard); !errors.Is(err, errRefused) {
		t.Fatalf("a refused call: %v", err)
	}
}

func TestVerifyWithoutAnyToken(t *testing.T) {
	cfg := Config{DataDir: filepath.Join(t.TempDir(), "missing"), Verify: VerifyConfig{Server: ":8080", Credential: "klm_x", Workspace: "ws_x", Product: "maas"}}
	err := runVerify(context.Background(), cfg, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "KEYLEDGER_GATEWAY_TOKEN") || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("no token anywhere: %v", err)
	}
	if _, statErr := os.Stat(cfg.DataDir); !os.IsNotExist(statErr) {
		t.Fatal("verify created the data dir")
	}
	err = runVerify(context.Background(), Config{}, io.Discard)
	for _, w := range []string{"--credential", "--workspace", "--product", "--server"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("the error does not name %s: %v", w, err)
		}
	}
}
