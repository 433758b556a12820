package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/eventstore/natstest"
	"github.com/keyledger/keyledger/fault"
)

// The contract suite of the event store, against a real JetStream (in-process).

var now = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func open(t *testing.T) (*eventstore.Store, *natstest.Server) {
	t.Helper()
	srv := natstest.Start(t)
	s, err := eventstore.Open(context.Background(), srv.Connect(t), eventstore.Config{Source: "test", Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return s, srv
}

func member(id string) domain.Event { return domain.MemberAuthorized{AccountID: id, At: now} }

var meta = domain.Metadata{OrganizationID: "org_1", WorkspaceID: "ws_1", ActorID: "acct_1", CredentialID: "AK1", SourceIP: "10.0.0.1", RequestID: "req-1"}

func TestAppendAndLoad(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	v1, err := s.Append(ctx, "workspace", "ws_1", 0, []domain.Event{member("a")}, meta)
	if err != nil || v1 != 1 {
		t.Fatalf("first append: %d %v", v1, err)
	}
	if _, err := s.Append(ctx, "workspace", "ws_2", 0, []domain.Event{member("x")}, meta); err != nil {
		t.Fatal(err)
	}
	v3, err := s.Append(ctx, "workspace", "ws_1", v1, []domain.Event{member("b"), member("c")}, meta)
	if err != nil || v3 != 4 {
		t.Fatalf("batch append: %d %v", v3, err)
	}
	recs, last, err := s.Load(ctx, "workspace", "ws_1", 0)
	if err != nil || last != 4 || len(recs) != 3 {
		t.Fatalf("load: %d records, last %d, %v", len(recs), last, err)
	}
	for i, want := range []string{"a", "b", "c"} {
		if got := recs[i].Event.(domain.MemberAuthorized).AccountID; got != want {
			t.Errorf("record %d: %s", i, got)
		}
	}
	tail, last, err := s.Load(ctx, "workspace", "ws_1", 1)
	if err != nil || len(tail) != 2 || last != 4 || tail[0].Sequence != 3 {
		t.Fatalf("load after 1: %v %d %v", tail, last, err)
	}
	none, last, err := s.Load(ctx, "workspace", "ws_9", 0)
	if err != nil || len(none) != 0 || last != 0 {
		t.Fatalf("load of unknown aggregate: %v %d %v", none, last, err)
	}
	if seq, err := s.LastSequence(ctx, "workspace", "ws_1"); err != nil || seq != 4 {
		t.Fatalf("last sequence %d %v", seq, err)
	}
}

func TestLoadPagesThroughLongAggregates(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	var v uint64
	for i := 0; i < 3; i++ {
		batch := make([]domain.Event, 1000)
		for j := range batch {
			batch[j] = member("m")
		}
		var err error
		if v, err = s.Append(ctx, "workspace", "ws_big", v, batch, meta); err != nil {
			t.Fatal(err)
		}
	}
	recs, last, err := s.Load(ctx, "workspace", "ws_big", 0)
	if err != nil || len(recs) != 3000 || last != v {
		t.Fatalf("loaded %d, last %d (want %d), %v", len(recs), last, v, err)
	}
}

func TestAppendConflicts(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	if _, err := s.Append(ctx, "workspace", "ws_1", 0, []domain.Event{member("a")}, meta); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "workspace", "ws_1", 0, []domain.Event{member("b")}, meta); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("stale single append: %v", err)
	}
	if _, err := s.Append(ctx, "workspace", "ws_1", 0, []domain.Event{member("b"), member("c")}, meta); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("stale batch append: %v", err)
	}
	recs, _, _ := s.Load(ctx, "workspace", "ws_1", 0)
	if len(recs) != 1 {
		t.Fatalf("a refused batch must leave nothing, got %d events", len(recs))
	}
}

func TestConcurrentAppendsOneWins(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Append(ctx, "workspace", "ws_race", 0, []domain.Event{member("a"), member("b")}, meta); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, domain.ErrConflict) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	recs, _, _ := s.Load(ctx, "workspace", "ws_race", 0)
	if wins != 1 || len(recs) != 2 {
		t.Fatalf("%d winners, %d events", wins, len(recs))
	}
}

func TestEnvelopeIsCloudEvents(t *testing.T) {
	ctx := context.Background()
	s, srv := open(t)
	if _, err := s.Append(ctx, "workspace", "ws_1", 0, []domain.Event{member("a")}, meta); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(srv.Connect(t))
	stream, _ := js.Stream(ctx, eventstore.EventsStream)
	m, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ce-specversion": "1.0", "ce-type": domain.TypeMemberAuthorized, "ce-source": "test", "ce-subject": "ws_1",
		"ce-time": "2026-11-28T10:00:00Z", "ce-actor": "acct_1", "ce-credential": "AK1", "ce-sourceip": "10.0.0.1",
		"ce-requestid": "req-1", "ce-orgid": "org_1", "ce-workspaceid": "ws_1", "content-type": "application/json",
	}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if id := m.Header.Get("ce-id"); len(id) != 26 || m.Header.Get("Nats-Msg-Id") != id {
		t.Errorf("ce-id %q, Nats-Msg-Id %q", id, m.Header.Get("Nats-Msg-Id"))
	}
	if string(m.Data) != `{"account_id":"a","at":"2026-11-28T10:00:00Z"}` {
		t.Errorf("body %s", m.Data)
	}
	if m.Subject != "keyledger.events.workspace.ws_1" {
		t.Errorf("subject %s", m.Subject)
	}
}

func TestStreamIsAppendOnly(t *testing.T) {
	ctx := context.Background()
	s, srv := open(t)
	if _, err := s.Append(ctx, "workspace", "ws_1", 0, []domain.Event{member("a")}, meta); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(srv.Connect(t))
	stream, _ := js.Stream(ctx, eventstore.EventsStream)
	if err := stream.DeleteMsg(ctx, 1); err == nil {
		t.Error("deleting an event must be refused by the server")
	}
	if err := stream.Purge(ctx); err == nil {
		t.Error("purging the log must be refused by the server")
	}
	info, _ := stream.Info(ctx)
	if !info.Config.AllowAtomicPublish || info.Config.Duplicates != 2*time.Minute || info.State.Msgs != 1 {
		t.Errorf("config %+v state %+v", info.Config, info.State)
	}
}

func TestSubscribeFromPosition(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	for i := 0; i < 5; i++ {
		if _, err := s.Append(ctx, "workspace", "ws_1", uint64(i), []domain.Event{member("a")}, meta); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := s.Subscribe(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	var seqs []uint64
	for len(seqs) < 3 {
		recs, err := sub.Next(ctx, 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			t.Fatalf("timed out after %v", seqs)
		}
		for _, r := range recs {
			seqs = append(seqs, r.Sequence)
		}
	}
	if len(seqs) != 3 || seqs[0] != 3 || seqs[2] != 5 {
		t.Fatalf("got %v", seqs)
	}
	// A new event arrives while waiting.
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = s.Append(ctx, "workspace", "ws_1", 5, []domain.Event{member("late")}, meta)
	}()
	recs, err := sub.Next(ctx, 10, 3*time.Second)
	if err != nil || len(recs) != 1 || recs[0].Sequence != 6 || recs[0].Metadata.ActorID != "acct_1" {
		t.Fatalf("live event: %v %v", recs, err)
	}
}

func TestOutageIsUnavailable(t *testing.T) {
	ctx := context.Background()
	s, srv := open(t)
	if _, err := s.Append(ctx, "workspace", "ws_1", 0, []domain.Event{member("a")}, meta); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.Append(short, "workspace", "ws_1", 1, []domain.Event{member("b")}, meta); !errors.Is(err, fault.ErrUnavailable) {
		t.Fatalf("append during outage: %v", err)
	}
	srv.Restart(t)
	// What was acknowledged before the outage is still there.
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, _, err := s.Load(ctx, "workspace", "ws_1", 0)
		if err == nil {
			if len(recs) != 1 {
				t.Fatalf("after restart: %d events", len(recs))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAppendManyIsAllOrNothing: events of several aggregates are one atomic batch,
// each aggregate's expected sequence checked; one stale expectation writes nothing.
func TestAppendManyIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	v1, err := s.Append(ctx, "workspace", "ws_1", 0, []domain.Event{member("a")}, meta)
	if err != nil {
		t.Fatal(err)
	}
	versions, err := s.AppendMany(ctx, "workspace", []domain.Change{
		{ID: "ws_1", Expected: v1, Events: []domain.Event{member("b"), member("c")}},
		{ID: "ws_3", Expected: 0},
		{ID: "ws_2", Expected: 0, Events: []domain.Event{member("x")}},
	}, meta)
	if err != nil || len(versions) != 3 || versions[0] != 3 || versions[1] != 0 || versions[2] != 4 {
		t.Fatalf("append many: %v %v", versions, err)
	}
	recs, _, err := s.Load(ctx, "workspace", "ws_2", 0)
	if err != nil || len(recs) != 1 || recs[0].Sequence != 4 || recs[0].Metadata.WorkspaceID != "ws_2" {
		t.Fatalf("ws_2: %+v %v", recs, err)
	}
	before, _ := s.Position(ctx)
	_, err = s.AppendMany(ctx, "workspace", []domain.Change{
		{ID: "ws_2", Expected: 4, Events: []domain.Event{member("y")}},
		{ID: "ws_1", Expected: v1, Events: []domain.Event{member("d")}}, // stale: ws_1 is at 3
	}, meta)
	if !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("stale expectation: %v", err)
	}
	if after, _ := s.Position(ctx); after != before {
		t.Fatalf("a refused batch wrote: %d → %d", before, after)
	}
}

// TestAnUnsetRetentionLeavesTheAuditStreamAsItIs: a store opened without an audit
// retention (a CLI command) neither shortens nor lengthens the one the servers set.
func TestAnUnsetRetentionLeavesTheAuditStreamAsItIs(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	retention := func() time.Duration {
		t.Helper()
		st, err := jetstream.New(srv.Connect(t))
		if err != nil {
			t.Fatal(err)
		}
		s, err := st.Stream(ctx, eventstore.AuditStream)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.MaxAge
	}
	if _, err := eventstore.Open(ctx, srv.Connect(t), eventstore.Config{AuditMaxAge: 48 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := eventstore.Open(ctx, srv.Connect(t), eventstore.Config{}); err != nil {
		t.Fatal(err)
	}
	if got := retention(); got != 48*time.Hour {
		t.Fatalf("retention %v after a store opened without one, want 48h", got)
	}
	if _, err := eventstore.Open(ctx, srv.Connect(t), eventstore.Config{AuditMaxAge: 72 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got := retention(); got != 72*time.Hour {
		t.Fatalf("retention %v after a store set it, want 72h", got)
	}
}

// TestASubscriptionHandsOverAppendsWhole: a consumer never sees part of an atomic
// append (a role's new user before the workspace it loses, which together
// authorize nothing): a batch of records ends at the end of an append, beyond the
// size asked for if need be, whatever the subject filter.
func TestASubscriptionHandsOverAppendsWhole(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	if _, err := s.Append(ctx, "workspace", "ws_1", 0, []domain.Event{member("a"), member("b"), member("c")}, meta); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendMany(ctx, "workspace", []domain.Change{{ID: "ws_2", Events: []domain.Event{member("d")}},
		{ID: "ws_3", Events: []domain.Event{member("e"), member("f")}}}, meta); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "workspace", "ws_4", 0, []domain.Event{member("g")}, meta); err != nil {
		t.Fatal(err)
	}
	for _, filters := range [][]string{nil, {eventstore.Subject("workspace", "*")}} {
		sub, err := s.Subscribe(ctx, 0, filters...)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for len(got) < 3 {
			recs, err := sub.Next(ctx, 1, 5*time.Second)
			if err != nil || len(recs) == 0 {
				t.Fatalf("next: %v %v", recs, err)
			}
			var ids string
			for _, r := range recs {
				ids += r.Event.(domain.MemberAuthorized).AccountID
			}
			got = append(got, ids)
		}
		sub.Stop()
		if fmt.Sprint(got) != "[abc def g]" {
			t.Errorf("batches handed over (filters %v): %v, want [abc def g]", filters, got)
		}
	}
}
