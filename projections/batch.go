package projections

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Batch collects the view changes of a run of events, to be committed in one
// transaction with the checkpoint. Consecutive inserts into one table become one
// COPY; consecutive statements one pipelined round trip. Order between the kinds is
// preserved. Deferred inserts are copied after them, then deferred statements
// (keyed, last one wins) run at the end.
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

// DeferBuild is Defer with a statement built when the batch is flushed, from the
// state the whole batch left (a tree's root, computed once rather than per event).
func (b *Batch) DeferBuild(key string, build func() (string, []any)) {
	b.Defer(key, "")
	b.final[b.deferred[key]].build = build
}

func (b *Batch) flush(ctx context.Context, tx pgx.Tx) error {
	for i, o := range b.final {
		if o.build != nil {
			b.final[i].sql, b.final[i].args = o.build()
		}
	}
	ops := append(append(b.ops, b.lateRows...), b.final...)
	for i := 0; i < len(ops); {
		j := i + 1
		if ops[i].table != "" {
			for j < len(ops) && ops[j].table == ops[i].table && slices.Equal(ops[j].columns, ops[i].columns) {
				j++
			}
			rows := make([][]any, 0, j-i)
			for _, o := range ops[i:j] {
				rows = append(rows, o.row)
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{ops[i].table}, ops[i].columns, pgx.CopyFromRows(rows)); err != nil {
				return fmt.Errorf("copy into %s: %w", ops[i].table, err)
			}
		} else {
			for j < len(ops) && ops[j].table == "" {
				j++
			}
			pb := &pgx.Batch{}
			for _, o := range ops[i:j] {
				pb.Queue(o.sql, o.args...)
			}
			if err := tx.SendBatch(ctx, pb).Close(); err != nil {
				return fmt.Errorf("view statements: %w", err)
			}
		}
		i = j
	}
	return nil
}
