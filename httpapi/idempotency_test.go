package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// countIn counts a workspace's events in the log of the type of sample.
func (h *harness) countIn(ws string, sample domain.Event) int {
	h.t.Helper()
	recs, _, err := h.svc.Store().Load(context.Background(), domain.AggregateWorkspace, ws, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Event.EventType() == sample.EventType() {
			n++
		}
	}
	return n
}

// reveals counts the reveal events of a workspace.
func (h *harness) reveals(ws string) int { return h.countIn(ws, domain.APIKeyRevealed{}) }

// TestIdempotencyReplayNeedsTheSameAuthorizedAccount is issue 7's critical finding:
// a replay handed plaintext secrets to any account of the organization.
func TestIdempotencyReplayNeedsTheSameAuthorizedAccount(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	batchPath := "/v1/workspaces/" + ws + "/api-keys/batch"
	batch := map[string]any{"count": 2, "naming": map[string]any{"prefix": "ib"}}
	first := h.as("POST", batchPath, batch, "Idempotency-Key", "idem-batch-1")
	h.expect(first, 201, "")
	if !strings.Contains(string(first.Raw), "kls_") {
		t.Fatalf("no secrets in the first answer: %s", first.Raw)
	}

	// A sub-account without permission or membership sends the same request.
	_, outsider := h.subAccount("mallory")
	before := h.position()
	r := h.call(outsider, "POST", batchPath, batch, "Idempotency-Key", "idem-batch-1")
	h.expect(r, 403, "")
	if strings.Contains(string(r.Raw), "kls_") {
		t.Fatalf("secret handed to another account: %s", r.Raw)
	}
	// Another body with the same key value tells it nothing about others' keys.
	r = h.call(outsider, "POST", batchPath, map[string]any{"count": 1, "naming": map[string]any{"prefix": "x"}}, "Idempotency-Key", "idem-batch-1")
	h.expect(r, 403, "")
	if h.position() != before {
		t.Fatal("refused requests wrote to the log")
	}

	// Same for a single key creation.
	single := "/v1/workspaces/" + ws + "/api-keys"
	one := h.as("POST", single, map[string]any{"business_type": "maas"}, "Idempotency-Key", "idem-one")
	h.expect(one, 201, "")
	r = h.call(outsider, "POST", single, map[string]any{"business_type": "maas"}, "Idempotency-Key", "idem-one")
	h.expect(r, 403, "")
	if strings.Contains(string(r.Raw), "klm_") {
		t.Fatalf("secret handed to another account: %s", r.Raw)
	}

	// Once authorized, the outsider's own key value is its own: a fresh request.
	bob, bobSecret := h.subAccount("bob")
	h.role("keys", []string{"api_key:create", "api_key:read"}, bob)
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{bob}}), 200, "")
	mine := h.call(bobSecret, "POST", single, map[string]any{"business_type": "maas"}, "Idempotency-Key", "idem-one")
	h.expect(mine, 201, "")
	if mine.str("secret") == "" || mine.str("secret") == one.str("secret") {
		t.Fatalf("bob's request was not his own: %s", mine.Raw)
	}
	// The 422 is only for the account that used the key.
	h.expect(h.call(bobSecret, "POST", single, map[string]any{"business_type": "search"}, "Idempotency-Key", "idem-one"), 422, "idempotency_key_reused")
	h.expect(h.as("POST", single, map[string]any{"business_type": "search"}, "Idempotency-Key", "idem-one"), 422, "idempotency_key_reused")

	// A replay by the same account returns the same answer and is recorded as a reveal.
	revealed := h.reveals(ws)
	again := h.call(bobSecret, "POST", single, map[string]any{"business_type": "maas"}, "Idempotency-Key", "idem-one")
	h.expect(again, 201, "")
	if again.str("id") != mine.str("id") || again.str("secret") != mine.str("secret") || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay differs:\n%s\n%s", mine.Raw, again.Raw)
	}
	// It answers the key as it is now: revealed by this very answer, at its position.
	if again.Body["last_revealed_at"] == nil || again.Header.Get("X-Keyledger-Position") != fmt.Sprint(h.position()) {
		t.Fatalf("a replay's key and position: %s %v (log at %d)", again.Raw, again.Header, h.position())
	}
	if got := h.reveals(ws); got != revealed+1 {
		t.Fatalf("reveal events after a replay: %d, want %d", got, revealed+1)
	}

	// After losing the permission, a replay is what a fresh request gets: 403.
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{}}), 200, "")
	r = h.call(bobSecret, "POST", single, map[string]any{"business_type": "maas"}, "Idempotency-Key", "idem-one")
	h.expect(r, 403, "not_a_member")
	if strings.Contains(string(r.Raw), "klm_") || h.reveals(ws) != revealed+1 {
		t.Fatalf("a refused replay revealed a secret: %s", r.Raw)
	}

	// A workspace's creation replayed by an account taken off it since shows nothing
	// of what the workspace became: 403, as a GET of it is.
	h.role("creators", []string{"workspace:create"}, bob)
	created := h.call(bobSecret, "POST", "/v1/workspaces", map[string]any{"name": "mine"}, "Idempotency-Key", "idem-ws")
	h.expect(created, 201, "")
	wsID := created.str("id")
	h.expect(h.as("PUT", "/v1/workspaces/"+wsID+"/members", map[string]any{"account_ids": []string{}}), 200, "")
	h.expect(h.as("PATCH", "/v1/workspaces/"+wsID, map[string]any{"name": "acquisition"}), 200, "")
	r = h.call(bobSecret, "POST", "/v1/workspaces", map[string]any{"name": "mine"}, "Idempotency-Key", "idem-ws")
	h.expect(r, 403, "not_a_member")
	if strings.Contains(string(r.Raw), "acquisition") {
		t.Fatalf("a refused replay showed the workspace: %s", r.Raw)
	}
}

// TestAccessKeyCreationNeverReplaysASecret: an access key secret is shown once; a
// retry with the same Idempotency-Key never shows it again.
func TestAccessKeyCreationNeverReplaysASecret(t *testing.T) {
	h := start(t)
	r := h.as("POST", "/v1/accounts", map[string]any{"name": "carol"})
	h.expect(r, 201, "")
	id := r.str("id")
	first := h.as("POST", "/v1/accounts/"+id+"/access-key", nil, "Idempotency-Key", "ak-1")
	h.expect(first, 201, "")
	again := h.as("POST", "/v1/accounts/"+id+"/access-key", nil, "Idempotency-Key", "ak-1")
	if again.Status < 400 || strings.Contains(string(again.Raw), "kla_") {
		t.Fatalf("access key retry: %d %s", again.Status, again.Raw)
	}
}

// TestAStalledIdempotencyStoreIsA503: the store of Idempotency-Keys (PostgreSQL) is
// bounded as the log is: a request whose claim cannot be taken (the table locked)
// is a 503 within the write timeout, not an answer that never comes.
func TestAStalledIdempotencyStoreIsA503(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	tx, err := h.svc.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE idempotency_keys IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	done := make(chan response, 1)
	go func() {
		done <- h.as("POST", "/v1/workspaces", map[string]any{"name": "w"}, "Idempotency-Key", "stalled")
	}()
	select {
	case r := <-done:
		h.expect(r, 503, "")
		if r.Header.Get("Retry-After") == "" {
			t.Fatalf("no Retry-After: %v", r.Header)
		}
	case <-time.After(10 * time.Second):
		_ = tx.Rollback(ctx)
		t.Fatalf("no answer after %v", time.Since(started))
	}
	_ = tx.Rollback(ctx)
}

// TestAReplayedCreationRevealsOnlyToAReader: a replay hands the plaintexts out
// again, which is a reveal: an account that may create keys but not read them
// gets 403, and nothing is revealed.
func TestAReplayedCreationRevealsOnlyToAReader(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	carol, carolSecret := h.subAccount("carol")
	h.role("creators", []string{"api_key:create"}, carol)
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{carol}}), 200, "")
	path := "/v1/workspaces/" + ws + "/api-keys"
	first := h.call(carolSecret, "POST", path, map[string]any{"business_type": "maas"}, "Idempotency-Key", "create-only")
	h.expect(first, 201, "")
	revealed := h.reveals(ws)
	r := h.call(carolSecret, "POST", path, map[string]any{"business_type": "maas"}, "Idempotency-Key", "create-only")
	h.expect(r, 403, "forbidden")
	if strings.Contains(string(r.Raw), first.str("secret")) || h.reveals(ws) != revealed {
		t.Fatalf("a replay revealed to an account without api_key:read: %s", r.Raw)
	}
}
