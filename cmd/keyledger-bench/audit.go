package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/auditlog"
	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/service"
)

var (
	auditN      = flag.Int("audit", 1_000_000, "events of one organization in the log for the audit measurements")
	auditPages  = flag.Int("audit-pages", 200, "filtered audit pages timed")
	auditTrials = flag.Int("audit-checkpoints", 20, "checkpoint latency trials")
	only        = flag.String("only", "", `run one part only: "audit", "keys" (key creation beside raw appends), "verify" (HTTP verification beside its ceilings), "index" (in-process verification and the index's memory), "startup" (an index from an empty start to ready), "catchup" (the projector beside raw consume and COPY), "usage" (usage ingestion and the costs' lag) or "cache" (the aggregate cache's memory)`)
)

// benchAudit runs on a NATS and a database of its own: one organization with
// auditN events, an instance signing checkpoints every second.
func benchAudit(ctx context.Context) error {
	nc, stopNATS, err := startNATS()
	if err != nil {
		return err
	}
	defer stopNATS()
	dbURL, drop, err := scratchDatabase(ctx)
	if err != nil {
		return err
	}
	defer drop()
	skey, _, err := audit.GenerateKey("keyledger-bench")
	if err != nil {
		return err
	}
	// The audit projector stands by while the bench holds its lock (for the tree's
	// cost on key creation, below).
	lock, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer lock.Close(context.WithoutCancel(ctx))
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_lock(hashtext('keyledger.projector.audit'))`); err != nil {
		return err
	}
	svc, err := service.Start(ctx, service.Config{NATS: nc, DatabaseURL: dbURL, MasterKey: bytes.Repeat([]byte{1}, 32),
		Pepper: bytes.Repeat([]byte{2}, 32), GatewayToken: gatewayToken, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Audit: service.AuditConfig{SigningKey: skey, CheckpointEvery: time.Second}})
	if err != nil {
		return err
	}
	defer svc.Close()
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	boot, err := svc.Bootstrap(ctx, commands.Bootstrap{OrganizationName: "audited", PrimaryName: "admin"})
	if err != nil {
		return err
	}
	c := &client{base: srv.URL, secret: boot.Secret, http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	if err := benchTreeCost(ctx, svc, c, lock); err != nil {
		return err
	}

	// The history: key creations and edits by ten actors in a hundred workspaces.
	const workspaces, actors, perAppend = 100, 10, 500
	wss, accs := make([]string, workspaces), make([]string, actors)
	for i := range wss {
		wss[i] = domain.NewWorkspaceID()
	}
	for i := range accs {
		accs[i] = domain.NewAccountID()
	}
	last := make([]uint64, workspaces)
	fill := time.Now()
	// The history spans the 30 days before now, as a real one would: a store of the
	// bench's own stamps the appends (ce-time) along them.
	const span = 30 * 24 * time.Hour
	at := time.Now().UTC().Add(-span).Truncate(time.Microsecond)
	step := span / time.Duration(*auditN)
	history, err := eventstore.Open(ctx, nc, eventstore.Config{Clock: func() time.Time { return at }})
	if err != nil {
		return err
	}
	for n := 0; n < *auditN; {
		w := (n / perAppend) % workspaces
		events := make([]domain.Event, 0, perAppend)
		for i := 0; i < perAppend && n < *auditN; i, n = i+1, n+1 {
			at = at.Add(step)
			if n%4 == 3 {
				events = append(events, domain.APIKeyUpdated{KeyID: "key_" + strconv.Itoa(n-1), Allowlist: []string{"10.0.0.0/8"}, Note: "edited", At: at})
				continue
			}
			events = append(events, domain.APIKeyCreated{KeyID: "key_" + strconv.Itoa(n), BusinessType: domain.BusinessSearch, Name: "k-" + strconv.Itoa(n),
				Allowlist: []string{"10.0.0.0/8"}, QPSLimit: 50, SecretHash: hex.EncodeToString(randBytes(32)), Masked: "kls_abcd…wxyz", Sealed: randBytes(81), At: at})
		}
		v, err := history.Append(ctx, domain.AggregateWorkspace, wss[w], last[w], events,
			domain.Metadata{OrganizationID: boot.OrganizationID, WorkspaceID: wss[w], ActorID: accs[(n/perAppend)%actors], SourceIP: "10.1.2.3"})
		if err != nil {
			return err
		}
		last[w] = v
	}
	head, err := svc.Store().Position(ctx)
	if err != nil {
		return err
	}
	filled := time.Since(fill)
	fmt.Fprintf(os.Stderr, "  (%d events appended in %v)\n", head, filled.Round(time.Millisecond))
	// The audit projector follows the fill as it is appended (the lock was released
	// above): how far behind its end it still is says whether it keeps pace.
	start := time.Now()
	if err := svc.Audit().WaitFor(ctx, head); err != nil {
		return err
	}
	report(fmt.Sprintf("audit projector beside the views projector, following %d events appended at %.0f/s: caught up after the last (ms)", head,
		float64(head)/filled.Seconds()), float64(time.Since(start).Milliseconds()), 0, "ms")
	if err := svc.WaitCaughtUp(ctx, 10*time.Minute); err != nil {
		return err
	}
	// What an instance with a signing key does at start: its witness builds each
	// organization's tree in memory before a checkpoint of the whole history can be
	// signed; from the log's beginning when no checkpoint can be resumed from (a
	// witness without the key), from the latest checkpoints otherwise.
	if st, _, b, err := c.do("POST", "/v1/audit/checkpoint", nil); err != nil || st != http.StatusOK {
		return fmt.Errorf("checkpoint: %d %.200s %v", st, b, err)
	}
	signer, err := audit.NewSigner(skey)
	if err != nil {
		return err
	}
	for _, w := range []struct {
		from   string
		signer *audit.Signer
	}{{"an empty start", nil}, {"its checkpoints", signer}} {
		witness, err := auditlog.NewWitness(svc.Store(), w.signer, auditlog.DefaultOrigin, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			return err
		}
		wctx, stopWitness := context.WithCancel(ctx)
		start = time.Now()
		go func() { _ = witness.Run(wctx) }()
		err = witness.CaughtUp(ctx)
		stopWitness()
		if err != nil {
			return err
		}
		report(fmt.Sprintf("checkpointer's witness from %s to holding the log of %d events (ms)", w.from, head),
			float64(time.Since(start).Milliseconds()), 0, "ms")
	}

	// A filtered page: by actor, workspace, action, target or a time range, newest
	// first, 50 entries, some pages deep.
	var lat []time.Duration
	worst := map[string]time.Duration{}
	for i := range *auditPages {
		q := url.Values{"limit": {"50"}}
		switch i % 5 {
		case 0:
			q.Set("actor_id", accs[rand.IntN(actors)])
		case 1:
			q.Set("workspace_id", wss[rand.IntN(workspaces)])
		case 2:
			q.Set("action", "workspace.api_key_updated")
		case 3:
			q.Set("target_id", "key_"+strconv.Itoa(4*rand.IntN(*auditN/4)))
		case 4: // an hour of the 30 days
			from := time.Now().UTC().Add(-time.Duration(rand.Int64N(int64(span))))
			q.Set("from", from.Format(time.RFC3339Nano))
			q.Set("to", from.Add(time.Hour).Format(time.RFC3339Nano))
		}
		if i%10 == 9 { // a page far from the newest
			q.Set("cursor", cursorAt(rand.IntN(*auditN)))
		}
		t0 := time.Now()
		st, _, b, err := c.do("GET", "/v1/audit?"+q.Encode(), nil)
		if err != nil || st != 200 {
			return fmt.Errorf("audit page: %d %.200s %v", st, b, err)
		}
		lat = append(lat, time.Since(t0))
		kind := []string{"actor", "workspace", "action", "target", "time range"}[i%5]
		worst[kind] = max(worst[kind], time.Since(t0))
	}
	fmt.Fprintf(os.Stderr, "  (slowest page by filter: %v)\n", worst)
	slices.Sort(lat)
	report(fmt.Sprintf("filtered audit page of 50, %d events in the log: p50 (ms)", head), ms(lat[len(lat)/2]), 0, "ms")
	report(fmt.Sprintf("filtered audit page of 50, %d events in the log: p99 (ms)", head), ms(lat[len(lat)*99/100]), 0, "ms")

	// Export: GET /v1/events against the raw ordered consume of the same log.
	st, _, b, err := c.do("POST", "/v1/audit/checkpoint", nil)
	if err != nil || st != 200 {
		return fmt.Errorf("checkpoint: %d %.200s %v", st, b, err)
	}
	rawRate, err := rawConsume(ctx, svc.Store().JetStream(), head)
	if err != nil {
		return err
	}
	req, _ := http.NewRequest("GET", c.base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+c.secret)
	start = time.Now()
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	// The export goes to a file, as an auditor's would (held in memory, a million
	// lines would make the bench's own garbage part of the figure).
	file, err := os.CreateTemp("", "keyledger-export-*.ndjson")
	if err != nil {
		return err
	}
	defer os.Remove(file.Name())
	defer file.Close()
	lines := &lineCounter{w: file}
	_, err = io.Copy(lines, res.Body)
	res.Body.Close()
	if err != nil {
		return err
	}
	exportRate := float64(lines.n) / time.Since(start).Seconds()
	report("GET /v1/events NDJSON export (events/s) vs raw ordered consume", exportRate, rawRate, "/s")

	// Offline verification of that export.
	vkey := svc.Audit().PublicKeys()[0]
	known, err := audit.Verifiers(vkey)
	if err != nil {
		return err
	}
	start = time.Now()
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	rep, err := audit.Verify(bufio.NewReaderSize(file, 1<<20), known)
	if err != nil || !rep.OK() {
		return fmt.Errorf("verify: %v %v", err, rep.Breaks)
	}
	report(fmt.Sprintf("keyledger audit verify of %d events (events/s)", rep.Events), float64(rep.Events)/time.Since(start).Seconds(), 0, "/s")

	// Checkpoint latency: an event appended until a signed checkpoint covers it,
	// with checkpoints every second (the default is every minute).
	ws, err := c.workspace("latency")
	if err != nil {
		return err
	}
	var cps []time.Duration
	for i := range *auditTrials {
		t0 := time.Now()
		st, hdr, b, err := c.do("PATCH", "/v1/workspaces/"+ws, map[string]any{"name": "latency-" + strconv.Itoa(i)})
		if err != nil || st != 200 {
			return fmt.Errorf("edit: %d %.200s %v", st, b, err)
		}
		pos, _ := strconv.ParseUint(hdr.Get("X-Keyledger-Position"), 10, 64)
		for {
			st, _, b, err := c.do("GET", "/v1/audit/checkpoint", nil)
			if err != nil || st != 200 {
				return fmt.Errorf("checkpoint: %d %.200s %v", st, b, err)
			}
			var cp struct {
				Position uint64 `json:"position"`
			}
			_ = json.Unmarshal(b, &cp)
			if cp.Position > pos {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cps = append(cps, time.Since(t0))
	}
	slices.Sort(cps)
	report("event appended → covered by a signed checkpoint, every 1 s: p50 (ms)", ms(cps[len(cps)/2]), 0, "ms")
	report("event appended → covered by a signed checkpoint, every 1 s: p99 (ms)", ms(cps[len(cps)*99/100]), 0, "ms")
	return nil
}

// lineCounter counts the lines written through it.
type lineCounter struct {
	w io.Writer
	n int
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n += bytes.Count(p, []byte{'\n'})
	return c.w.Write(p)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cursorAt is the cursor of a page starting below a leaf index (opaque to
// clients; the bench knows what the server issues).
func cursorAt(leaf int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(leaf)))
}

// rawConsume is the ordered-consume rate of the whole log.
func rawConsume(ctx context.Context, js jetstream.JetStream, head uint64) (float64, error) {
	cons, err := js.OrderedConsumer(ctx, eventstore.EventsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	got := 0
	for got < int(head) {
		batch, err := cons.Fetch(min(2000, int(head)-got), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return 0, err
		}
		for range batch.Messages() {
			got++
		}
	}
	return float64(got) / time.Since(start).Seconds(), nil
}

// benchTreeCost measures what keeping the audit trees costs key creation: the same
// keys created over HTTP while the audit projector stands by (the bench holds its
// lock from before the instance started) and then while it follows the log.
func benchTreeCost(ctx context.Context, svc *service.Service, c *client, lock *pgx.Conn) error {
	create, err := keyCreator(c, "tree")
	if err != nil {
		return err
	}
	off, err := parallel(*clients, *concN, create)
	if err != nil {
		return err
	}
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_unlock(hashtext('keyledger.projector.audit'))`); err != nil {
		return err
	}
	head, err := svc.Store().Position(ctx)
	if err != nil {
		return err
	}
	if err := svc.Audit().WaitFor(ctx, head); err != nil {
		return err
	}
	on, err := parallel(*clients, *concN, create)
	if err != nil {
		return err
	}
	report(fmt.Sprintf("key creation via HTTP, %d clients, audit trees kept (keys/s) vs audit projector standing by", *clients), on, off, "/s")
	return nil
}
