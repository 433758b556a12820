package httpapi_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/httpapi"
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
	if rows := export("?fields=name,id,name"); strings.Join(rows[0], " ") != "id name" {
		t.Fatalf("id asked for after another field: header %v", rows[0])
	}
	rows = export("?business_type=maas")
	if len(rows) != 2 || !strings.Contains(strings.Join(rows[0], ","), "masked_secret") {
		t.Fatalf("filtered, all fields: %v", rows)
	}
	if n := h.countIn(ws, domain.APIKeysExported{}); n != 3 {
		t.Fatalf("%d export events, want 3", n)
	}
	// A client that refuses CSV (quality 0) gets the JSON list, and no export.
	for _, accept := range []string{"text/csv;q=0, application/json", "application/json; q=1, text/csv ; q=0.0"} {
		r := h.as("GET", keys+"?limit=1", nil, "Accept", accept, "X-Keyledger-Position", pos)
		if h.expect(r, 200, ""); !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("Accept %q: %v", accept, r.Header)
		}
	}
	if n := h.countIn(ws, domain.APIKeysExported{}); n != 3 {
		t.Fatalf("%d export events after CSV was refused, want 3", n)
	}

	// Refused before anything is recorded.
	_, aliceAK := h.subAccount("alice")
	before := h.position()
	h.expect(h.call(aliceAK, "GET", keys, nil, "Accept", "text/csv"), 403, "forbidden")
	h.expect(h.as("GET", keys+"?fields=name,secret", nil, "Accept", "text/csv"), 400, "invalid_input")
	if h.position() != before {
		t.Fatal("a refused export wrote to the log")
	}
	// A HEAD exports nothing: it answers the headers, records no export, reads no row.
	head := h.as("HEAD", keys, nil, "Accept", "text/csv")
	h.expect(head, 200, "")
	if !strings.HasPrefix(head.Header.Get("Content-Type"), "text/csv") || h.position() != before {
		t.Fatalf("a HEAD of the export: %v, position %d (was %d)", head.Header, h.position(), before)
	}
	h.expect(h.as("HEAD", "/v1/workspaces/"+domain.NewWorkspaceID()+"/api-keys", nil, "Accept", "text/csv"), 404, "")
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

// TestAnExportThatFailsMidwayEndsBroken: once an export's status is sent, a read
// that fails cuts the answer short (the connection closed, no orderly end), so that
// a client never takes a partial export for a whole one: the CSV key export and the
// NDJSON audit export alike. The last page's first row is made unreadable in the
// views (a time PostgreSQL holds but Go cannot), so that the failure is certain and
// comes after the first page.
func TestAnExportThatFailsMidwayEndsBroken(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	keys := "/v1/workspaces/" + ws + "/api-keys"
	var pos string
	for _, prefix := range []string{"crawler", "indexer"} {
		b := h.as("POST", keys+"/batch", map[string]any{"count": 600, "naming": map[string]any{"prefix": prefix}})
		h.expect(b, 201, "")
		pos = b.Header.Get("X-Keyledger-Position")
	}
	// Both views hold the batches before they are marred.
	h.expect(h.as("GET", keys+"?limit=1", nil, "X-Keyledger-Position", pos), 200, "")
	h.expect(h.as("GET", "/v1/audit?limit=1", nil, "X-Keyledger-Position", pos), 200, "")
	ctx := context.Background()
	for _, sql := range []string{
		`UPDATE api_keys SET created_at = 'infinity' WHERE id = (SELECT min(id) FROM api_keys)`,
		`UPDATE audit_entries SET at = 'infinity' WHERE leaf_index = (SELECT min(leaf_index) FROM audit_entries)`,
	} {
		if _, err := h.svc.Pool().Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ path, accept string }{{keys, "text/csv"}, {"/v1/audit", "application/x-ndjson"}} {
		status, body, err := h.export(h.http.URL+c.path, c.accept)
		if status != 200 || bytes.Count(body, []byte("\n")) < 500 {
			t.Fatalf("%s: status %d, %d lines before the failure", c.accept, status, bytes.Count(body, []byte("\n")))
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%s: the export failed midway and ended as if whole (read error %v)", c.accept, err)
		}
	}
	// Answers cut short are counted like any other: the audit read above, and the
	// export.
	m := string(h.call("", "GET", "/metrics", nil).Raw)
	if !strings.Contains(m, `keyledger_http_request_duration_seconds_count{method="GET",route="/v1/audit",status="200"} 2`+"\n") {
		t.Fatal("the cut-short audit export is not in the request metrics")
	}
}

// TestAnExportOutlastsTheWriteTimeout: a streamed answer moves the server's write
// deadline on as it flows, so that an export slower than the write timeout is not
// cut: here its first read waits on a lock for twice the timeout.
func TestAnExportOutlastsTheWriteTimeout(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	keys := "/v1/workspaces/" + ws + "/api-keys"
	r := h.as("POST", keys, map[string]any{"business_type": "maas"})
	h.expect(r, 201, "")
	// Both views hold the key (and its creation) before the exports.
	h.expect(h.as("GET", keys+"?limit=1", nil, "X-Keyledger-Position", r.Header.Get("X-Keyledger-Position")), 200, "")
	h.expect(h.as("GET", "/v1/audit?limit=1", nil, "X-Keyledger-Position", r.Header.Get("X-Keyledger-Position")), 200, "")
	const timeout = 300 * time.Millisecond
	srv := httpapi.NewHTTPServer(h.svc.Handler(), httpapi.Timeouts{Write: timeout})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	ctx := context.Background()
	for _, c := range []struct{ path, accept, table string }{{keys, "text/csv", "api_keys"}, {"/v1/audit", "application/x-ndjson", "audit_entries"}} {
		lock, err := h.svc.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lock.Exec(ctx, "LOCK TABLE "+c.table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		go func() {
			time.Sleep(2 * timeout)
			_ = lock.Rollback(ctx)
		}()
		status, body, err := h.export("http://"+ln.Addr().String()+c.path, c.accept)
		if status != 200 || err != nil || bytes.Count(body, []byte("\n")) < 2 {
			t.Fatalf("%s: status %d, read error %v, %q", c.accept, status, err, body)
		}
	}
}

// export GETs a streamed answer as the first organization's primary account: its
// status, what arrived, and how reading it ended (nil: an orderly end).
func (h *harness) export(url, accept string) (int, []byte, error) {
	h.t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+h.admin.Secret)
	req.Header.Set("Accept", accept)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, body, err
}
