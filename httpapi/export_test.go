package httpapi_test

import (
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// TestKeyListExportsAsCSV: Accept: text/csv exports every key the filter selects
// (not one page), masked, with the selected fields, and the export is an audit
// event of its own.
func TestKeyListExportsAsCSV(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	keys := "/v1/workspaces/" + ws + "/api-keys"
	r := h.as("POST", keys, map[string]any{"business_type": "maas", "note": "=HYPERLINK(\"x\")", "allowlist": "10.0.0.1, 10.0.0.0/24"})
	h.expect(r, 201, "")
	secret := r.str("secret")
	b := h.as("POST", keys+"/batch", map[string]any{"count": 600, "naming": map[string]any{"prefix": "crawler"}})
	h.expect(b, 201, "")
	pos := b.Header.Get("X-Keyledger-Position")

	export := func(query string) [][]string {
		t.Helper()
		r := h.as("GET", keys+query, nil, "Accept", "text/csv", "X-Keyledger-Position", pos)
		h.expect(r, 200, "")
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") || !strings.Contains(r.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("headers: %v", r.Header)
		}
		if strings.Contains(string(r.Raw), secret) {
			t.Fatal("the export holds a secret")
		}
		rows, err := csv.NewReader(strings.NewReader(string(r.Raw))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	rows := export("?fields=name,note,allowlist,created_by")
	if strings.Join(rows[0], " ") != "id name note allowlist created_by.id created_by.name" || len(rows) != 602 {
		t.Fatalf("header %v, %d rows", rows[0], len(rows))
	}
	var maas []string
	for _, row := range rows[1:] {
		if row[1] == "" {
			maas = row
		}
	}
	if maas == nil || maas[2] != `'=HYPERLINK("x")` || maas[3] != "10.0.0.1,10.0.0.0/24" || maas[5] != "admin" {
		t.Fatalf("the MaaS key's row: %q", maas)
	}
	rows = export("?business_type=maas")
	if len(rows) != 2 || !strings.Contains(strings.Join(rows[0], ","), "masked_secret") {
		t.Fatalf("filtered, all fields: %v", rows)
	}
	if n := h.countIn(ws, domain.APIKeysExported{}); n != 2 {
		t.Fatalf("%d export events, want 2", n)
	}

	// Refused before anything is recorded.
	_, aliceAK := h.subAccount("alice")
	before := h.position()
	h.expect(h.call(aliceAK, "GET", keys, nil, "Accept", "text/csv"), 403, "forbidden")
	h.expect(h.as("GET", keys+"?fields=name,secret", nil, "Accept", "text/csv"), 400, "invalid_input")
	if h.position() != before {
		t.Fatal("a refused export wrote to the log")
	}
}

// TestKeysShowWhenTheyWereLastUsed: an allowed verification stamps the key's
// last_used_at, to the minute, written off the verification path; a refused one
// does not.
func TestKeysShowWhenTheyWereLastUsed(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	keys := "/v1/workspaces/" + ws + "/api-keys"
	used := h.as("POST", keys, map[string]any{"business_type": "maas", "allowlist": "10.0.0.1"})
	idle := h.as("POST", keys, map[string]any{"business_type": "maas", "allowlist": "10.0.0.1"})
	h.applied(idle)
	before := time.Now().UTC().Add(-2 * time.Second).Truncate(time.Minute) // the index reads the clock every second
	// The refused call comes first: the flush that shows the allowed one has seen it.
	h.decision(h.verify(nil, idle.str("secret"), ws, "maas", "10.0.0.2"), "IP_NOT_ALLOWED", false)
	h.decision(h.verify(nil, used.str("secret"), ws, "maas", "10.0.0.1"), "VALID", true)
	deadline := time.Now().Add(10 * time.Second)
	var got response
	for {
		got = h.as("GET", keys+"/"+used.str("id"), nil)
		if got.Body["last_used_at"] != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	at, err := time.Parse(time.RFC3339, fmt.Sprint(got.Body["last_used_at"]))
	if err != nil || at.Before(before) || at.After(time.Now()) || !at.Equal(at.Truncate(time.Minute)) {
		t.Fatalf("last_used_at: %s", got.Raw)
	}
	list := h.as("GET", keys+"?fields=last_used_at", nil)
	for _, k := range list.items() {
		if want := k["id"] == used.str("id"); (k["last_used_at"] != nil) != want {
			t.Fatalf("list: %s", list.Raw)
		}
	}
	p := h.as("PATCH", keys+"/"+used.str("id"), map[string]any{"note": "n"})
	if h.expect(p, 200, ""); p.Body["last_used_at"] != got.Body["last_used_at"] {
		t.Fatalf("an edit answers the same last use: %s", p.Raw)
	}
}
