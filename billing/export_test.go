package billing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/billing"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/eventstore/natstest"
)

var secret = bytes.Repeat([]byte("s"), 32)

// receiver is a billing endpoint that fails, times out and recovers: the first
// failFirst requests answer 500, the next one stalls past the sender's timeout, then
// it answers 200, except to the ids in refuse (400) for as long as they are there.
// The failures (failFirst+1) stay within one message's retries (MaxRetries+1 attempts).
type receiver struct {
	t          *testing.T
	mu         sync.Mutex
	calls      int
	failFirst  int
	stall      time.Duration
	refuse     map[string]bool
	got        map[string][]byte // id → body of the first delivery answered 200
	deliveries int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := billing.VerifySignature(secret, req.Header.Get(billing.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		r.t.Errorf("signature: %v", err)
		w.WriteHeader(401)
		return
	}
	var env billing.Envelope
	if err := json.Unmarshal(body, &env); err != nil || env.ID != req.Header.Get(billing.HeaderEventID) {
		r.t.Errorf("envelope %s (%v)", body, err)
	}
	r.mu.Lock()
	r.calls++
	call := r.calls
	refused := r.refuse[env.ID]
	r.mu.Unlock()
	switch {
	case call <= r.failFirst:
		w.WriteHeader(500)
		return
	case call == r.failFirst+1:
		time.Sleep(r.stall)
	case refused:
		w.WriteHeader(400)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deliveries++
	if first, ok := r.got[env.ID]; ok {
		var a, b billing.Envelope
		_ = json.Unmarshal(first, &a)
		_ = json.Unmarshal(body, &b)
		if string(a.Data) != string(b.Data) || a.Type != b.Type || a.Position != b.Position || a.BatchID != b.BatchID {
			r.t.Errorf("%s delivered twice with different contents:\n%s\n%s", env.ID, first, body)
		}
	} else {
		r.got[env.ID] = body
	}
	w.WriteHeader(200)
}

// delivered is how many deliveries the receiver answered 200.
func (r *receiver) delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deliveries
}

func (r *receiver) received() map[string][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range r.got {
		out[k] = v
	}
	return out
}

// TestExportDeliversEverythingThroughFailures: usage records and billable events
// reach a receiver that fails, times out and recovers, each signed, each at least
// once and duplicates only with the same id and contents; non-billable events and
// secret material never leave; a message refused through every retry goes to the
// dead letters, from which replay-dead-letters delivers it once the receiver takes
// it; a restarted export resumes where its durable consumers stand.
func TestExportDeliversEverythingThroughFailures(t *testing.T) {
	ctx := context.Background()
	srv, store := openLog(t)
	org, ws := domain.NewOrganizationID(), domain.NewWorkspaceID()
	key := domain.NewAPIKeyID()
	meta := domain.Metadata{OrganizationID: org, WorkspaceID: ws}
	now := time.Now().UTC()
	if _, err := store.Append(ctx, domain.AggregateWorkspace, ws, 0, []domain.Event{
		domain.WorkspaceCreated{WorkspaceID: ws, OrganizationID: org, Name: "prod", At: now},
		domain.APIKeyCreated{KeyID: key, BusinessType: domain.BusinessMaaS, Allowlist: []string{}, SecretHash: "HASH-MUST-NOT-LEAVE",
			Masked: "sk-…abcd", Sealed: []byte("SEALED-MUST-NOT-LEAVE"), At: now},
		domain.APIKeyRevealed{KeyID: key, At: now}, // not billable
	}, meta); err != nil {
		t.Fatal(err)
	}
	// An access key stops and starts again being able to make billable calls.
	if _, err := store.Append(ctx, domain.AggregateOrganization, org, 0, []domain.Event{
		domain.AccessKeyDisabled{AccountID: "acct_1", AccessKeyID: "AK1", At: now},
		domain.AccessKeyEnabled{AccountID: "acct_1", AccessKeyID: "AK1", At: now},
	}, domain.Metadata{OrganizationID: org}); err != nil {
		t.Fatal(err)
	}
	// A write of several aggregates that holds one event is no batch.
	if _, err := store.AppendMany(ctx, domain.AggregateWorkspace, []domain.Change{{ID: ws, Expected: 3,
		Events: []domain.Event{domain.MemberAuthorized{AccountID: "acct_1", At: now}}}}, meta); err != nil {
		t.Fatal(err)
	}
	var recs []domain.UsageRecorded
	for i := range 6 {
		recs = append(recs, domain.UsageRecorded{RecordID: fmt.Sprintf("r-%d", i), OrganizationID: org, WorkspaceID: ws,
			CredentialID: key, Product: domain.BusinessMaaS, Resource: "qwen-max", Units: map[string]int64{"calls": 1},
			CostMicros: int64(100 + i), Currency: "CNY", At: now, BillingKind: "workspace", BillingID: ws})
	}
	if _, err := store.PublishUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	events := readIDs(t, store.JetStream(), eventstore.EventsStream)
	want := map[string]bool{events[0]: true, events[1]: true, events[3]: true, events[4]: true, events[5]: true}
	for _, r := range recs {
		want[eventstore.UsageMsgID(org, r.RecordID)] = true
	}
	// Refused through every retry: a usage record, and a domain event (appended in
	// an atomic batch, whose stored headers a dead letter must not carry).
	poisoned, poisonedEvent := eventstore.UsageMsgID(org, "r-3"), events[1]

	rcv := &receiver{t: t, failFirst: 2, stall: 2 * time.Second, refuse: map[string]bool{poisoned: true, poisonedEvent: true}, got: map[string][]byte{}}
	endpoint := httptest.NewServer(rcv)
	t.Cleanup(endpoint.Close)
	cfg := billing.Config{NATSURL: srv.ClientURL(), Endpoint: endpoint.URL, Secret: secret, Durable: "billing",
		MaxRetries: 3, InitialInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond,
		RequestTimeout: 500 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	stop := runExport(t, cfg)

	js := store.JetStream()
	waitFor(t, func() bool {
		return len(rcv.received()) == len(want)-2 && count(t, js, billing.DeadLetterStream) == 2 && settled(t, js, "billing")
	})
	stop()
	got := rcv.received()
	for id := range want {
		if _, ok := got[id]; !ok && id != poisoned && id != poisonedEvent {
			t.Errorf("%s never delivered", id)
		}
	}
	for id, body := range got {
		if !want[id] {
			t.Errorf("%s delivered, not billable: %s", id, body)
		}
		if bytes.Contains(body, []byte("MUST-NOT-LEAVE")) || bytes.Contains(body, []byte("secret_hash")) {
			t.Errorf("secret material delivered: %s", body)
		}
	}
	if _, ok := got[poisoned]; ok {
		t.Fatalf("the refused record was delivered")
	}
	if _, ok := got[poisonedEvent]; ok {
		t.Fatalf("the refused event was delivered")
	}

	// The receiver takes it now: the replay delivers the dead letter, once.
	rcv.mu.Lock()
	delete(rcv.refuse, poisoned)
	delete(rcv.refuse, poisonedEvent)
	rcv.mu.Unlock()
	nc := srv.Connect(t)
	sent, err := billing.ReplayDeadLetters(ctx, nc, cfg)
	if err != nil || sent != 2 {
		t.Fatalf("replay: %d, %v", sent, err)
	}
	var env billing.Envelope
	if err := json.Unmarshal(rcv.received()[poisoned], &env); err != nil || env.Type != domain.EventTypeUsageRecorded || env.OrgID != org {
		t.Fatalf("replayed %s (%v)", rcv.received()[poisoned], err)
	}
	if err := json.Unmarshal(rcv.received()[poisonedEvent], &env); err != nil || env.Type != domain.TypeAPIKeyCreated {
		t.Fatalf("replayed %s (%v)", rcv.received()[poisonedEvent], err)
	}
	if sent, err := billing.ReplayDeadLetters(ctx, nc, cfg); err != nil || sent != 0 {
		t.Fatalf("second replay: %d, %v", sent, err)
	}

	// Each webhook, a replayed letter too, says where its message stands in its
	// stream (the log's position for an event) and which atomic append it came in:
	// a receiver orders what it got and knows what was written together.
	positions := map[string]uint64{}
	for i, id := range events {
		positions[id] = uint64(i + 1)
	}
	for i, r := range recs {
		positions[eventstore.UsageMsgID(org, r.RecordID)] = uint64(i + 1)
	}
	batches := map[string]string{}
	for id, body := range rcv.received() {
		var env billing.Envelope
		if err := json.Unmarshal(body, &env); err != nil || env.Position != fmt.Sprint(positions[id]) {
			t.Errorf("%s at position %d, sent as %s (%v)", id, positions[id], body, err)
		}
		batches[id] = env.BatchID
	}
	if b := batches[events[0]]; b == "" || b != batches[events[1]] || batches[events[3]] == "" || batches[events[3]] != batches[events[4]] ||
		b == batches[events[3]] || batches[events[5]] != "" {
		t.Errorf("the appends' batch ids: %v", batches)
	}

	// A restarted export resumes: only what was published since arrives.
	before := rcv.delivered()
	late := recs[0]
	late.RecordID = "r-late"
	if _, err := store.PublishUsage(ctx, []domain.UsageRecorded{late}); err != nil {
		t.Fatal(err)
	}
	stop = runExport(t, cfg)
	waitFor(t, func() bool {
		_, ok := rcv.received()[eventstore.UsageMsgID(org, "r-late")]
		return ok && settled(t, js, "billing")
	})
	stop()
	if after := rcv.delivered(); after != before+1 {
		t.Fatalf("the restarted export delivered %d messages, want 1", after-before)
	}
}

// openLog starts a NATS server of the test's own and opens the log on it.
func openLog(t *testing.T) (*natstest.Server, *eventstore.Store) {
	t.Helper()
	srv := natstest.Start(t)
	store, err := eventstore.Open(context.Background(), srv.Connect(t), eventstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return srv, store
}

func runExport(t *testing.T, cfg billing.Config) (stop func()) {
	t.Helper()
	exp, err := billing.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- exp.Run(ctx) }()
	select {
	case <-exp.Running():
	case err := <-done:
		t.Fatalf("export: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("export: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settled: the export's consumers have nothing pending and nothing unacknowledged,
// so stopping it now leaves nothing to redeliver.
func settled(t *testing.T, js jetstream.JetStream, durable string) bool {
	for stream, name := range map[string]string{eventstore.UsageStream: durable + "-usage", eventstore.EventsStream: durable + "-events"} {
		c, err := js.Consumer(context.Background(), stream, name)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return false
		}
	}
	return true
}

func count(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		return 0
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// readIDs is the ce-id of every message of a stream, in order.
func readIDs(t *testing.T, js jetstream.JetStream, stream string) []string {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for m := range batch.Messages() {
		ids = append(ids, m.Headers().Get(eventstore.HeaderID))
	}
	return ids
}

// TestTheDeadLettersKeepTheConfiguredReplicas: the dead-letter stream is created with
// the replicas the export is configured with (a dead letter is a billable event
// already acknowledged on its own stream); a server that cannot keep them refuses
// the export rather than keep one copy.
func TestTheDeadLettersKeepTheConfiguredReplicas(t *testing.T) {
	srv, _ := openLog(t)
	cfg := billing.Config{NATSURL: srv.ClientURL(), Endpoint: "http://127.0.0.1:1", Secret: secret, Durable: "billing", Replicas: 3,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, err := billing.New(context.Background(), cfg); err == nil {
		t.Fatal("a single server took a dead-letter stream of 3 replicas")
	}
	cfg.Replicas = 1
	runExport(t, cfg)
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), billing.DeadLetterStream)
	if err != nil || st.CachedInfo().Config.Replicas != 1 {
		t.Fatalf("dead letters: %v", err)
	}
}

// TestDeadLettersBelongToTheirExport: two exports (two durables, two endpoints)
// keep their dead letters apart: a replay for one never delivers the other's
// letters to its endpoint, and the other's replay still has them.
func TestDeadLettersBelongToTheirExport(t *testing.T) {
	ctx := context.Background()
	srv, store := openLog(t)
	org, ws := domain.NewOrganizationID(), domain.NewWorkspaceID()
	rec := domain.UsageRecorded{RecordID: "r-1", OrganizationID: org, WorkspaceID: ws, CredentialID: domain.NewAPIKeyID(), Product: domain.BusinessMaaS,
		Resource: "qwen-max", Units: map[string]int64{"calls": 1}, CostMicros: 7, Currency: "CNY", At: time.Now().UTC(), BillingKind: "workspace", BillingID: ws}
	if _, err := store.PublishUsage(ctx, []domain.UsageRecorded{rec}); err != nil {
		t.Fatal(err)
	}
	id := eventstore.UsageMsgID(org, "r-1")
	config := func(durable string, rcv *receiver) billing.Config {
		endpoint := httptest.NewServer(rcv)
		t.Cleanup(endpoint.Close)
		return billing.Config{NATSURL: srv.ClientURL(), Endpoint: endpoint.URL, Secret: secret, Durable: durable,
			MaxRetries: 1, InitialInterval: 10 * time.Millisecond, MaxInterval: 20 * time.Millisecond,
			RequestTimeout: 500 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	}
	// failFirst -1: no failure and no stall before the refusals.
	a := &receiver{t: t, failFirst: -1, refuse: map[string]bool{}, got: map[string][]byte{}}
	b := &receiver{t: t, failFirst: -1, refuse: map[string]bool{id: true}, got: map[string][]byte{}}
	cfgA, cfgB := config("a", a), config("b", b)
	stopA, stopB := runExport(t, cfgA), runExport(t, cfgB)
	js := store.JetStream()
	waitFor(t, func() bool {
		return len(a.received()) == 1 && count(t, js, billing.DeadLetterStream) == 1 && settled(t, js, "a") && settled(t, js, "b")
	})
	stopA()
	stopB()
	b.mu.Lock()
	delete(b.refuse, id)
	b.mu.Unlock()
	nc := srv.Connect(t)
	before := a.delivered()
	if sent, err := billing.ReplayDeadLetters(ctx, nc, cfgA); err != nil || sent != 0 {
		t.Fatalf("export a's replay: %d, %v", sent, err)
	}
	if after := a.delivered(); after != before {
		t.Fatalf("export a's endpoint got export b's dead letter")
	}
	if sent, err := billing.ReplayDeadLetters(ctx, nc, cfgB); err != nil || sent != 1 {
		t.Fatalf("export b's replay: %d, %v", sent, err)
	}
	if _, ok := b.received()[id]; !ok {
		t.Fatal("export b's endpoint never got its dead letter")
	}
}
