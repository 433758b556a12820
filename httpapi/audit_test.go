package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/httpapi"
	"github.com/keyledger/keyledger/service"
)

// stream reads an NDJSON answer.
func (h *harness) stream(secret, path string, headers ...string) (int, []json.RawMessage) {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.http.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Accept", "application/x-ndjson")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == 200 && res.Header.Get("Content-Type") != "application/x-ndjson" {
		h.t.Fatalf("content type %q", res.Header.Get("Content-Type"))
	}
	var lines []json.RawMessage
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, json.RawMessage(append([]byte(nil), sc.Bytes()...)))
	}
	return res.StatusCode, lines
}

func b64(t *testing.T, v any) []byte {
	t.Helper()
	s, _ := v.(string)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("not base64: %v", v)
	}
	return b
}

func TestAuditEntriesSayWhoDidWhatToWhich(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	base := "/v1/workspaces/" + ws + "/api-keys"
	r := h.as("POST", base, map[string]any{"business_type": "search", "name": "crawler-3", "allowlist": []string{"10.0.0.1"}, "qps_limit": 5})
	h.expect(r, 201, "")
	key := r.str("id")
	h.expect(h.as("PATCH", base+"/"+key, map[string]any{"allowlist": []string{"10.0.0.2"}}, "If-Match", r.Header.Get("ETag")), 200, "")
	h.expect(h.as("POST", base+"/"+key+"/reveal", nil), 200, "")
	h.expect(h.as("DELETE", base+"/"+key, nil), 204, "")
	bob, bobSecret := h.subAccount("bob")
	waitFor := fmt.Sprint(h.position())

	// Reading the history takes audit:read.
	h.expect(h.call(bobSecret, "GET", "/v1/audit", nil), 403, "forbidden")
	h.role("auditors", []string{"audit:read"}, bob)
	waitFor = fmt.Sprint(h.position())

	r = h.call(bobSecret, "GET", "/v1/audit?target_id="+key, nil, "X-Keyledger-Position", waitFor)
	h.expect(r, 200, "")
	items := r.items()
	if len(items) != 4 {
		t.Fatalf("%d entries of the key: %s", len(items), r.Raw)
	}
	want := []string{"workspace.api_key_deleted", "workspace.api_key_revealed", "workspace.api_key_updated", "workspace.api_key_created"}
	for i, e := range items {
		if e["action"] != want[i] {
			t.Fatalf("entry %d is %v, want %s (newest first)", i, e["action"], want[i])
		}
		actor, _ := e["actor"].(map[string]any)
		if actor["id"] != h.admin.AccountID || actor["name"] != "admin" || e["credential_id"] != h.admin.AccessKeyID || e["request_id"] == "" {
			t.Fatalf("entry %d: %s", i, r.Raw)
		}
		if data, _ := e["data"].(map[string]any); data["secret_hash"] != nil || data["sealed"] != nil {
			t.Fatalf("an entry shows a credential hash or a sealed secret: %v", data)
		}
	}
	if s := items[0]["summary"]; s != "admin deleted Search key crawler-3 in workspace prod" {
		t.Fatalf("summary %q", s)
	}
	changes, _ := items[2]["changes"].(map[string]any)
	allow, _ := changes["allowlist"].(map[string]any)
	if len(changes) != 1 || fmt.Sprint(allow["before"]) != "[10.0.0.1]" || fmt.Sprint(allow["after"]) != "[10.0.0.2]" {
		t.Fatalf("changes of the edit: %v", changes)
	}

	// A time range selects exactly the entries in it (to excluded).
	q := url.Values{"target_id": {key}, "from": {items[2]["time"].(string)}, "to": {items[0]["time"].(string)}}
	r = h.as("GET", "/v1/audit?"+q.Encode(), nil)
	if h.expect(r, 200, ""); len(r.items()) != 2 || r.items()[0]["action"] != want[1] || r.items()[1]["action"] != want[2] {
		t.Fatalf("time range %v: %s", q, r.Raw)
	}

	// Filters, pages and the NDJSON export agree.
	r = h.as("GET", "/v1/audit?action=workspace.api_key_deleted", nil)
	if h.expect(r, 200, ""); len(r.items()) != 1 || r.items()[0]["target"].(map[string]any)["id"] != key {
		t.Fatalf("filtered by action: %s", r.Raw)
	}
	var paged []string
	for cursor := ""; ; {
		r = h.as("GET", "/v1/audit?limit=3&workspace_id="+ws+"&cursor="+cursor, nil)
		h.expect(r, 200, "")
		for _, e := range r.items() {
			paged = append(paged, e["event_id"].(string))
		}
		if cursor = r.str("next_cursor"); cursor == "" {
			break
		}
	}
	status, lines := h.stream(h.admin.Secret, "/v1/audit?workspace_id="+ws)
	if status != 200 || len(lines) != len(paged) || len(paged) != 5 { // the workspace's creation and the key's four
		t.Fatalf("%d: %d lines, %d paged", status, len(lines), len(paged))
	}
	// NDJSON refused (quality 0): the page.
	if r := h.as("GET", "/v1/audit?limit=3&workspace_id="+ws, nil, "Accept", "application/x-ndjson;q=0, application/json"); r.Status != 200 ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || len(r.items()) != 3 {
		t.Fatalf("NDJSON refused: %d %v %s", r.Status, r.Header, r.Raw)
	}
	for i, l := range lines {
		var e struct {
			EventID string `json:"event_id"`
		}
		_ = json.Unmarshal(l, &e)
		if e.EventID != paged[i] {
			t.Fatalf("line %d is %s, page gave %s", i, e.EventID, paged[i])
		}
	}
	h.expect(h.as("GET", "/v1/audit?from=yesterday", nil), 400, "invalid_input")
	h.expect(h.as("GET", "/v1/audit?cursor=%21%21", nil), 400, "invalid_cursor")
	// Ids and actions hold no spaces: a filter with one is a mistake, not "nothing".
	for _, q := range []string{"actor_id=acc%20x", "target_id=%20", "action=workspace.api_key_deleted%20", "workspace_id=ws%09x"} {
		h.expect(h.as("GET", "/v1/audit?"+q, nil), 400, "invalid_input")
	}
	h.expect(h.as("GET", "/v1/audit/proof/inclusion?event_id=an%20event", nil), 400, "invalid_input")
	h.expect(h.as("GET", "/v1/audit/decision?credential_id=key%20x&workspace_id="+ws+"&at=2026-01-01T00:00:00Z", nil), 400, "invalid_input")
}

// exportOf is the organization's raw events as GET /v1/events gives them.
func (h *harness) exportOf(secret string) []byte {
	h.t.Helper()
	status, lines := h.stream(secret, "/v1/events")
	if status != 200 {
		h.t.Fatalf("events: %d", status)
	}
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestTheHistoryIsATransparencyLog(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	for i := range 5 {
		h.expect(h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "search", "name": fmt.Sprintf("k%d", i)}), 201, "")
	}
	h.expect(h.as("GET", "/v1/audit/checkpoint", nil), 404, "no_checkpoint")

	r := h.as("GET", "/v1/audit/public-key", nil)
	h.expect(r, 200, "")
	if r.str("public_key") != auditPublicKey || r.str("origin") != "keyledger.test/"+h.admin.OrganizationID {
		t.Fatalf("public key: %s", r.Raw)
	}
	known, err := audit.Verifiers(r.str("public_key"))
	if err != nil {
		t.Fatal(err)
	}

	first := h.as("POST", "/v1/audit/checkpoint", nil)
	h.expect(first, 200, "")
	cp1, err := audit.OpenCheckpoint([]byte(first.str("note")), known, "keyledger.test/"+h.admin.OrganizationID)
	if err != nil {
		t.Fatal(err)
	}
	// bootstrap (the organization, its access key), the workspace, five keys
	if cp1.Size != 8 || !bytes.Equal(cp1.Root, b64(t, first.Body["root_hash"])) {
		t.Fatalf("checkpoint %+v: %s", cp1, first.Raw)
	}
	again := h.as("POST", "/v1/audit/checkpoint", nil)
	if h.expect(again, 200, ""); again.str("note") != first.str("note") {
		t.Fatal("a checkpoint of an unchanged history was signed again")
	}

	// The export verifies offline against the public key alone.
	export := h.exportOf(h.admin.Secret)
	rep, err := audit.Verify(bytes.NewReader(export), known)
	if err != nil || !rep.OK() || rep.Verified != 8 || rep.Checkpoints != 1 || rep.Events != 8 {
		t.Fatalf("verify: %v %+v", err, rep)
	}

	// An inclusion proof from the API verifies with the library's own verifier.
	var fourth audit.Event
	_ = json.Unmarshal(bytes.Split(export, []byte("\n"))[3], &fourth)
	r = h.as("GET", "/v1/audit/proof/inclusion?event_id="+fourth.ID, nil)
	h.expect(r, 200, "")
	leaf, err := fourth.LeafHash()
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyInclusion(audit.Hasher, *fourth.LeafIndex, cp1.Size, leaf, hashesOf(t, r.Body["hashes"]), cp1.Root); err != nil {
		t.Fatalf("inclusion proof: %v (%s)", err, r.Raw)
	}

	// History grows; a client holding the first checkpoint proves it was only
	// appended to.
	h.expect(h.as("PATCH", "/v1/workspaces/"+ws, map[string]any{"name": "production"}), 200, "")
	second := h.as("POST", "/v1/audit/checkpoint", nil)
	h.expect(second, 200, "")
	cp2, err := audit.OpenCheckpoint([]byte(second.str("note")), known, "")
	if err != nil || cp2.Size != 9 || cp2.Previous != 8 {
		t.Fatalf("second checkpoint %+v %v", cp2, err)
	}
	r = h.as("GET", fmt.Sprintf("/v1/audit/proof/consistency?from=%d&to=%d", cp1.Size, cp2.Size), nil)
	h.expect(r, 200, "")
	if err := proof.VerifyConsistency(audit.Hasher, cp1.Size, cp2.Size, hashesOf(t, r.Body["hashes"]), cp1.Root, cp2.Root); err != nil {
		t.Fatalf("consistency proof: %v (%s)", err, r.Raw)
	}
	if rep, _ := audit.Verify(bytes.NewReader(h.exportOf(h.admin.Secret)), known); !rep.OK() || rep.Verified != 9 || rep.Checkpoints != 2 {
		t.Fatalf("second export: %+v", rep)
	}

	// One changed byte in the log's copy is found, between the checkpoints around it.
	tampered := bytes.Replace(export, []byte(`"name":"k2"`), []byte(`"name":"k3"`), 1)
	if rep, _ := audit.Verify(bytes.NewReader(tampered), known); rep.OK() || rep.Breaks[0].Kind != audit.BreakRootMismatch {
		t.Fatalf("tampered export: %+v", rep)
	}

	// Bad questions are refused with a code.
	h.expect(h.as("GET", "/v1/audit/proof/inclusion?event_id=nope", nil), 404, "event_not_found")
	h.expect(h.as("GET", "/v1/audit/proof/inclusion", nil), 400, "invalid_input")
	h.expect(h.as("GET", "/v1/audit/proof/consistency?from=3&to=99", nil), 400, "beyond_tree")
	h.expect(h.as("GET", "/v1/audit/proof/consistency?from=x", nil), 400, "invalid_input")
	h.expect(h.as("GET", "/v1/events?follow=maybe", nil), 400, "invalid_input")
	if status, lines := h.stream(h.admin.Secret, "/v1/events?after=999999"); status != 200 || len(lines) != 0 {
		t.Fatalf("events after the log's end: %d, %d lines", status, len(lines))
	}

	// Another organization sees only its own history.
	other := h.bootstrap("globex")
	if rep, _ := audit.Verify(bytes.NewReader(h.exportOf(other.Secret)), known); rep.Events != 2 || rep.Organization != other.OrganizationID {
		t.Fatalf("other organization's export: %+v", rep)
	}
}

func hashesOf(t *testing.T, v any) [][]byte {
	t.Helper()
	raw, _ := v.([]any)
	out := make([][]byte, len(raw))
	for i, x := range raw {
		out[i] = b64(t, x)
	}
	return out
}

func TestCheckpointsArePublishedWhileTheHistoryGrows(t *testing.T) {
	h := start(t)
	h.audit.CheckpointEvery = 100 * time.Millisecond
	svc, srv := h.instance(httpapi.Config{})
	h.waitReady(svc)
	h.workspace("prod")
	size := uint64(3) // bootstrap and the workspace
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := h.on(srv, h.admin.Secret, "GET", "/v1/audit/checkpoint", nil)
		if r.Status == 200 && uint64(r.Body["size"].(float64)) == size {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of size %d in time: %d %s", size, r.Status, r.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestEventsCanBeFollowed(t *testing.T) {
	h := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/v1/events?follow=true&after=%d", h.http.URL, h.position()), nil)
	req.Header.Set("Authorization", "Bearer "+h.admin.Secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	h.workspace("later")
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	var e audit.Event
	if err := json.Unmarshal([]byte(line), &e); err != nil || !strings.HasSuffix(e.Type, "workspace.created.v1") || e.LeafIndex == nil || *e.LeafIndex != 2 {
		t.Fatalf("followed event %q: %v", line, err)
	}
}

func TestWithoutASigningKeyCheckpointsAreOff(t *testing.T) {
	h := start(t)
	h.audit = service.AuditConfig{}
	svc, srv := h.instance(httpapi.Config{})
	h.waitReady(svc)
	r := h.on(srv, h.admin.Secret, "POST", "/v1/audit/checkpoint", nil)
	h.expect(r, 501, "audit_signing_off")
	h.expect(h.on(srv, h.admin.Secret, "GET", "/v1/audit/public-key", nil), 501, "audit_signing_off")
	h.expect(h.on(srv, h.admin.Secret, "GET", "/v1/audit", nil), 200, "")
}

// TestRefusedCallsAndReplaysAreKeptForAuditors: every refused management call and
// every replayed answer is in the audit stream, under the caller's organization
// once it is known, readable with audit:read; nothing of a credential but its kind.
func TestRefusedCallsAndReplaysAreKeptForAuditors(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	bob, bobSecret := h.subAccount("bob")
	h.expect(h.call(bobSecret, "GET", "/v1/workspaces/"+ws+"/api-keys", nil), 403, "forbidden")
	h.expect(h.call("kla_not-even-a-credential", "GET", "/v1/workspaces", nil), 401, "unauthenticated")
	h.expect(h.call("", "GET", "/v1/audit", nil), 401, "unauthenticated")
	body := map[string]any{"business_type": "maas"}
	h.expect(h.as("POST", "/v1/workspaces/"+ws+"/api-keys", body, "Idempotency-Key", "retry-1"), 201, "")
	replay := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", body, "Idempotency-Key", "retry-1")
	h.expect(replay, 201, "")
	h.expect(h.call(bobSecret, "GET", "/v1/audit/calls", nil), 403, "forbidden") // itself kept

	var items []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for len(items) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("audit calls: %v", items)
		}
		time.Sleep(50 * time.Millisecond)
		r := h.as("GET", "/v1/audit/calls", nil)
		h.expect(r, 200, "")
		items = r.items()
	}
	if len(items) != 3 {
		t.Fatalf("%d records, want bob's two refusals and the replay: %v", len(items), items)
	}
	// Records are published in the background: two requests one after the other may
	// be kept in either order.
	byRoute := map[string]map[string]any{}
	for _, it := range items {
		byRoute[fmt.Sprint(it["kind"], " ", it["route"])] = it
	}
	refused, replayed, ownRead := byRoute["refused /v1/workspaces/:ws/api-keys"], byRoute["replayed /v1/workspaces/:ws/api-keys"], byRoute["refused /v1/audit/calls"]
	if refused["kind"] != "refused" || refused["status"] != float64(403) || refused["code"] != "forbidden" || refused["account_id"] != bob ||
		refused["missing_permission"] != "api_key:read" || refused["route"] != "/v1/workspaces/:ws/api-keys" ||
		refused["credential_kind"] != "access_key" || refused["credential_id"] == "" || refused["request_id"] == "" {
		t.Fatalf("refusal: %v", refused)
	}
	if replayed["kind"] != "replayed" || replayed["status"] != float64(201) || replayed["idempotency_key"] != "retry-1" ||
		replayed["account_id"] != h.admin.AccountID || replayed["request_id"] != replay.Header.Get("X-Request-Id") {
		t.Fatalf("replay: %v", replayed)
	}
	if ownRead == nil {
		t.Fatalf("the refused read of the calls: %v", items)
	}
	// Page by page, one at a time: each record once, in order, then the end.
	var paged []any
	for q := "?limit=1"; len(paged) <= 3; {
		r := h.as("GET", "/v1/audit/calls"+q, nil)
		h.expect(r, 200, "")
		for _, it := range r.items() {
			paged = append(paged, it["event_id"])
		}
		next, _ := r.Body["next_cursor"].(string)
		if next == "" {
			break
		}
		q = "?limit=1&cursor=" + next
	}
	if fmt.Sprint(paged) != fmt.Sprint([]any{items[0]["event_id"], items[1]["event_id"], items[2]["event_id"]}) {
		t.Fatalf("paged: %v, whole: %v %v %v", paged, items[0]["event_id"], items[1]["event_id"], items[2]["event_id"])
	}
	// from selects by the records' own time, not by when the stream stored them
	// (later, in the background).
	var earliest time.Time
	for _, it := range items {
		at, err := time.Parse(time.RFC3339Nano, it["time"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if earliest.IsZero() || at.Before(earliest) {
			earliest = at
		}
	}
	from := earliest.Add(time.Nanosecond) // the earliest record was stored after it
	var fromOn []any
	for _, it := range items {
		if at, _ := time.Parse(time.RFC3339Nano, it["time"].(string)); !at.Before(from) {
			fromOn = append(fromOn, it["event_id"])
		}
	}
	if len(fromOn) == 0 {
		t.Fatalf("three records at one instant: %v", items)
	}
	r := h.as("GET", "/v1/audit/calls?from="+url.QueryEscape(from.Format(time.RFC3339Nano)), nil)
	h.expect(r, 200, "")
	var got []any
	for _, it := range r.items() {
		got = append(got, it["event_id"])
	}
	if fmt.Sprint(got) != fmt.Sprint(fromOn) {
		t.Fatalf("from %s: %v, want %v (of %v)", from.Format(time.RFC3339Nano), got, fromOn, items)
	}
	// The last page has no next_cursor, but each record has its cursor: a client
	// resumes after the last one it read, for what comes later.
	last, _ := items[2]["cursor"].(string)
	if last == "" {
		t.Fatalf("a record without its cursor: %v", items[2])
	}
	h.expect(h.call(bobSecret, "GET", "/v1/workspaces/"+ws+"/api-keys", nil), 403, "forbidden")
	h.eventually("the record after the last one read", func() bool {
		r := h.as("GET", "/v1/audit/calls?cursor="+last, nil)
		return r.Status == 200 && len(r.items()) >= 1 && r.items()[0]["route"] == "/v1/workspaces/:ws/api-keys"
	})
	// The two unauthenticated calls are not the organization's (they are filed
	// under "anonymous"); nothing is later than now.
	if next := h.as("GET", "/v1/audit/calls?from="+url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), nil); len(next.items()) != 0 {
		t.Fatalf("records from the future: %s", next.Raw)
	}
	h.expect(h.as("GET", "/v1/audit/calls?limit=0", nil), 400, "invalid_input")
	h.expect(h.as("GET", "/v1/audit/calls?cursor=x", nil), 400, "invalid_cursor")
}

// TestARotatedSigningKeyKeepsOldCheckpointsVerifiable: after a rotation the
// instance serves the old public key beside the new one, and an export holding
// checkpoints of both verifies with both keys, not with the new one alone.
func TestARotatedSigningKeyKeepsOldCheckpointsVerifiable(t *testing.T) {
	h := start(t)
	h.workspace("prod")
	h.expect(h.as("POST", "/v1/audit/checkpoint", nil), 200, "")

	newKey, newPublic, err := audit.GenerateKey("keyledger-test")
	if err != nil {
		t.Fatal(err)
	}
	h.audit = service.AuditConfig{SigningKey: newKey, PreviousPublicKeys: []string{auditPublicKey}, Origin: "keyledger.test", CheckpointEvery: time.Hour}
	svc, srv := h.instance(httpapi.Config{})
	h.waitReady(svc)
	r := h.on(srv, h.admin.Secret, "GET", "/v1/audit/public-key", nil)
	if h.expect(r, 200, ""); r.str("public_key") != newPublic || fmt.Sprint(r.Body["previous_public_keys"]) != "["+auditPublicKey+"]" {
		t.Fatalf("public keys after a rotation: %s", r.Raw)
	}
	h.workspace("staging")
	h.expect(h.on(srv, h.admin.Secret, "POST", "/v1/audit/checkpoint", nil), 200, "")

	export := h.exportOf(h.admin.Secret)
	both, _ := audit.Verifiers(newPublic, auditPublicKey)
	if rep, err := audit.Verify(bytes.NewReader(export), both); err != nil || !rep.OK() || rep.Checkpoints != 2 {
		t.Fatalf("with both keys: %v %+v", err, rep)
	}
	onlyNew, _ := audit.Verifiers(newPublic)
	if rep, _ := audit.Verify(bytes.NewReader(export), onlyNew); rep.OK() || rep.Breaks[0].Kind != audit.BreakForgedCheckpoint {
		t.Fatalf("the old checkpoint verified with the new key alone: %+v", rep)
	}
}

// TestAuditWaitsAreBounded: the auditors' routes that wait for the audit views (a
// decision replay, a checkpoint signed on demand, the events after a position)
// answer 503 position_not_reached once the position wait is over, rather than hang
// while the audit projector cannot commit (here its table is locked).
func TestAuditWaitsAreBounded(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	svc, srv := h.instance(httpapi.Config{PositionWait: 300 * time.Millisecond})
	h.waitReady(svc)
	ctx := context.Background()
	lock, err := h.svc.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, "LOCK TABLE audit_entries IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	h.workspace("after the lock")
	pos := fmt.Sprint(h.position())
	client := &http.Client{Timeout: 10 * time.Second}
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/audit/decision?credential_id=" + h.admin.AccessKeyID + "&workspace_id=" + ws + "&product=maas&source_ip=10.0.0.1&at=" + url.QueryEscape(time.Now().Add(-time.Second).UTC().Format(time.RFC3339))},
		{"POST", "/v1/audit/checkpoint"},
		{"GET", "/v1/events?after=" + pos},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+h.admin.Secret)
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 503 || !strings.Contains(string(body), "position_not_reached") {
			t.Fatalf("%s %s: %d %s", c.method, c.path, res.StatusCode, body)
		}
	}
}

// TestCheckpointsSignTheLogNotTheViews: the views' copy of a tree is derived data
// in PostgreSQL; whoever can write there must not get a genuine signature over a
// root of their choosing. The checkpoint signs the root the log gives.
func TestCheckpointsSignTheLogNotTheViews(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	r := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"})
	h.expect(r, 201, "")
	waitAudit := func() {
		t.Helper()
		h.expect(h.as("GET", "/v1/audit?limit=1", nil, "X-Keyledger-Position", fmt.Sprint(h.position())), 200, "")
	}
	waitAudit()
	forged := bytes.Repeat([]byte{7}, 32)
	if _, err := h.svc.Pool().Exec(context.Background(), `UPDATE audit_trees SET root = $1 WHERE organization_id = $2`,
		forged, h.admin.OrganizationID); err != nil {
		t.Fatal(err)
	}
	cp := h.as("POST", "/v1/audit/checkpoint", nil)
	h.expect(cp, 200, "")
	if bytes.Equal(b64(t, cp.Body["root_hash"]), forged) {
		t.Fatalf("the forged root was signed: %s", cp.Raw)
	}
	known, err := audit.Verifiers(auditPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := audit.Verify(bytes.NewReader(h.exportOf(h.admin.Secret)), known); err != nil || !rep.OK() || rep.Checkpoints != 1 || rep.Verified != 4 {
		t.Fatalf("the log's export against the signed checkpoint: %v %+v", err, rep)
	}
}

// TestAFollowedHistoryEndsWithTheCallersAccess: a sub-account following
// /v1/events loses audit:read; within a second the stream ends, and what the
// organization does afterwards never reaches it.
func TestAFollowedHistoryEndsWithTheCallersAccess(t *testing.T) {
	h := start(t)
	bob, bobSecret := h.subAccount("bob")
	role := h.role("auditors", []string{"audit:read"}, bob)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/v1/events?follow=true&after=%d", h.http.URL, h.position()), nil)
	req.Header.Set("Authorization", "Bearer "+bobSecret)
	req.Header.Set("X-Keyledger-Position", fmt.Sprint(h.position()))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("follow: %d", res.StatusCode)
	}
	lines := make(chan string, 16)
	var ended error // how the stream ended: nil for a clean end of its answer
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		ended = sc.Err()
	}()
	h.workspace("seen")
	select {
	case l := <-lines:
		if !strings.Contains(l, "workspace.created") {
			t.Fatalf("followed: %s", l)
		}
	case <-ctx.Done():
		t.Fatal("nothing followed")
	}
	h.expect(h.as("DELETE", "/v1/roles/"+role, nil), 204, "")
	time.Sleep(1500 * time.Millisecond)
	h.workspace("unseen")
	for l := range lines { // the role's deletion itself may come through
		if strings.Contains(l, `"name":"unseen"`) {
			t.Fatalf("after the caller lost audit:read: %s", l)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the stream did not end")
	}
	if ended != nil {
		t.Fatalf("the stream was cut, not ended: %v", ended)
	}
}
