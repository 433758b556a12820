package projections

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Batch collects the view changes of a run of events, to be committed in one
// transaction with the checkpoint. A batch of a few rows is one pipelined round
// trip, the checkpoint's guard and move included; in a larger one, consecutive
// inserts into one table become one COPY and consecutive statements one pipelined
// round trip. Order between the kinds is preserved. Deferred inserts come after
// them, then deferred statements (keyed, last one wins) run at the end.
type Batch struct {
	ops      []op
	lateRows []op
	deferred map[string]int
	final    []op
}

type op struct {
	table   string
	columns []string
	row     []any
	sql     string
	args    []any
	build   func() (string, []any) // a deferred statement built at flush
}

// Insert adds one row; rows of consecutive Inserts into the same table with the same
// columns are copied together.
func (b *Batch) Insert(table string, columns []string, row ...any) {
	b.ops = append(b.ops, op{table: table, columns: columns, row: row})
}

// Exec adds a statement.
func (b *Batch) Exec(sql string, args ...any) {
	b.ops = append(b.ops, op{sql: sql, args: args})
}

// DeferInsert adds a row copied after every Insert and Exec, with the other
// deferred rows (for a view that writes two tables per event, whose rows would
// otherwise alternate and cut each COPY to one row).
func (b *Batch) DeferInsert(table string, columns []string, row ...any) {
	b.lateRows = append(b.lateRows, op{table: table, columns: columns, row: row})
}

// Defer adds a statement run after all others; a later Defer with the same key
// replaces it (for example "the workspace's version is now N").
func (b *Batch) Defer(key, sql string, args ...any) {
	if b.deferred == nil {
		b.deferred = map[string]int{}
	}
	if i, ok := b.deferred[key]; ok {
		b.final[i] = op{sql: sql, args: args}
		return
	}
	b.deferred[key] = len(b.final)
	b.final = append(b.final, op{sql: sql, args: args})
}

// DeferBuild is Defer with a statement built from the state the whole batch left
// (a tree's root, computed once rather than per event): once its last event is
// folded, before the views fold the next batch. The batch is written while they
// do, so the statement must not share what they change.
func (b *Batch) DeferBuild(key string, build func() (string, []any)) {
	b.Defer(key, "")
	b.final[b.deferred[key]].build = build
}

// pipelinedRows is the most rows a batch inserts one statement each, all its
// statements and the checkpoint sent at once; a larger batch copies them.
const pipelinedRows = 32

// commit writes the batch and moves the checkpoint of the projector called name
// from `from` to `to`, in one transaction that fails, changing nothing, unless the
// checkpoint is still at `from`. A small batch is one round trip (one pipeline,
// an implicit transaction); a larger one copies its runs of rows. The batch is
// sealed (its deferred statements built) before.
func (b *Batch) commit(ctx context.Context, pool *pgxpool.Pool, name string, from, to uint64) error {
	b.Exec(checkpointUpsert, name, int64(to))
	ops := b.ordered()
	if rowsIn(ops) <= pipelinedRows {
		pb := &pgx.Batch{}
		pb.Queue(checkpointGuard, name, int64(from))
		for run := range runs(ops) {
			if run[0].table == "" {
				pb.Queue(run[0].sql, run[0].args...)
				continue
			}
			var args []any // a run of rows: one INSERT of them all
			for _, o := range run {
				args = append(args, o.row...)
			}
			pb.Queue(insertSQL(run[0].table, run[0].columns, len(run)), args...)
		}
		return pool.SendBatch(ctx, pb).Close()
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, checkpointGuard, name, int64(from)); err != nil {
		return err
	}
	if err := flush(ctx, tx, ops); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// checkpointGuard fails (a division by zero) unless the projector's checkpoint is
// at $2, and locks it for the rest of the transaction.
const checkpointGuard = `SELECT 1 / (COALESCE((SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE), 0) = $2)::int`

// seal builds the deferred statements; the views must not have folded anything
// since the batch's last event.
func (b *Batch) seal() {
	for i, o := range b.final {
		if o.build != nil {
			b.final[i].sql, b.final[i].args = o.build()
		}
	}
}

// ordered are the batch's operations in the order they run: inserts and
// statements, then deferred rows, then deferred statements.
func (b *Batch) ordered() []op {
	return append(append(b.ops, b.lateRows...), b.final...)
}

func rowsIn(ops []op) int {
	n := 0
	for _, o := range ops {
		if o.table != "" {
			n++
		}
	}
	return n
}

// insertSQL inserts n rows into table.
func insertSQL(table string, columns []string, n int) string {
	var sql strings.Builder
	sql.WriteString("INSERT INTO " + pgx.Identifier{table}.Sanitize() + " (")
	for i, c := range columns {
		if i > 0 {
			sql.WriteString(", ")
		}
		sql.WriteString(pgx.Identifier{c}.Sanitize())
	}
	sql.WriteString(") VALUES ")
	for r := range n {
		if r > 0 {
			sql.WriteString(", ")
		}
		sql.WriteString("(")
		for i := range columns {
			if i > 0 {
				sql.WriteString(", ")
			}
			sql.WriteString("$" + strconv.Itoa(r*len(columns)+i+1))
		}
		sql.WriteString(")")
	}
	return sql.String()
}

// runs yields ops in order: each run of consecutive rows into one table with the
// same columns together, each statement alone.
func runs(ops []op) iter.Seq[[]op] {
	return func(yield func([]op) bool) {
		for i := 0; i < len(ops); {
			j := i + 1
			for ops[i].table != "" && j < len(ops) && ops[j].table == ops[i].table && slices.Equal(ops[j].columns, ops[i].columns) {
				j++
			}
			if !yield(ops[i:j]) {
				return
			}
			i = j
		}
	}
}

// flush runs ops in a transaction: each run of rows into one table is one COPY,
// each run of statements one pipelined round trip.
func flush(ctx context.Context, tx pgx.Tx, ops []op) error {
	pb := &pgx.Batch{}
	send := func() error {
		if pb.Len() == 0 {
			return nil
		}
		defer func() { pb = &pgx.Batch{} }()
		if err := tx.SendBatch(ctx, pb).Close(); err != nil {
			return fmt.Errorf("view statements: %w", err)
		}
		return nil
	}
	for run := range runs(ops) {
		if run[0].table == "" {
			pb.Queue(run[0].sql, run[0].args...)
			continue
		}
		if err := send(); err != nil {
			return err
		}
		rows := make([][]any, len(run))
		for i, o := range run {
			rows[i] = o.row
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{run[0].table}, run[0].columns, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copy into %s: %w", run[0].table, err)
		}
	}
	return send()
}
