package commands_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/idempotency"
)

// dyingStore is the real idempotency store of an instance that dies between its
// append and the record of the result: Complete never lands.
type dyingStore struct{ idempotency.Store }

func (dyingStore) Complete(context.Context, string, string) error {
	return errors.New("the instance died")
}

// TestARetryAfterTheInstanceDiedFindsTheFirstAttempt: the first attempt's events
// are in the log but its result was never recorded; a minute later the retry takes
// the claim over, finds the account in the log and answers it: one account, not a
// second one nor a 409 name_taken.
func TestARetryAfterTheInstanceDiedFindsTheFirstAttempt(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	real := f.deps.Idempotency.(idempotency.Store)
	dying := f.deps
	dying.Idempotency = dyingStore{real}
	first := commands.New(dying)
	c := admin(t, first)
	cmd := commands.CreateAccount{Caller: c, Idempotency: commands.Idempotency{Key: "k-1", Fingerprint: "f-1"}, Name: "carol"}
	if _, err := first.CreateAccount(ctx, cmd); err == nil {
		t.Fatal("the dying instance answered")
	}
	second := commands.New(f.deps)
	if _, err := second.CreateAccount(ctx, cmd); !errors.Is(err, commands.ErrIdempotencyInProgress) {
		t.Fatalf("a retry while the claim is fresh: %v", err)
	}
	if _, err := real.Pool.Exec(ctx, `UPDATE idempotency_keys SET claimed_at = claimed_at - interval '2 minutes'`); err != nil {
		t.Fatal(err)
	}
	r, err := second.CreateAccount(ctx, cmd)
	if err != nil || !r.Replayed || r.Name != "carol" {
		t.Fatalf("the retry after the holder died: %+v %v", r, err)
	}
	events, _, err := f.store.Load(ctx, domain.AggregateOrganization, c.OrganizationID, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if _, ok := e.Event.(domain.AccountCreated); ok {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d accounts created for one request", n)
	}
	again, err := second.CreateAccount(ctx, cmd)
	if err != nil || again.AccountID != r.AccountID {
		t.Fatalf("a later retry: %+v %v", again, err)
	}
}
