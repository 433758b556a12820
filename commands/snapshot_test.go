package commands_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// countingStore is the real event store, counting the events loads return.
type countingStore struct {
	*eventstore.Store
	loaded atomic.Int64
}

func (c *countingStore) LoadEvents(ctx context.Context, kind, id string, after, end uint64) ([]domain.Recorded, uint64, error) {
	events, last, err := c.Store.LoadEvents(ctx, kind, id, after, end)
	c.loaded.Add(int64(len(events)))
	return events, last, err
}

// TestAColdInstanceStartsFromTheLatestSnapshot: an organization of 1,200 events is
// loaded by a second instance from its snapshot and the few events after it, and the
// state it decides on is the one a full replay gives.
func TestAColdInstanceStartsFromTheLatestSnapshot(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	snaps, err := eventstore.OpenSnapshots(ctx, f.store.JetStream(), 1)
	if err != nil {
		t.Fatal(err)
	}
	deps := f.deps
	deps.Snapshots = snaps
	first := commands.New(deps)
	c := admin(t, first)
	for i := range 1200 {
		if _, err := first.CreateAccount(ctx, commands.CreateAccount{Caller: c, Name: fmt.Sprintf("user-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Snapshots are stored in the background: wait for the one taken near 1,000.
	var at uint64
	for deadline := time.Now().Add(5 * time.Second); at < 1000; time.Sleep(10 * time.Millisecond) {
		if _, at, _, err = snaps.Load(ctx, domain.AggregateOrganization, c.OrganizationID); err != nil || time.Now().After(deadline) {
			t.Fatalf("no snapshot near 1,000 events after 1,200: at %d, %v", at, err)
		}
	}
	for _, tc := range []struct {
		name            string
		snapshots       commands.Snapshots
		atLeast, atMost int64
	}{{"from the snapshot", snaps, 1, 1203 - int64(at)}, {"full replay", nil, 1201, 1 << 30}} {
		store := &countingStore{Store: f.store}
		d := deps
		d.Store, d.Snapshots = store, tc.snapshots
		cold := commands.New(d)
		// A decision on the loaded state: the 1,200th name is taken, a new one is not.
		if _, err := cold.CreateAccount(ctx, commands.CreateAccount{Caller: c, Name: "USER-1199"}); err != domain.ErrAccountNameTaken {
			t.Fatalf("%s: the cold state lost an account: %v", tc.name, err)
		}
		r, err := cold.CreateAccount(ctx, commands.CreateAccount{Caller: c, Name: "newcomer-" + tc.name})
		if err != nil {
			t.Fatal(err)
		}
		me, err := cold.Me(ctx, c, nil)
		if err != nil || me.Account.AccountID != c.AccountID || r.AccountID == "" {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n := store.loaded.Load(); n < tc.atLeast || n > tc.atMost {
			t.Fatalf("%s: loaded %d events, expected %d to %d", tc.name, n, tc.atLeast, tc.atMost)
		}
		t.Logf("%s: %d events loaded", tc.name, store.loaded.Load())
	}
}
