package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
)

// TestNoSecretAnywhere runs a scenario, then looks for every plaintext secret it saw
// in the log (and every other stream), in PostgreSQL, in the logs and in error
// responses.
func TestNoSecretAnywhere(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	secrets := []string{h.admin.Secret}
	var errorBodies []string

	ws := h.workspace("prod")
	base := "/v1/workspaces/" + ws + "/api-keys"
	r := h.as("POST", base, map[string]any{"business_type": "maas", "allowlist": "10.0.0.0/8"}, "Idempotency-Key", "k1")
	secrets = append(secrets, r.str("secret"))
	maas := r.str("id")
	r = h.as("POST", base+"/batch", map[string]any{"count": 20, "naming": map[string]any{"prefix": "s"}}, "Idempotency-Key", "k2")
	for _, it := range r.items() {
		secrets = append(secrets, it["secret"].(string))
	}
	h.as("POST", base, map[string]any{"business_type": "maas"}, "Idempotency-Key", "k1") // replay
	r = h.as("POST", base+"/"+maas+"/reveal", nil)
	if r.str("secret") != secrets[1] {
		t.Fatalf("reveal %s", r.Raw)
	}
	h.as("DELETE", base+"/"+maas, nil)
	alice, aliceSecret := h.subAccount("alice")
	secrets = append(secrets, aliceSecret)
	h.expect(h.as("DELETE", "/v1/accounts/"+alice+"/access-key", nil), 204, "")
	r = h.as("POST", "/v1/accounts/"+alice+"/access-key", nil, "Idempotency-Key", "ak")
	secrets = append(secrets, r.str("secret"))
	// Error paths fed with secrets.
	for _, er := range []response{
		h.call(secrets[1], "GET", "/v1/workspaces", nil),
		h.as("POST", base, map[string]any{"business_type": "maas", "allowlist": []string{secrets[2], secrets[2]}}),
		h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{secrets[3]}}),
		h.as("POST", base+"/"+maas+"/reveal", nil),
	} {
		if er.Status < 400 {
			t.Fatalf("expected an error, got %d %s", er.Status, er.Raw)
		}
		errorBodies = append(errorBodies, string(er.Raw))
	}
	if len(secrets) != 24 {
		t.Fatalf("collected %d secrets", len(secrets))
	}
	if err := h.svc.WaitCaughtUp(ctx, 10e9); err != nil {
		t.Fatal(err)
	}

	var haystacks []string
	// Every stream of the server: the log, usage, the vault bucket.
	js, _ := jetstream.New(h.nats.Connect(t))
	streams := js.ListStreams(ctx)
	for info := range streams.Info() {
		stream, _ := js.Stream(ctx, info.Config.Name)
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := stream.GetMsg(ctx, seq)
			if err != nil {
				continue // purged or deleted
			}
			haystacks = append(haystacks, m.Subject, string(m.Data))
			for k, vs := range m.Header {
				haystacks = append(haystacks, k+": "+strings.Join(vs, ","))
			}
		}
	}
	if len(haystacks) < 100 {
		t.Fatalf("scanned only %d strings of the streams", len(haystacks))
	}
	// Every table of the database.
	rows, err := h.svc.Pool().Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, table := range tables {
		var dump *string
		if err := h.svc.Pool().QueryRow(ctx, "SELECT string_agg(t::text, E'\\n') FROM "+pgx.Identifier{table}.Sanitize()+" t").Scan(&dump); err != nil {
			t.Fatal(err)
		}
		if dump != nil {
			haystacks = append(haystacks, *dump)
		}
	}
	haystacks = append(haystacks, h.logs.String())
	haystacks = append(haystacks, errorBodies...)

	for _, s := range secrets {
		if !strings.HasPrefix(s, "kl") || len(s) != 53 {
			t.Fatalf("not a secret: %q", s)
		}
		for _, hay := range haystacks {
			// The body part of the secret, so encodings of the prefix do not matter.
			if strings.Contains(hay, s[4:]) {
				t.Fatalf("secret %s… found in %.200q", s[:8], hay)
			}
		}
	}
}
