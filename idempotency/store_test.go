package idempotency_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/idempotency"
	"github.com/keyledger/keyledger/projections/pgtest"
)

// TestRecordsAreForgottenAfterADay: a record older than 24 hours is purged, a
// younger one kept, and the old key then starts a new request.
func TestRecordsAreForgottenAfterADay(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := idempotency.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	s := idempotency.Store{Pool: pool}
	for _, key := range []string{"old", "young"} {
		if _, _, err := s.Claim(ctx, "org/acct", key, "f"); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, "org/acct", key); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'`); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Purge(ctx); err != nil || n != 1 {
		t.Fatalf("purged %d, %v", n, err)
	}
	claim, prior, err := s.Claim(ctx, "org/acct", "old", "another body")
	if err != nil || prior != nil || claim.TakeOver {
		t.Fatalf("the forgotten key: %+v %+v %v", claim, prior, err)
	}
	if _, prior, err := s.Claim(ctx, "org/acct", "young", "f"); err != nil || prior == nil || !prior.Completed {
		t.Fatalf("the young record: %+v %v", prior, err)
	}
}
