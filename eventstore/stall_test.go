package eventstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/eventstore/natstest"
	"github.com/keyledger/keyledger/fault"
)

// batchGets matches the batch direct gets that load an aggregate, not the direct
// get of a subject's last message.
func batchGets(subject string) bool { return subject == "$JS.API.DIRECT.GET."+eventstore.EventsStream }

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
