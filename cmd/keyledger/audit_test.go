package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/eventstore/natstest"
	"github.com/keyledger/keyledger/internal/syncbuf"
	"github.com/keyledger/keyledger/projections/pgtest"
	"github.com/keyledger/keyledger/service"
)

// TestEventsExportThenAuditVerify: an operator's export straight from JetStream
// verifies offline against the public key; a changed byte makes verify exit 1.
func TestEventsExportThenAuditVerify(t *testing.T) {
	ctx := context.Background()
	var keygen bytes.Buffer
	if err := runAuditKeygen(&keygen); err != nil {
		t.Fatal(err)
	}
	skey := strings.TrimPrefix(strings.Split(keygen.String(), "\n")[1], "export KEYLEDGER_AUDIT_SIGNING_KEY=")
	vkey := strings.TrimPrefix(strings.Split(keygen.String(), "\n")[3], "# ")
	ns, dbURL := natstest.Start(t), pgtest.NewDatabase(t)
	svc, err := service.Start(ctx, service.Config{NATS: ns.Connect(t), DatabaseURL: dbURL, MasterKey: bytes.Repeat([]byte{1}, 32),
		Pepper: bytes.Repeat([]byte{2}, 32), GatewayToken: "klg_audit-cli-test-token", Audit: service.AuditConfig{SigningKey: skey}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	boot, err := svc.Bootstrap(ctx, commands.Bootstrap{OrganizationName: "acme", PrimaryName: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	c := commands.Caller{OrganizationID: boot.OrganizationID, AccountID: boot.AccountID, Primary: true}
	for _, name := range []string{"prod", "staging"} {
		if _, err := svc.App().CreateWorkspace(ctx, commands.CreateWorkspace{Caller: c, Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Audit().SignCheckpoint(ctx, boot.OrganizationID); err != nil {
		t.Fatal(err)
	}
	// Another organization's events are not in the export.
	if _, err := svc.Bootstrap(ctx, commands.Bootstrap{OrganizationName: "globex", PrimaryName: "admin"}); err != nil {
		t.Fatal(err)
	}

	var export bytes.Buffer
	cfg := Config{NATSURL: ns.ClientURL(), Replicas: 1, Audit: AuditCLIConfig{Org: boot.OrganizationID}}
	if err := runEventsExport(ctx, cfg, &export, false); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(export.String(), "\n"); n != 5 { // bootstrap 2, workspaces 2, the checkpoint
		t.Fatalf("%d lines exported:\n%s", n, export.String())
	}

	verify := func(in string) (audit.Report, error) {
		t.Helper()
		var out bytes.Buffer
		err := runAuditVerify(Config{Audit: AuditCLIConfig{PublicKeys: []string{vkey}, In: "-"}}, strings.NewReader(in), &out)
		var rep audit.Report
		if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
			t.Fatalf("report: %v\n%s", jerr, out.String())
		}
		return rep, err
	}
	if rep, err := verify(export.String()); err != nil || !rep.OK() || rep.Verified != 4 {
		t.Fatalf("clean export: %v %+v", err, rep)
	}
	tampered := strings.Replace(export.String(), `"name":"staging"`, `"name":"stagin9"`, 1)
	if rep, err := verify(tampered); !errors.Is(err, errTampered) || rep.OK() || rep.Breaks[0].Kind != audit.BreakRootMismatch {
		t.Fatalf("tampered export: %v %+v", err, rep)
	}

	// events tail follows: a workspace created while it runs comes out, with the
	// leaf index after the export's last one.
	tailCtx, stopTail := context.WithCancel(ctx)
	var tailed syncbuf.Buffer
	tailDone := make(chan error, 1)
	go func() { tailDone <- runEventsExport(tailCtx, cfg, &tailed, true) }()
	if _, err := svc.App().CreateWorkspace(ctx, commands.CreateWorkspace{Caller: c, Name: "tailed"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(tailed.String(), `"name":"tailed"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("events tail printed:\n%s", tailed.String())
		}
	}
	stopTail()
	if err := <-tailDone; err != nil {
		t.Fatalf("events tail ended with %v", err)
	}
	lines := strings.Split(strings.TrimSpace(tailed.String()), "\n")
	var last audit.Event
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.LeafIndex == nil || *last.LeafIndex != 4 {
		t.Fatalf("the tailed workspace: %v %s", err, lines[len(lines)-1])
	}

	// Starting after a position gives the events after it, with their own leaf indices.
	var tail bytes.Buffer
	cfg.Audit.After = 3
	if err := runEventsExport(ctx, cfg, &tail, false); err != nil {
		t.Fatal(err)
	}
	var first audit.Event
	if err := json.Unmarshal([]byte(strings.Split(tail.String(), "\n")[0]), &first); err != nil || first.Position <= 3 || first.LeafIndex == nil {
		t.Fatalf("export after 3: %v %s", err, tail.String())
	}
}
