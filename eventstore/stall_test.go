package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/eventstore/natstest"
	"github.com/keyledger/keyledger/fault"
)

// batchGets matches the batch direct gets that load an aggregate, not the direct
// get of a subject's last message.
func batchGets(subject string) bool { return subject == "$JS.API.DIRECT.GET."+eventstore.EventsStream }

// TestABufferingConnectionIsRefused: a connection that buffers publishes while
// disconnected would land, after reconnecting, an append already answered as failed.
func TestABufferingConnectionIsRefused(t *testing.T) {
	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := eventstore.Open(context.Background(), nc, eventstore.Config{}); !errors.Is(err, eventstore.ErrBufferingConnection) {
		t.Fatalf("open on a buffering connection: %v", err)
	}
}

// TestAStalledLoadIsAnErrorNotAnEmptyAggregate: a load that does not reach the
// aggregate's last event is unavailable, never "no events".
func TestAStalledLoadIsAnErrorNotAnEmptyAggregate(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	proxy := srv.StartProxy(t)
	s, err := eventstore.Open(ctx, proxy.Connect(t), eventstore.Config{Source: "test", Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "workspace", "ws_1", 0, []domain.Event{member("a"), member("b")}, meta); err != nil {
		t.Fatal(err)
	}
	proxy.Stall(batchGets)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	recs, last, err := s.Load(ctx, "workspace", "ws_1", 0)
	if !errors.Is(err, fault.ErrUnavailable) {
		t.Fatalf("a stalled load answered %d records up to %d, err %v", len(recs), last, err)
	}
	proxy.Stall(nil)
	if recs, last, err := s.Load(ctx, "workspace", "ws_1", 0); err != nil || len(recs) != 2 || last != 2 {
		t.Fatalf("after the stall: %d records up to %d, %v", len(recs), last, err)
	}
}

// TestAnOldServerIsRefusedBeforeAnyWrite: a server without atomic batch publish
// would store half of a command; keyledger refuses it at start, naming the version
// it needs, and writes nothing.
func TestAnOldServerIsRefusedBeforeAnyWrite(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	proxy := srv.StartProxy(t)
	proxy.AnnounceVersion("2.9.10")
	_, err := eventstore.Open(ctx, proxy.Connect(t), eventstore.Config{})
	if !errors.Is(err, eventstore.ErrRefused) || !strings.Contains(err.Error(), "2.9.10") || !strings.Contains(err.Error(), eventstore.MinServerVersion) {
		t.Fatalf("open on 2.9.10: %v", err)
	}
	js, _ := jetstream.New(srv.Connect(t))
	if _, err := js.Stream(ctx, eventstore.EventsStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("the refused open created the log: %v", err)
	}
}

// TestALogConfiguredOtherwiseIsRefused: a log stream that allows purges, or lacks
// atomic publish, is not the append-only, all-or-nothing log keyledger needs.
func TestALogConfiguredOtherwiseIsRefused(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	js, _ := jetstream.New(srv.Connect(t))
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: eventstore.EventsStream, Subjects: []string{eventstore.EventsSubject},
		Storage: jetstream.FileStorage, DenyDelete: true, AllowDirect: true, Duplicates: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	_, err := eventstore.Open(ctx, srv.Connect(t), eventstore.Config{})
	if !errors.Is(err, eventstore.ErrRefused) || !strings.Contains(err.Error(), "deny_purge") || !strings.Contains(err.Error(), "allow_atomic") {
		t.Fatalf("open on a purgeable log: %v", err)
	}
}

// TestSlowUsageAcknowledgementsWithinTheWriteTimeoutLoseNothing: a server that
// acknowledges late, but within the write timeout, gets every record of a batch
// larger than the publishes kept in flight; none is refused as unavailable because
// the client's own bound on waiting for room (200 ms by default) ran out first.
func TestSlowUsageAcknowledgementsWithinTheWriteTimeoutLoseNothing(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	proxy := srv.StartProxy(t)
	s, err := eventstore.Open(ctx, proxy.Connect(t), eventstore.Config{Source: "test", WriteTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]domain.UsageRecorded, 1000)
	for i := range recs {
		recs[i] = domain.UsageRecorded{RecordID: fmt.Sprintf("r-%d", i), OrganizationID: "org_1", WorkspaceID: "ws_1", CredentialID: "key_1",
			Product: domain.BusinessMaaS, Resource: "m", Units: map[string]int64{}, CostMicros: 1, Currency: "CNY", At: now,
			BillingKind: "workspace", BillingID: "ws_1"}
	}
	proxy.HoldReplies(time.Second)
	out, err := s.PublishUsage(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, o := range out {
		if o.Err != nil {
			failed++
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d records refused while the server was slow within the write timeout: %v", failed, len(recs), out[len(out)-1].Err)
	}
}

// TestCurrentAnswersComeFromTheStreamLeader: where an aggregate ends and whether a
// data key is there are asked of the stream's leader, never by a direct get, which
// any replica answers (one that lags would say an aggregate has not moved, or a
// data key is not there: a stale authentication, a live key taken for lost). With
// every direct get stalled, both still answer.
func TestCurrentAnswersComeFromTheStreamLeader(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	proxy := srv.StartProxy(t)
	s, err := eventstore.Open(ctx, proxy.Connect(t), eventstore.Config{Source: "test", Clock: func() time.Time { return now }, ReadTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	vault, err := eventstore.OpenVault(ctx, s.JetStream(), make([]byte, 32), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "workspace", "ws_1", 0, []domain.Event{member("a"), member("b")}, meta); err != nil {
		t.Fatal(err)
	}
	sealed, wrapped, err := vault.Seal([]string{"key_1"}, [][]byte{[]byte("secret")})
	if err != nil {
		t.Fatal(err)
	}
	if err := vault.Store(ctx, []string{"key_1"}, wrapped)(); err != nil {
		t.Fatal(err)
	}
	if err := vault.PlantCanary(ctx); err != nil {
		t.Fatal(err)
	}
	proxy.Stall(func(subject string) bool { return strings.HasPrefix(subject, "$JS.API.DIRECT.GET.") })
	defer proxy.Stall(nil)
	if last, err := s.LastSequence(ctx, "workspace", "ws_1"); err != nil || last != 2 {
		t.Fatalf("last sequence with direct gets stalled: %d %v", last, err)
	}
	if last, err := s.LastSequence(ctx, "workspace", "ws_none"); err != nil || last != 0 {
		t.Fatalf("last sequence of no aggregate: %d %v", last, err)
	}
	if lost, err := vault.Lost(ctx, "key_1", sealed[0]); err != nil || lost {
		t.Fatalf("a stored data key with direct gets stalled: lost %v, %v", lost, err)
	}
	if whole, err := vault.Whole(ctx); err != nil || !whole {
		t.Fatalf("the canary with direct gets stalled: %v %v", whole, err)
	}
	if err := vault.Destroy(ctx, "key_1"); err != nil {
		t.Fatal(err)
	}
	if lost, err := vault.Lost(ctx, "key_1", sealed[0]); err != nil || !lost {
		t.Fatalf("a destroyed data key: lost %v, %v", lost, err)
	}
}

// TestALeaderThatDoesNotAnswerIsAnErrorInTime: a data key read whose caller set no
// deadline (the data key check, a reveal) is bounded all the same: a stream
// without a leader does not answer.
func TestALeaderThatDoesNotAnswerIsAnErrorInTime(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	proxy := srv.StartProxy(t)
	s, err := eventstore.Open(ctx, proxy.Connect(t), eventstore.Config{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	vault, err := eventstore.OpenVault(ctx, s.JetStream(), make([]byte, 32), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	proxy.Stall(func(subject string) bool { return strings.HasPrefix(subject, "$JS.API.STREAM.MSG.GET.") })
	defer proxy.Stall(nil)
	done := make(chan error, 1)
	go func() { _, err := vault.Lost(ctx, "key_1", []byte("sealed")); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, fault.ErrUnavailable) {
			t.Fatalf("a data key read the leader does not answer: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a data key read the leader does not answer never ended")
	}
}
