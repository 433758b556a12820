package projections_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

// startAudit runs an audit projector (small batches, so that a tree grows across
// many transactions) until the test ends or stop is called.
func (e env) startAudit(t *testing.T) (*projections.Runner, func()) {
	t.Helper()
	r := projections.NewRunner(e.pool, e.store, projections.RunnerConfig{Name: "audit", BatchSize: 7, StandbyRetry: 50 * time.Millisecond},
		projections.NewAuditView())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return r, stop
}

// appendKeys appends n key creations to a workspace of org, one append each.
func (e env) appendKeys(t *testing.T, org, ws string, from, n int) uint64 {
	t.Helper()
	var pos uint64
	for i := from; i < from+n; i++ {
		expected, err := e.store.LastSequence(context.Background(), "workspace", ws)
		if err != nil {
			t.Fatal(err)
		}
		pos, err = e.store.Append(context.Background(), "workspace", ws, expected, []domain.Event{keyEvent(fmt.Sprintf("key_%s_%d", ws, i), fmt.Sprint("k", i))},
			domain.Metadata{OrganizationID: org, WorkspaceID: ws, ActorID: "acc_1"})
		if err != nil {
			t.Fatal(err)
		}
	}
	return pos
}

// rootOf recomputes an organization's tree root from the log, as an auditor would.
func (e env) rootOf(t *testing.T, org string) (uint64, []byte) {
	t.Helper()
	ctx := context.Background()
	head, _ := e.store.Position(ctx)
	sub, err := e.store.Subscribe(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	r := audit.Ranges.NewEmptyRange(0)
	for seen := uint64(0); seen < head; {
		recs, err := sub.Next(ctx, 100, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			seen = rec.Sequence
			if rec.Metadata.OrganizationID == org && audit.IsLeaf(rec) {
				_ = r.Append(audit.LeafOf(rec, r.End()), nil)
			}
		}
	}
	root, _ := r.GetRootHash(nil)
	return r.End(), root
}

func (e env) sameTree(t *testing.T, org string) {
	t.Helper()
	q := projections.Audit{Pool: e.pool}
	h, err := q.Head(context.Background(), org)
	if err != nil {
		t.Fatal(err)
	}
	size, root := e.rootOf(t, org)
	if h.Size != size || !bytes.Equal(h.Root, root) {
		t.Fatalf("%s: projected tree %d %x, the log gives %d %x", org, h.Size, h.Root, size, root)
	}
	if n := e.count(t, `SELECT count(*) FROM audit_entries WHERE organization_id = $1`, org); uint64(n) != size {
		t.Fatalf("%d entries for %d leaves", n, size)
	}
	// Every root the proofs are built from is the one the nodes give.
	for _, s := range []uint64{1, size / 2, size} {
		got, err := q.RootAt(context.Background(), org, s)
		if err != nil {
			t.Fatal(err)
		}
		if s == size && !bytes.Equal(got, root) {
			t.Fatalf("root at %d from the nodes differs", s)
		}
	}
}

// TestTheAuditTreeSurvivesRestartsRedeliveryAndRebuilds: the trees, grown over many
// transactions, across a restart (the borders loaded back), a redelivery and a
// rebuild from scratch, always give the root the log gives.
func TestTheAuditTreeSurvivesRestartsRedeliveryAndRebuilds(t *testing.T) {
	e := setup(t)
	r, stop := e.startAudit(t)
	e.appendKeys(t, "org_a", "ws_a", 0, 20)
	pos := e.appendKeys(t, "org_b", "ws_b", 0, 9)
	wait(t, r, pos)
	e.sameTree(t, "org_a")
	e.sameTree(t, "org_b")

	stop()
	pos = e.appendKeys(t, "org_a", "ws_a", 20, 13)
	r, stop = e.startAudit(t)
	wait(t, r, pos)
	e.sameTree(t, "org_a")

	if err := projections.Redeliver(context.Background(), r, e.store, 0); err != nil {
		t.Fatal(err)
	}
	e.sameTree(t, "org_a")

	stop()
	if _, err := e.pool.Exec(context.Background(), `TRUNCATE audit_entries, audit_names, audit_tree_nodes, audit_trees, audit_checkpoints;
		DELETE FROM projection_checkpoints WHERE name = 'audit'`); err != nil {
		t.Fatal(err)
	}
	r, _ = e.startAudit(t)
	wait(t, r, pos)
	e.sameTree(t, "org_a")
	e.sameTree(t, "org_b")
}
