package auditlog_test

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/auditlog"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/eventstore/natstest"
	"github.com/keyledger/keyledger/internal/syncbuf"
	"github.com/keyledger/keyledger/projections"
)

var at = time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)

const origin = "keyledger.test"

type fixture struct {
	store  *eventstore.Store
	signer *audit.Signer
	orgs   map[string]bool // the organizations created
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, err := eventstore.Open(context.Background(), natstest.Start(t).Connect(t), eventstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: store, signer: newSigner(t), orgs: map[string]bool{}}
}

func newSigner(t *testing.T) *audit.Signer {
	t.Helper()
	skey, _, err := audit.GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// history appends an organization's creation (the first time) and n workspaces of it.
func (f *fixture) history(t *testing.T, org string, n int) {
	t.Helper()
	if !f.orgs[org] {
		if _, err := f.store.Append(context.Background(), domain.AggregateOrganization, org, 0, []domain.Event{domain.OrganizationCreated{OrganizationID: org,
			Name: org, PrimaryAccountID: "acct_" + org, PrimaryAccountName: "admin", At: at}}, domain.Metadata{OrganizationID: org}); err != nil {
			t.Fatal(err)
		}
		f.orgs[org] = true
	}
	f.workspaces(t, org, n)
}

// workspaces appends n workspaces of an organization.
func (f *fixture) workspaces(t *testing.T, org string, n int) {
	t.Helper()
	ctx, meta := context.Background(), domain.Metadata{OrganizationID: org, ActorID: "acct_" + org}
	for i := 0; i < n; i++ {
		ws := domain.NewWorkspaceID()
		meta.WorkspaceID = ws
		if _, err := f.store.Append(ctx, domain.AggregateWorkspace, ws, 0, []domain.Event{domain.WorkspaceCreated{WorkspaceID: ws, OrganizationID: org, Name: ws, At: at}}, meta); err != nil {
			t.Fatal(err)
		}
	}
}

// fromStart is the log with no checkpoint to resume from: a witness of it reads
// the log from its start.
type fromStart struct{ *eventstore.Store }

func (fromStart) LastOfEach(context.Context, string) ([]eventstore.Record, error) { return nil, nil }

// witness runs a witness of the signer's checkpoints until the test ends and waits
// for it to hold the log; logs collects what it logged. Unless it resumes, it
// reads the log from its start.
func (f *fixture) witness(t *testing.T, resume bool) (*auditlog.Witness, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	var log auditlog.WitnessLog = f.store
	if !resume {
		log = fromStart{f.store}
	}
	w, err := auditlog.NewWitness(log, f.signer, origin, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	if err := w.CaughtUp(wctx); err != nil {
		t.Fatalf("the witness did not catch up: %v\n%s", err, logs)
	}
	return w, logs
}

// sign signs the trees of these organizations once the witness holds the log, as
// the periodic checkpointer does.
func (f *fixture) sign(t *testing.T, w *auditlog.Witness, orgs ...string) {
	t.Helper()
	if err := w.CaughtUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	cps := auditlog.NewCheckpointer(auditlog.CheckpointerConfig{Signer: f.signer, Origin: origin}, w, f.store)
	heads, err := w.Unsigned(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	signed := 0
	for _, h := range heads {
		if slices.Contains(orgs, h.OrganizationID) {
			if _, err := cps.Sign(context.Background(), h); err != nil {
				t.Fatal(err)
			}
			signed++
		}
	}
	if signed != len(orgs) {
		t.Fatalf("signed %d of %v (unsigned: %+v)", signed, orgs, heads)
	}
}

// sameHeads: the witness holds every organization's tree, and its latest
// checkpoint, as one reading the whole log does.
func sameHeads(t *testing.T, got, want *auditlog.Witness, orgs ...string) {
	t.Helper()
	for _, org := range orgs {
		g, gerr := got.Head(context.Background(), org)
		w, werr := want.Head(context.Background(), org)
		if gerr != nil || werr != nil || !reflect.DeepEqual(g, w) {
			t.Fatalf("%s: head %+v (%v), read from the start %+v (%v)", org, g, gerr, w, werr)
		}
	}
	g, _ := got.Unsigned(context.Background())
	w, _ := want.Unsigned(context.Background())
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("unsigned %+v, read from the start %+v", g, w)
	}
}

// resumed starts a witness that resumes from the checkpoints, checks its trees
// against a witness that reads the whole log, and returns it with its logs.
func (f *fixture) resumed(t *testing.T, orgs ...string) (*auditlog.Witness, string) {
	t.Helper()
	resumed, logs := f.witness(t, true)
	full, _ := f.witness(t, false)
	sameHeads(t, resumed, full, orgs...)
	return resumed, logs.String()
}

// appendCheckpoint appends a checkpoint made by hand, as the checkpointer would.
func (f *fixture) appendCheckpoint(t *testing.T, org string, cp domain.CheckpointSigned) {
	t.Helper()
	if _, err := f.store.Append(context.Background(), domain.AggregateCheckpoint, org, 0, []domain.Event{cp},
		domain.Metadata{OrganizationID: org, ActorID: auditlog.ActorCheckpointer}); err != nil {
		t.Fatal(err)
	}
}

// TestAWitnessResumesFromTheCheckpoints: a starting witness takes each
// organization's tree from its latest checkpoint and reads only the log after it,
// or after the beginning of an organization that has none (one left unsigned, one
// created since).
func TestAWitnessResumesFromTheCheckpoints(t *testing.T) {
	f := newFixture(t)
	f.history(t, "org_a", 30)
	f.history(t, "org_b", 20)
	first, _ := f.witness(t, true)
	f.history(t, "org_d", 4)
	f.history(t, "org_a", 3) // after the position resumed at: leaves the resumed tree holds already
	f.sign(t, first, "org_a", "org_b")
	f.history(t, "org_a", 5)
	f.history(t, "org_c", 3)

	resumed, logs := f.resumed(t, "org_a", "org_b", "org_c", "org_d")
	if !strings.Contains(logs, "resumed from the checkpoints") || !strings.Contains(logs, "organizations=2") {
		t.Fatalf("the witness did not resume from both checkpoints:\n%s", logs)
	}
	if h, _ := resumed.Head(context.Background(), "org_b"); h.Size != 21 || h.CheckpointSize != 21 {
		t.Fatalf("org_b: %+v, want 21 leaves, all signed", h)
	}
	if h, _ := resumed.Head(context.Background(), "org_a"); h.Size != 39 || h.CheckpointSize != 34 {
		t.Fatalf("org_a: %+v, want 39 leaves, 34 signed", h)
	}
}

// TestAWitnessResumesFromNothingItCannotTrust: a checkpoint signed with another
// key, or whose border does not give its signed root, is not resumed from; the
// witness reads the log from that organization's beginning, and its trees are
// right.
func TestAWitnessResumesFromNothingItCannotTrust(t *testing.T) {
	for name, bend := range map[string]func(t *testing.T, cp *domain.CheckpointSigned, h projections.TreeHead){
		"another key": func(t *testing.T, cp *domain.CheckpointSigned, h projections.TreeHead) {
			var err error
			if cp.Note, err = newSigner(t).Sign(audit.Origin(origin, "org_a"), h.Size, h.Root, 0, h.Position); err != nil {
				t.Fatal(err)
			}
		},
		"a bent border": func(_ *testing.T, cp *domain.CheckpointSigned, _ projections.TreeHead) {
			cp.Border[len(cp.Border)-1] = bytes.Repeat([]byte{1}, 32)
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.history(t, "org_a", 12)
			f.history(t, "org_b", 9)
			first, _ := f.witness(t, true)
			h, err := first.Head(context.Background(), "org_a")
			if err != nil {
				t.Fatal(err)
			}
			note, err := f.signer.Sign(audit.Origin(origin, "org_a"), h.Size, h.Root, 0, h.Position)
			if err != nil {
				t.Fatal(err)
			}
			cp := domain.CheckpointSigned{Size: h.Size, RootHash: h.Root, Note: note, Border: h.Border, At: at}
			bend(t, &cp, h)
			f.appendCheckpoint(t, "org_a", cp)
			// Running instances do not sign it again: it has its border and position,
			// whoever's key signed it (instances whose keys differ would sign in turn).
			if err := first.CaughtUp(context.Background()); err != nil {
				t.Fatal(err)
			}
			if heads, _ := first.Unsigned(context.Background()); slices.ContainsFunc(heads, func(h projections.TreeHead) bool { return h.OrganizationID == "org_a" }) {
				t.Fatalf("a checkpoint with its border is to be signed again: %+v", heads)
			}
			f.history(t, "org_a", 4)
			f.sign(t, first, "org_b")
			f.history(t, "org_b", 2)

			if _, logs := f.resumed(t, "org_a", "org_b"); !strings.Contains(logs, "does not resume from") || strings.Contains(logs, "resumed from the checkpoints") {
				t.Fatalf("the witness resumed from the bent checkpoint:\n%s", logs)
			}
		})
	}
}

// TestAWitnessReadsFromTheStartAHistoryItDidNotSeeBegin: an organization whose
// history does not begin with its creation (none in the log), met after the
// position resumed at, makes the witness read the log from its start.
func TestAWitnessReadsFromTheStartAHistoryItDidNotSeeBegin(t *testing.T) {
	f := newFixture(t)
	f.history(t, "org_a", 5)
	f.workspaces(t, "org_x", 3)
	first, _ := f.witness(t, true)
	f.sign(t, first, "org_a")
	f.workspaces(t, "org_x", 2)

	if _, logs := f.resumed(t, "org_a", "org_x"); !strings.Contains(logs, "reading the log from its start") {
		t.Fatalf("the witness did not go back to the start:\n%s", logs)
	}
}

// TestACheckpointWithoutItsBorderIsSignedAgain: a tree whose latest checkpoint a
// starting witness cannot resume from (signed by an earlier version, without its
// border and position) is signed again though it did not grow; then it resumes.
func TestACheckpointWithoutItsBorderIsSignedAgain(t *testing.T) {
	f := newFixture(t)
	f.history(t, "org_a", 3)
	first, _ := f.witness(t, true)
	h, err := first.Head(context.Background(), "org_a")
	if err != nil {
		t.Fatal(err)
	}
	note, err := f.signer.Sign(audit.Origin(origin, "org_a"), h.Size, h.Root, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.appendCheckpoint(t, "org_a", domain.CheckpointSigned{Size: h.Size, RootHash: h.Root, Note: note, At: at})
	f.sign(t, first, "org_a")
	if err := first.CaughtUp(context.Background()); err != nil { // it holds the checkpoint just signed
		t.Fatal(err)
	}
	if heads, err := first.Unsigned(context.Background()); err != nil || len(heads) != 0 {
		t.Fatalf("unsigned after signing again: %+v %v", heads, err)
	}
	if _, logs := f.resumed(t, "org_a"); !strings.Contains(logs, "resumed from the checkpoints") {
		t.Fatalf("the witness did not resume:\n%s", logs)
	}
}
