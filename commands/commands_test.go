package commands_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/eventstore/natstest"
	"github.com/keyledger/keyledger/idempotency"
	"github.com/keyledger/keyledger/projections/pgtest"
)

type fixture struct {
	store *eventstore.Store
	deps  commands.Deps
}

func setup(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	srv := natstest.Start(t)
	store, err := eventstore.Open(ctx, srv.Connect(t), eventstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	vault, err := eventstore.OpenVault(ctx, store.JetStream(), bytes.Repeat([]byte{1}, 32), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := idempotency.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return fixture{store: store, deps: commands.Deps{Store: store, Vault: vault, Pepper: bytes.Repeat([]byte{2}, 32),
		Idempotency: idempotency.Store{Pool: pool}}}
}

// admin bootstraps an organization ("acme") through app and is its primary account.
func admin(t *testing.T, app *commands.App) commands.Caller {
	t.Helper()
	b, err := app.Bootstrap(context.Background(), commands.Bootstrap{OrganizationName: "acme", PrimaryName: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	return commands.Caller{OrganizationID: b.OrganizationID, AccountID: b.AccountID, AccessKeyID: b.AccessKeyID, Primary: true}
}

// workspace creates a workspace ("prod") through app and is its id.
func workspace(t *testing.T, app *commands.App, c commands.Caller) string {
	t.Helper()
	ws, err := app.CreateWorkspace(context.Background(), commands.CreateWorkspace{Caller: c, Name: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	return ws.WorkspaceID
}

// Two instances (two Apps with their own caches) write the same workspace: the one
// with a stale cache conflicts, catches up and retries, and both writes land.
func TestStaleInstanceRetriesOnConflict(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	a, b := commands.New(f.deps), commands.New(f.deps)
	c := admin(t, a)
	ws := workspace(t, a, c)
	name1, name2 := "one", "two"
	if _, err := b.CreateAPIKey(ctx, commands.CreateAPIKey{Caller: c, WorkspaceID: ws, BusinessType: "search", Name: &name1}); err != nil {
		t.Fatal(err)
	}
	// a's cached workspace is now one version behind.
	r, err := a.CreateAPIKey(ctx, commands.CreateAPIKey{Caller: c, WorkspaceID: ws, BusinessType: "search", Name: &name2})
	if err != nil {
		t.Fatalf("stale instance: %v", err)
	}
	// The retry decided against fresh state: a clash with b's key is still seen.
	if _, err := a.CreateAPIKey(ctx, commands.CreateAPIKey{Caller: c, WorkspaceID: ws, BusinessType: "search", Name: &name1}); !errors.Is(err, domain.ErrKeyNameTaken) {
		t.Fatalf("name clash across instances: %v", err)
	}
	recs, last, err := f.store.Load(ctx, domain.AggregateWorkspace, ws, 0)
	if err != nil || len(recs) != 3 || last != r.Version {
		t.Fatalf("log: %d events, last %d, version %d, %v", len(recs), last, r.Version, err)
	}
}

// Many concurrent requests with one Idempotency-Key have one effect.
func TestIdempotencyUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	app := commands.New(f.deps)
	c := admin(t, app)
	idem := commands.Idempotency{Key: "once", Fingerprint: "f"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]int{}
	inProgress := 0
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := app.CreateWorkspace(ctx, commands.CreateWorkspace{Caller: c, Idempotency: idem, Name: "prod"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ids[r.WorkspaceID]++
			case errors.Is(err, commands.ErrIdempotencyInProgress):
				inProgress++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(ids) != 1 {
		t.Fatalf("%d different workspaces created: %v", len(ids), ids)
	}
	n, err := f.store.CountSubjects(ctx, domain.AggregateWorkspace)
	if err != nil || n != 1 {
		t.Fatalf("%d workspaces in the log", n)
	}
	if _, err := app.CreateWorkspace(ctx, commands.CreateWorkspace{Caller: c, Idempotency: commands.Idempotency{Key: "once", Fingerprint: "g"}, Name: "x"}); !errors.Is(err, commands.ErrIdempotencyKeyReused) {
		t.Fatalf("other body: %v", err)
	}
}

// TestARestoreDoesNotRaiseADeletedKeysDataKey: a creation whose data key write
// failed writes it again; if the key was deleted meanwhile (its deletion destroyed
// the data key), the data key is destroyed again and the creation fails, never
// answered with a secret the log says is gone.
func TestARestoreDoesNotRaiseADeletedKeysDataKey(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	app := commands.New(f.deps)
	c := admin(t, app)
	ws := workspace(t, app, c)
	k, err := app.CreateAPIKey(ctx, commands.CreateAPIKey{Caller: c, WorkspaceID: ws, BusinessType: "maas"})
	if err != nil {
		t.Fatal(err)
	}
	id := k.Keys[0].KeyID
	sealed, wrapped, err := f.deps.Vault.Seal([]string{id}, [][]byte{[]byte(k.Keys[0].Secret)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.DeleteAPIKey(ctx, commands.DeleteAPIKey{Caller: c, WorkspaceID: ws, KeyID: id}); err != nil {
		t.Fatal(err)
	}
	if err := app.RestoreDataKeys(ctx, ws, []string{id}, sealed, wrapped); err == nil {
		t.Fatal("a restore for a deleted key succeeded")
	}
	if _, err := f.deps.Vault.Open(ctx, id, sealed[0]); err == nil {
		t.Fatal("the deleted key's data key opens its plaintext")
	}
}

// interfering is the real log with another writer that always gets there first:
// before each append to a workspace, the other instance changes that workspace.
type interfering struct {
	*eventstore.Store
	before  func(ctx context.Context, id string)
	created []domain.APIKeyCreated
}

func (s *interfering) Append(ctx context.Context, kind, id string, expected uint64, events []domain.Event, meta domain.Metadata) (uint64, error) {
	if kind == domain.AggregateWorkspace && s.before != nil {
		for _, e := range events {
			if c, ok := e.(domain.APIKeyCreated); ok {
				s.created = append(s.created, c)
			}
		}
		s.before(ctx, id)
	}
	return s.Store.Append(ctx, kind, id, expected, events, meta)
}

// TestACreationThatKeepsConflictingDestroysItsDataKeys: a creation that gives up
// after its last conflict has put nothing in the log, so the data keys it wrote
// for its keys go, as a refused creation's do.
func TestACreationThatKeepsConflictingDestroysItsDataKeys(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	other := commands.New(f.deps)
	log := &interfering{Store: f.store}
	deps := f.deps
	deps.Store = log
	app := commands.New(deps)
	c := admin(t, other)
	ws := workspace(t, other, c)
	n := 0
	log.before = func(ctx context.Context, id string) {
		n++
		desc := strconv.Itoa(n)
		if _, err := other.UpdateWorkspace(ctx, commands.UpdateWorkspace{Caller: c, WorkspaceID: id, Description: &desc}); err != nil {
			t.Error(err)
		}
	}
	if _, err := app.CreateAPIKey(ctx, commands.CreateAPIKey{Caller: c, WorkspaceID: ws, BusinessType: "maas"}); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("a creation that always conflicts: %v", err)
	}
	if len(log.created) == 0 {
		t.Fatal("no key creation was appended")
	}
	for _, e := range log.created {
		if lost, err := f.deps.Vault.Lost(ctx, e.KeyID, e.Sealed); err != nil || !lost {
			t.Errorf("key %s that is not in the log keeps its data key (lost %v, %v)", e.KeyID, lost, err)
		}
	}
}
