package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/httpapi"
	"github.com/keyledger/keyledger/projections/credindex"
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
}
