package httpapi_test

import (
	"testing"
	"time"
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
