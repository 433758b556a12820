package httpapi_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/httpapi"
	"github.com/keyledger/keyledger/projections"
	"github.com/keyledger/keyledger/projections/credindex"
	"github.com/keyledger/keyledger/service"
)

// TestAnInstanceStartsFromTheIndexSnapshot: a starting instance restores the
// credential index from the newest snapshot and applies only the log after it,
// deciding as a full replay would; a corrupt snapshot is refused, counted, and the
// index rebuilt from the log.
func TestAnInstanceStartsFromTheIndexSnapshot(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	ws := h.workspace("prod")
	keys := "/v1/workspaces/" + ws + "/api-keys"
	live := h.as("POST", keys, map[string]any{"business_type": "search", "qps_limit": 5, "allowlist": "10.0.0.1-10.0.0.9"})
	gone := h.as("POST", keys, map[string]any{"business_type": "maas"})
	h.expect(h.as("DELETE", keys+"/"+gone.str("id"), nil), 204, "")
	alice, aliceAK := h.subAccount("alice")
	r := h.as("POST", "/v1/roles", map[string]any{"name": "ops", "users": []string{alice}, "workspaces": []string{ws}})
	h.applied(r)
	pos, err := h.svc.IndexSnapshots().Save(ctx, h.svc.Index())
	if err != nil || pos == 0 {
		t.Fatalf("save: %d %v", pos, err)
	}
	after := h.as("POST", keys, map[string]any{"business_type": "maas"}) // in the log's tail only

	decisions := func(name string, snaps *credindex.SnapshotStore, refused uint64, verify func(cred, product, ip string) response) {
		t.Helper()
		if n := snaps.Refused.Load(); n != refused {
			t.Fatalf("%s: %d snapshots refused, want %d", name, n, refused)
		}
		h.decision(verify(live.str("secret"), "search", "10.0.0.5"), "VALID", true)
		h.decision(verify(live.str("secret"), "search", "10.0.0.10"), "IP_NOT_ALLOWED", false)
		h.decision(verify(gone.str("secret"), "maas", "10.0.0.5"), "DELETED", false)
		h.decision(verify(after.str("secret"), "maas", "10.0.0.5"), "VALID", true)
		h.decision(verify(aliceAK, "maas", "10.0.0.5"), "VALID", true)
	}
	svc2, srv2 := h.instance(httpapi.Config{})
	h.waitReady(svc2)
	if !strings.Contains(h.logs.String(), "credential index restored from its snapshot") {
		t.Fatal("the second instance did not start from the snapshot")
	}
	decisions("from the snapshot", svc2.IndexSnapshots(), 0, func(cred, product, ip string) response { return h.verify(srv2, cred, ws, product, ip) })

	obs, err := h.svc.Store().JetStream().ObjectStore(ctx, credindex.SnapshotBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx, "credential-index", []byte("not a snapshot")); err != nil {
		t.Fatal(err)
	}
	svc3, srv3 := h.instance(httpapi.Config{})
	h.waitReady(svc3)
	decisions("after a corrupt snapshot", svc3.IndexSnapshots(), 1, func(cred, product, ip string) response { return h.verify(srv3, cred, ws, product, ip) })

	// A sound snapshot of another log, which holds another event at its position, is
	// refused too: the log is asked.
	at, err := h.svc.IndexSnapshots().Save(ctx, h.svc.Index())
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := obs.GetBytes(ctx, "credential-index")
	if err != nil {
		t.Fatal(err)
	}
	other := start(t)
	for other.position() < at {
		other.workspace("w")
	}
	otherObs, err := other.svc.Store().JetStream().ObjectStore(ctx, credindex.SnapshotBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := otherObs.PutBytes(ctx, "credential-index", foreign); err != nil {
		t.Fatal(err)
	}
	svc4, _ := other.instance(httpapi.Config{})
	other.waitReady(svc4)
	if n := svc4.IndexSnapshots().Refused.Load(); n != 1 || !strings.Contains(other.logs.String(), "not of this log") {
		t.Fatalf("another log's snapshot: %d refused", n)
	}
}

// TestOneInstanceAtATimeSavesTheIndexSnapshot: instances share one snapshot object,
// and two saves at once would leave the loser's chunks in the bucket; a save holds
// a lock across instances, and no instance saves while another holds it.
func TestOneInstanceAtATimeSavesTheIndexSnapshot(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	keys := "/v1/workspaces/" + h.workspace("prod") + "/api-keys"
	pool, err := pgxpool.New(ctx, h.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	lock, held, err := projections.TryLock(ctx, pool, service.IndexSnapshotLock)
	if err != nil || !held {
		t.Fatalf("lock: %v %v", held, err)
	}
	t.Cleanup(func() { lock.Release(ctx) })
	svc2, _ := h.instance(httpapi.Config{}, func(c *service.Config) {
		c.IndexSnapshotEvery, c.IndexSnapshotEvents = 20*time.Millisecond, 1
	})
	h.waitReady(svc2)
	obs, err := h.svc.Store().JetStream().ObjectStore(ctx, credindex.SnapshotBucket)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 { // some 50 periods of the eager instance, and events to save
		h.as("POST", keys, map[string]any{"business_type": "maas"})
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := obs.GetInfo(ctx, "credential-index"); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Fatalf("a snapshot was saved while another instance held the lock: %v", err)
	}
	lock.Release(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := obs.GetInfo(ctx, "credential-index"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no snapshot saved once the lock was free")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
