package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

// ReconcileConfig is `keyledger costs reconcile`: the range of calls to check.
type ReconcileConfig struct {
	From, To string // RFC 3339
}

func (c *Config) reconcileFlags(fs *flag.FlagSet) {
	c.natsURLFlag(fs)
	c.replicasFlag(fs)
	c.databaseURLFlag(fs, "PostgreSQL URL of the cost views")
	fs.StringVar(&c.Reconcile.From, "from", "", "start of the calls to check, RFC 3339, rounded down to the UTC day (default: 35 days before --to)")
	fs.StringVar(&c.Reconcile.To, "to", "", "end of the calls to check, excluded, RFC 3339, rounded up to the UTC day (default: now)")
}

// runReconcile recomputes the costs from the usage stream and compares them with
// the views; any difference is printed and is an error (exit 1).
func runReconcile(ctx context.Context, cfg Config, _ *slog.Logger, out io.Writer) error {
	if err := cfg.Validate(need{nats: true, database: true}); err != nil {
		return err
	}
	to, from := time.Now().UTC(), time.Time{}
	var errs []error
	if cfg.Reconcile.To != "" {
		t, err := time.Parse(time.RFC3339Nano, cfg.Reconcile.To)
		errs = append(errs, err)
		to = t
	}
	from = to.AddDate(0, 0, -35)
	if cfg.Reconcile.From != "" {
		t, err := time.Parse(time.RFC3339Nano, cfg.Reconcile.From)
		errs = append(errs, err)
		from = t
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("--from and --to are RFC 3339 times: %w", err)
	}
	store, closeStore, err := cfg.openStore(ctx, "keyledger-reconcile")
	if err != nil {
		return err
	}
	defer closeStore()
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	diffs, err := projections.Costs{Pool: pool}.Reconcile(ctx, from, to, func(upTo uint64, yield func(domain.UsageRecorded) bool) error {
		return store.Usage().Each(ctx, upTo, yield)
	})
	if err != nil {
		return err
	}
	for _, d := range diffs {
		fmt.Fprintf(out, "%s %s %s %s %s %s: stream %s, views %s\n", d.Grain, d.Period.Format(time.RFC3339), d.WorkspaceID, d.CredentialID, d.Resource, d.Currency, d.Stream, d.View)
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%d cells of costs differ from the usage stream", len(diffs))
	}
	fmt.Fprintf(out, "costs from %s to %s match the usage stream\n", from.Format(time.RFC3339), to.Format(time.RFC3339))
	return nil
}
