package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/eventstore/natstest"
	"github.com/keyledger/keyledger/projections/pgtest"
	"github.com/keyledger/keyledger/service"
)

// TestUsageSendPostsNDJSON: `keyledger usage send` posts the records of an NDJSON
// stream in batches, sums the answers and exits 3 when any record was rejected.
func TestUsageSendPostsNDJSON(t *testing.T) {
	ctx := context.Background()
	const token = "klg_usage-send-test-token"
	ns, dbURL := natstest.Start(t), pgtest.NewDatabase(t)
	svc, err := service.Start(ctx, service.Config{NATS: ns.Connect(t), DatabaseURL: dbURL,
		MasterKey: bytes.Repeat([]byte{1}, 32), Pepper: bytes.Repeat([]byte{2}, 32), GatewayToken: token})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	boot, err := svc.Bootstrap(ctx, commands.Bootstrap{OrganizationName: "acme", PrimaryName: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	c := commands.Caller{OrganizationID: boot.OrganizationID, AccountID: boot.AccountID, Primary: true}
	ws, err := svc.App().CreateWorkspace(ctx, commands.CreateWorkspace{Caller: c, Name: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := svc.App().CreateAPIKey(ctx, commands.CreateAPIKey{Caller: c, WorkspaceID: ws.WorkspaceID, BusinessType: "maas"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.WaitCaughtUp(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Format(time.RFC3339Nano)
	var ndjson strings.Builder
	for i, credential := range []string{key.Keys[0].KeyID, key.Keys[0].KeyID, "key_01JD0000000000000000000000"} {
		fmt.Fprintf(&ndjson, `{"record_id":"r-%d","credential_id":%q,"workspace_id":%q,"product":"maas","resource":"m","cost_micros":10,"currency":"USD","at":%q}`+"\n\n",
			i, credential, ws.WorkspaceID, at)
	}
	cfg := Config{GatewayToken: token, UsageSend: UsageSendConfig{Server: srv.URL, Batch: 2}}
	var out, errOut bytes.Buffer
	err = runUsageSend(ctx, cfg, strings.NewReader(ndjson.String()), &out, &errOut)
	if !errors.Is(err, errRefused) || out.String() != "accepted 2, duplicates 0, rejected 1\n" || !strings.Contains(errOut.String(), "rejected r-2: unknown_credential") {
		t.Fatalf("usage send: %v\n%s%s", err, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if err := runUsageSend(ctx, cfg, strings.NewReader(strings.SplitN(ndjson.String(), "\n", 2)[0]), &out, &errOut); err != nil || out.String() != "accepted 0, duplicates 1, rejected 0\n" {
		t.Fatalf("sent again: %v %s", err, out.String())
	}
	if err := runUsageSend(ctx, cfg, strings.NewReader("{not json\n"), &out, &errOut); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("a broken line: %v", err)
	}

	// A 503 (an index catching up, NATS failing over) is sent again after its
	// Retry-After: the records are idempotent by id.
	var calls atomic.Int32
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		svc.Handler().ServeHTTP(w, r)
	}))
	defer flaky.Close()
	retry := cfg
	retry.UsageSend.Server = flaky.URL
	out.Reset()
	late := strings.Replace(strings.SplitN(ndjson.String(), "\n", 2)[0], `"r-0"`, `"r-late"`, 1)
	if err := runUsageSend(ctx, retry, strings.NewReader(late), &out, &errOut); err != nil || out.String() != "accepted 1, duplicates 0, rejected 0\n" || calls.Load() != 2 {
		t.Fatalf("after a 503: %v %s (%d calls)", err, out.String(), calls.Load())
	}
	// A server that stays unavailable is tried five times, then named.
	var tries atomic.Int32
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tries.Add(1)
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()
	retry.UsageSend.Server = down.URL
	if err := runUsageSend(ctx, retry, strings.NewReader(late), &out, &errOut); err == nil || !strings.Contains(err.Error(), "503") || tries.Load() != 5 {
		t.Fatalf("a server that stays down: %v (%d tries)", err, tries.Load())
	}

	// keyledger costs reconcile: the views match the stream, until one is changed.
	if err := svc.CostsCaughtUp(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	rc := Config{NATSURL: ns.ClientURL(), DatabaseURL: dbURL, Replicas: 1}
	out.Reset()
	if err := runReconcile(ctx, rc, nil, &out); err != nil || !strings.Contains(out.String(), "match the usage stream") {
		t.Fatalf("reconcile: %v %s", err, out.String())
	}
	if _, err := svc.Pool().Exec(ctx, `UPDATE costs_hourly SET cost_micros = cost_micros + 1; UPDATE costs_daily SET cost_micros = cost_micros + 2`); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runReconcile(ctx, rc, nil, &out); err == nil || !strings.Contains(out.String(), "stream 30, views 31") ||
		!strings.Contains(out.String(), "stream 30, views 32") || !strings.HasPrefix(out.String(), "hour ") && !strings.HasPrefix(out.String(), "day ") {
		t.Fatalf("reconcile after a change: %v %s", err, out.String())
	}
}
