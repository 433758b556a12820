package projections_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

// TestCostsStayExactThroughCrashesAndRedelivery: the cost projector is killed at
// random moments while it aggregates, then loses its checkpoint after its commits
// (a crash between the PostgreSQL commit and the acknowledgement, as a consumer
// would see it) and gets the whole stream again: every total is still exact, late
// records sit in their own hour, and reconcile finds no difference.
func TestCostsStayExactThroughCrashesAndRedelivery(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Hour)
	hours := []time.Time{now.Add(-2 * time.Hour), now.Add(-26 * time.Hour), now} // published in this order: late ones after
	want := map[time.Time]int64{}
	var recs []domain.UsageRecorded
	for i := range 3000 {
		h := hours[i*len(hours)/3000]
		at := h.Add(time.Duration(i%3600) * time.Second)
		cost := int64(domain.MaxUsageAmount - i)
		recs = append(recs, domain.UsageRecorded{RecordID: fmt.Sprintf("r-%d", i), OrganizationID: "org_1", WorkspaceID: "ws_1",
			CredentialID: "key_1", Product: domain.BusinessMaaS, Resource: "qwen-max", Units: map[string]int64{"calls": 1},
			CostMicros: cost, Currency: "CNY", At: at, BillingKind: "workspace", BillingID: "ws_1"})
		want[h] += cost
	}
	for i := 0; i < len(recs); i += 500 {
		if _, err := e.store.PublishUsage(ctx, recs[i:i+500]); err != nil {
			t.Fatal(err)
		}
	}
	end, err := e.store.Usage().Position(ctx)
	if err != nil || end != 3000 {
		t.Fatalf("usage stream end %d (%v)", end, err)
	}
	run := func() (*projections.Runner, func()) {
		r := projections.NewRunner(e.pool, e.store.Usage(), projections.RunnerConfig{Name: projections.CostsProjector, BatchSize: 100}, projections.CostViews()...)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = r.Run(ctx) }()
		return r, func() { cancel(); <-done }
	}
	for range 8 { // killed mid-aggregation, again and again
		_, kill := run()
		time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
		kill()
	}
	r, stop := run()
	wait(t, r, end)
	stop()
	// The checkpoint is lost after the commits: everything comes again.
	if _, err := e.pool.Exec(ctx, `DELETE FROM projection_checkpoints WHERE name = 'costs'`); err != nil {
		t.Fatal(err)
	}
	r2 := projections.NewRunner(e.pool, e.store.Usage(), projections.RunnerConfig{Name: projections.CostsProjector}, projections.CostViews()...)
	if err := projections.Redeliver(ctx, r2, e.store.Usage(), 0); err != nil {
		t.Fatal(err)
	}

	rows, err := projections.Costs{Pool: e.pool}.OfWorkspace(ctx, "org_1", "ws_1", projections.CostQuery{
		From: now.Add(-48 * time.Hour), To: now.Add(time.Hour), Granularity: "hour"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(hours) {
		t.Fatalf("%d hours of costs, want %d: %+v", len(rows), len(hours), rows)
	}
	for _, row := range rows {
		if w := fmt.Sprint(want[row.PeriodStart]); row.CostMicros != w || row.Records != 1000 {
			t.Errorf("%s: %s micros in %d records, want %s in 1000", row.PeriodStart, row.CostMicros, row.Records, w)
		}
	}
	diffs, err := projections.Costs{Pool: e.pool}.Reconcile(ctx, now.Add(-48*time.Hour), now.Add(time.Hour), func(upTo uint64, yield func(domain.UsageRecorded) bool) error {
		return e.store.Usage().Each(ctx, upTo, yield)
	})
	if err != nil || len(diffs) != 0 {
		t.Fatalf("reconcile: %v %+v", err, diffs)
	}
}

// TestReconcileMeetsTheViewsWhereTheyStand: records the cost projector has not
// applied yet are no difference (traffic goes on while reconcile runs); the
// stream is read up to the views' checkpoint, read with them.
func TestReconcileMeetsTheViewsWhereTheyStand(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Hour)
	publish := func(from, n int) {
		var recs []domain.UsageRecorded
		for i := from; i < from+n; i++ {
			recs = append(recs, domain.UsageRecorded{RecordID: fmt.Sprintf("r-%d", i), OrganizationID: "org_1", WorkspaceID: "ws_1",
				CredentialID: "key_1", Product: domain.BusinessMaaS, Resource: "qwen-max", Units: map[string]int64{"calls": 1},
				CostMicros: 7, Currency: "CNY", At: now, BillingKind: "workspace", BillingID: "ws_1"})
		}
		if _, err := e.store.PublishUsage(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	publish(0, 10)
	r := projections.NewRunner(e.pool, e.store.Usage(), projections.RunnerConfig{Name: projections.CostsProjector}, projections.CostViews()...)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(rctx) }()
	wait(t, r, 10)
	cancel()
	<-done
	publish(10, 5) // not in the views yet
	diffs, err := projections.Costs{Pool: e.pool}.Reconcile(ctx, now, now.Add(time.Hour), func(upTo uint64, yield func(domain.UsageRecorded) bool) error {
		return e.store.Usage().Each(ctx, upTo, yield)
	})
	if err != nil || len(diffs) != 0 {
		t.Fatalf("reconcile while records wait for the projector: %v %+v", err, diffs)
	}
	// A difference within what the views hold is still found.
	if _, err := e.pool.Exec(ctx, `UPDATE costs_hourly SET cost_micros = cost_micros + 1`); err != nil {
		t.Fatal(err)
	}
	diffs, err = projections.Costs{Pool: e.pool}.Reconcile(ctx, now, now.Add(time.Hour), func(upTo uint64, yield func(domain.UsageRecorded) bool) error {
		return e.store.Usage().Each(ctx, upTo, yield)
	})
	if err != nil || len(diffs) != 1 || diffs[0].Stream != "70" || diffs[0].View != "71" {
		t.Fatalf("reconcile after a change: %v %+v", err, diffs)
	}
}

// TestReconcileCountsARecordOnceWhateverItsTime: a record id sent again later with
// another time (a gateway that fixed its clock) is counted by its first copy, as
// the projector counts it, even when that copy falls outside the range reconciled.
func TestReconcileCountsARecordOnceWhateverItsTime(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	from := time.Now().UTC().Truncate(24 * time.Hour)
	rec := domain.UsageRecorded{RecordID: "r-1", OrganizationID: "org_1", WorkspaceID: "ws_1", CredentialID: "key_1",
		Product: domain.BusinessMaaS, Resource: "qwen-max", Units: map[string]int64{"calls": 1}, CostMicros: 7, Currency: "CNY",
		At: from.Add(-time.Hour), BillingKind: "workspace", BillingID: "ws_1"}
	again := rec
	again.At = from.Add(time.Hour)
	// The views hold nothing in the range: the first copy is the day before.
	diffs, err := projections.Costs{Pool: e.pool}.Reconcile(ctx, from, from.Add(24*time.Hour), func(_ uint64, yield func(domain.UsageRecorded) bool) error {
		_ = yield(rec) && yield(again)
		return nil
	})
	if err != nil || len(diffs) != 0 {
		t.Fatalf("a record resent with another time: %v %+v", err, diffs)
	}
}
