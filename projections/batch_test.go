package projections

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/projections/pgtest"
)

// TestABatchCommitsWholeOrNotAtAll: a batch and its checkpoint are one transaction
// on both paths (one pipeline of statements for a few rows, copies for more): a
// statement PostgreSQL refuses, or a checkpoint that is not where the batch starts,
// leaves neither a row nor the checkpoint moved; a sound batch writes both.
func TestABatchCommitsWholeOrNotAtAll(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	count := func() (keys int, checkpoint int64) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM api_keys), COALESCE((SELECT position FROM projection_checkpoints WHERE name = 'p'), 0)`).Scan(&keys, &checkpoint); err != nil {
			t.Fatal(err)
		}
		return keys, checkpoint
	}
	batch := func(rows int, poison bool) *Batch {
		var b Batch
		at := time.Now()
		for i := range rows {
			b.Insert("api_keys", apiKeyColumns, fmt.Sprintf("key_%d_%d", rows, i), "ws_1", "search", nil, []string{}, "", nil, "kls_…", nil, at, at, int64(i), "", "")
		}
		if poison { // text PostgreSQL refuses, after the rows
			b.Exec(`UPDATE api_keys SET note = $1 WHERE id = $2`, "a\x00b", "key_0")
		}
		return &b
	}
	for _, rows := range []int{3, pipelinedRows + 10} {
		from, cp := count()
		if err := batch(rows, true).commit(ctx, pool, "p", uint64(cp), uint64(cp)+1); err == nil {
			t.Fatalf("%d rows: a refused statement committed", rows)
		}
		if err := batch(rows, false).commit(ctx, pool, "p", uint64(cp)+5, uint64(cp)+6); err == nil {
			t.Fatalf("%d rows: committed from a checkpoint it is not at", rows)
		}
		if keys, now := count(); keys != from || now != cp {
			t.Fatalf("%d rows: a failed batch left %d keys (had %d), checkpoint %d (was %d)", rows, keys, from, now, cp)
		}
		if err := batch(rows, false).commit(ctx, pool, "p", uint64(cp), uint64(cp)+1); err != nil {
			t.Fatalf("%d rows: %v", rows, err)
		}
		if keys, now := count(); keys != from+rows || now != cp+1 {
			t.Fatalf("%d rows: %d keys, checkpoint %d after the sound batch", rows, keys-from, now)
		}
	}
}
