package httpapi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/httpapi"
)

// TestPresenceSurvivesANATSRestart: the live-instance bucket is in memory on the
// server; after a restart of NATS the instance recreates it and announces itself
// again, so the revocation proof (/v1/cluster/applied) works again, and /readyz
// says when presence is failing.
func TestPresenceSurvivesANATSRestart(t *testing.T) {
	h := start(t)
	h.expect(h.call(gatewayToken, "GET", "/v1/cluster", nil), 200, "")
	h.nats.Restart(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c := h.call(gatewayToken, "GET", "/v1/cluster", nil)
		ready := h.call("", "GET", "/readyz", nil)
		if c.Status == 200 && len(c.Body["instances"].([]any)) == 1 && ready.Status == 200 {
			if checks, _ := ready.Body["checks"].(map[string]any); checks["presence"] != "ok" {
				t.Fatalf("/readyz does not report presence: %s", ready.Raw)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("presence did not come back after a NATS restart: cluster %d %s, readyz %d %s", c.Status, c.Raw, ready.Status, ready.Raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := h.as("POST", "/v1/workspaces", map[string]any{"name": "after"})
	h.expect(r, 201, "")
	waitApplied1(h, r.Header.Get("X-Keyledger-Position"))
}

// waitApplied1 waits until the one live instance has applied a position.
func waitApplied1(h *harness, position string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := h.as("GET", "/v1/cluster/applied?position="+position, nil)
		if r.Status == 200 && r.Body["applied"] == true {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("position %s never applied: %d %s", position, r.Status, r.Raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsistencyAllInstances: a revoking write sent with X-Keyledger-Consistency:
// all-instances answers once every live instance has applied it, so the very next
// verification on any instance refuses; when an instance does not follow in time,
// the write still succeeds and says how many had applied it.
func TestConsistencyAllInstances(t *testing.T) {
	// The wait is shorter than the life of an instance's entry (five heartbeats of
	// 400 ms): the silenced instance is still live when the write gives up on it.
	h := start(t, httpapi.Config{ConsistencyWait: 300 * time.Millisecond})
	ws := h.workspace("prod")
	proxy, _, srv2 := h.proxied(httpapi.Config{})
	waitLive(h, 2)
	keys := "/v1/workspaces/" + ws + "/api-keys"
	for range 20 {
		k := h.as("POST", keys, map[string]any{"business_type": "maas"})
		h.expect(k, 201, "")
		waitApplied(h, k.Header.Get("X-Keyledger-Position"))
		h.decision(h.verify(srv2, k.str("secret"), ws, "maas", "10.0.0.1"), "VALID", true)
		r := h.as("DELETE", keys+"/"+k.str("id"), nil, "X-Keyledger-Consistency", "all-instances")
		h.expect(r, 204, "")
		if r.Header.Get("X-Keyledger-Consistency") != "all-instances" || r.Header.Get("X-Keyledger-Applied-Instances") != "2/2" {
			t.Fatalf("consistency headers: %v", r.Header)
		}
		h.decision(h.verify(srv2, k.str("secret"), ws, "maas", "10.0.0.1"), "DELETED", false)
	}
	// The second instance's announcements stop reaching NATS: the write waits its
	// bound, then succeeds and says only one instance is known to have applied it.
	k := h.as("POST", keys, map[string]any{"business_type": "maas"})
	proxy.Stall(func(subject string) bool { return strings.HasPrefix(subject, "$KV.KEYLEDGER_INSTANCES.") })
	r := h.as("DELETE", keys+"/"+k.str("id"), nil, "X-Keyledger-Consistency", "all-instances")
	h.expect(r, 204, "")
	if r.Header.Get("X-Keyledger-Consistency") != "partial" || r.Header.Get("X-Keyledger-Applied-Instances") != "1/2" {
		t.Fatalf("consistency headers on timeout: %v", r.Header)
	}
	h.expect(h.as("DELETE", keys+"/"+k.str("id"), nil, "X-Keyledger-Consistency", "eventually"), 400, "invalid_consistency")
	// The silenced instance says so: its presence check fails after three heartbeats.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := h.on(srv2, "", "GET", "/readyz", nil)
		if checks, _ := r.Body["checks"].(map[string]any); r.Status == 503 && checks["presence"] != "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness while presence fails: %d %s", r.Status, r.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLive waits until n instances are live.
func waitLive(h *harness, n int) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := h.call(gatewayToken, "GET", "/v1/cluster", nil)
		if c.Status == 200 && len(c.Body["instances"].([]any)) == n {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("not %d live instances: %s", n, c.Raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAnInstanceCutOffFromTheLogStopsDeciding: an instance that can no longer read
// the log stops answering verifications before its presence entry expires, so a
// revocation the remaining instances all applied is never decided around by it.
func TestAnInstanceCutOffFromTheLogStopsDeciding(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	proxy, _, srv2 := h.proxied(httpapi.Config{})
	waitLive(h, 2)
	keys := "/v1/workspaces/" + ws + "/api-keys"
	k := h.as("POST", keys, map[string]any{"business_type": "maas"})
	h.expect(k, 201, "")
	waitApplied(h, k.Header.Get("X-Keyledger-Position"))
	h.decision(h.verify(srv2, k.str("secret"), ws, "maas", "10.0.0.1"), "VALID", true)

	proxy.Stall(func(string) bool { return true })
	proxy.LoseReplies(func([]byte) bool { return true })
	waitLive(h, 1) // its entry expired: the cluster no longer waits for it
	r := h.as("DELETE", keys+"/"+k.str("id"), nil, "X-Keyledger-Consistency", "all-instances")
	h.expect(r, 204, "")
	if r.Header.Get("X-Keyledger-Applied-Instances") != "1/1" {
		t.Fatalf("consistency headers: %v", r.Header)
	}
	h.expect(h.verify(srv2, k.str("secret"), ws, "maas", "10.0.0.1"), 503, "not_ready")
}
