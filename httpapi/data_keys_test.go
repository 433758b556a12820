package httpapi_test

import (
	"context"
	"crypto/rand"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/httpapi"
	"github.com/keyledger/keyledger/projections"
)

// TestADataKeyWriteThatFailsIsWrittenAgain: a key's data key is written while the
// key is appended; when that write fails (here it never reaches the server) and the
// append is in, the data key is written again before the creation answers, and the
// secret it answered reveals.
func TestADataKeyWriteThatFailsIsWrittenAgain(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	proxy, _, srv := h.proxied(httpapi.Config{})
	var writes atomic.Int32
	proxy.Stall(func(subject string) bool {
		return strings.HasPrefix(subject, "$KV."+eventstore.VaultBucket+".") && writes.Add(1) == 1
	})
	r := h.on(srv, h.admin.Secret, "POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"})
	h.expect(r, 201, "")
	if writes.Load() != 2 {
		t.Fatalf("%d data key writes, want the swallowed one and one again", writes.Load())
	}
	reveal := h.on(srv, h.admin.Secret, "POST", "/v1/workspaces/"+ws+"/api-keys/"+r.str("id")+"/reveal", nil)
	h.expect(reveal, 200, "")
	if reveal.str("secret") != r.str("secret") {
		t.Fatal("the revealed secret is not the one the creation answered")
	}
}

// TestAKeyLeftWithoutItsDataKeyIsDeletedByTheNextInstance: an instance that dies
// after a key's append and before its data key's write leaves a key no one can
// reveal (and no one was given: the creation never answered). The next instance to
// start finds it once the creation's grace is over and deletes it, as its creator's,
// and leaves the keys whose data keys are there alone. A check with no checkpoint
// (its first run) starts at the log's end and judges nothing before it; a vault
// that lost its canary stops the check.
func TestAKeyLeftWithoutItsDataKeyIsDeletedByTheNextInstance(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	ws := h.workspace("prod")
	healthy := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"})
	h.applied(healthy)
	store, err := eventstore.Open(ctx, h.nats.Connect(t), eventstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h.svc.Close()
	// The check's checkpoint as a first run on an empty log leaves it (a new
	// deployment's first instance starts before the first event): at 0, which is
	// a place in the log, not "no checkpoint".
	pool, err := pgxpool.New(ctx, h.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := projections.SaveCheckpoint(ctx, pool, "data-keys", 0); err != nil {
		t.Fatal(err)
	}
	// What a dead instance leaves: the key's event, sealed under a data key the vault never got.
	lostKey := func() (domain.Credential, uint64) {
		cred, _ := domain.GenerateCredential(rand.Reader, domain.KindMaaSKey)
		last, err := store.LastSequence(ctx, domain.AggregateWorkspace, ws)
		if err != nil {
			t.Fatal(err)
		}
		at, err := store.Append(ctx, domain.AggregateWorkspace, ws, last, []domain.Event{domain.APIKeyCreated{KeyID: domain.NewAPIKeyID(),
			BusinessType: domain.BusinessMaaS, Allowlist: []string{}, SecretHash: domain.HashCredential(pepper, cred), Masked: cred.Masked(),
			Sealed: []byte("sealed under a data key never stored"), At: time.Now().UTC()}},
			domain.Metadata{OrganizationID: h.admin.OrganizationID, WorkspaceID: ws, ActorID: h.admin.AccountID})
		if err != nil {
			t.Fatal(err)
		}
		return cred, at
	}
	repaired := func(srv *httptest.Server, cred domain.Credential, what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for h.verify(srv, cred.String(), ws, "maas", "10.0.0.1").str("code") != "DELETED" {
			if time.Now().After(deadline) {
				t.Fatalf("%s was not deleted", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	cred, lostAt := lostKey()
	svc2, srv2 := h.instance(httpapi.Config{})
	h.waitReady(svc2)
	repaired(srv2, cred, "the key without its data key")
	recs, _, err := store.Load(ctx, domain.AggregateWorkspace, ws, lostAt)
	if err != nil || len(recs) != 1 || recs[0].Type != domain.TypeAPIKeyDeleted || recs[0].Metadata.ActorID != h.admin.AccountID {
		t.Fatalf("the repair's events: %+v %v", recs, err)
	}
	h.decision(h.verify(srv2, healthy.str("secret"), ws, "maas", "10.0.0.1"), "VALID", true)
	h.expect(h.on(srv2, h.admin.Secret, "POST", "/v1/workspaces/"+ws+"/api-keys/"+healthy.str("id")+"/reveal", nil), 200, "")

	// A first run (no checkpoint: a new deployment, or one a migration reset) starts
	// at the log's end: what is before it was created by instances that stored the
	// data key first, or was checked already.
	svc2.Close()
	if _, err := pool.Exec(ctx, `DELETE FROM projection_checkpoints WHERE name = 'data-keys'`); err != nil {
		t.Fatal(err)
	}
	before, at := lostKey()
	svc3, srv3 := h.instance(httpapi.Config{})
	h.waitReady(svc3)
	for seeded := uint64(0); seeded < at; time.Sleep(20 * time.Millisecond) {
		if seeded, err = projections.Checkpoint(ctx, pool, "data-keys"); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := lostKey() // judged: once it is repaired, the check has gone past the grace
	repaired(srv3, after, "the key left after the first run's start")
	h.decision(h.verify(srv3, before.String(), ws, "maas", "10.0.0.1"), "VALID", true)

	// A vault that has lost the canary the check planted beside the data keys (its
	// bucket emptied or recreated) has lost them all: the check stops, and deletes
	// nothing.
	kv, err := store.JetStream().KeyValue(ctx, eventstore.VaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "canary"); err != nil {
		t.Fatal(err)
	}
	unjudged, _ := lostKey()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(h.logs.String(), "the data key check stopped") {
		if time.Now().After(deadline) {
			t.Fatal("the check did not stop on a vault without its canary")
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.decision(h.verify(srv3, unjudged.String(), ws, "maas", "10.0.0.1"), "VALID", true)
}

// TestARefusedCreationLeavesNoDataKey: a creation's data keys are written while it
// is decided; when the decision refuses (a batch naming a key that exists), they are
// destroyed before the refusal is answered: bad input writes nothing.
func TestARefusedCreationLeavesNoDataKey(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	ws := h.workspace("prod")
	keys := "/v1/workspaces/" + ws + "/api-keys"
	h.expect(h.as("POST", keys, map[string]any{"business_type": "search", "name": "dup"}), 201, "")
	kv, err := h.svc.Store().JetStream().KeyValue(ctx, eventstore.VaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		t.Helper()
		lister, err := kv.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for k := range lister.Keys() {
			if domain.IsAPIKeyID(k) { // not the check's canary, planted when it first runs
				n++
			}
		}
		return n
	}
	before := count()
	r := h.as("POST", keys+"/batch", map[string]any{"count": 3, "naming": map[string]any{"names": []string{"fresh-1", "fresh-2", "dup"}}})
	h.expect(r, 409, "name_taken")
	if after := count(); after != before {
		t.Fatalf("a refused creation left %d data keys", after-before)
	}
}
