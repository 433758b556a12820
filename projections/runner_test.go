package projections_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/eventstore/natstest"
	"github.com/keyledger/keyledger/internal/syncbuf"
	"github.com/keyledger/keyledger/projections"
	"github.com/keyledger/keyledger/projections/pgtest"
)

var at = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

type env struct {
	store *eventstore.Store
	pool  *pgxpool.Pool
	logs  *syncbuf.Buffer // what the runners log
}

func setup(t *testing.T) env {
	t.Helper()
	ctx := context.Background()
	srv := natstest.Start(t)
	store, err := eventstore.Open(ctx, srv.Connect(t), eventstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := projections.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return env{store: store, pool: pool, logs: &syncbuf.Buffer{}}
}

// start runs a runner of the standard views until the test ends or stop is called.
func (e env) start(t *testing.T, name string) (*projections.Runner, func()) {
	t.Helper()
	return e.startWith(t, name, 50)
}

// startWith is start with batches of at most size events, and extra views.
func (e env) startWith(t *testing.T, name string, size int, extra ...projections.View) (*projections.Runner, func()) {
	t.Helper()
	r := projections.NewRunner(e.pool, e.store, projections.RunnerConfig{Name: name, BatchSize: size, StandbyRetry: 50 * time.Millisecond,
		CheckEvery: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(e.logs, nil))},
		append(projections.Views(), extra...)...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return r, stop
}

func (e env) append(t *testing.T, kind, id string, expected uint64, events ...domain.Event) uint64 {
	t.Helper()
	v, err := e.store.Append(context.Background(), kind, id, expected, events, domain.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (e env) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func wait(t *testing.T, r *projections.Runner, pos uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, pos); err != nil {
		t.Fatalf("views did not reach %d: %v", pos, err)
	}
}

func keyEvent(id, name string) domain.Event {
	return domain.APIKeyCreated{KeyID: id, BusinessType: domain.BusinessSearch, Name: name, Allowlist: []string{"10.0.0.0/8"},
		SecretHash: "h", Masked: "kls_abcd…wxyz", Sealed: []byte("sealed"), QPSLimit: 5, At: at}
}

func TestViewsFollowTheLog(t *testing.T) {
	e := setup(t)
	r, _ := e.start(t, "views")
	e.append(t, "organization", "org_1", 0,
		domain.OrganizationCreated{OrganizationID: "org_1", Name: "acme", PrimaryAccountID: "acct_p", PrimaryAccountName: "admin", At: at},
		domain.AccessKeyCreated{AccountID: "acct_p", AccessKeyID: "AK1", SecretHash: "h", At: at})
	e.append(t, "organization", "org_1", 2, domain.AccountCreated{AccountID: "acct_s", Name: "dev", At: at})
	v := e.append(t, "workspace", "ws_1", 0,
		domain.WorkspaceCreated{WorkspaceID: "ws_1", OrganizationID: "org_1", Name: "prod", At: at})
	v = e.append(t, "workspace", "ws_1", v, domain.MemberAuthorized{AccountID: "acct_s", At: at}, domain.MemberAuthorized{AccountID: "acct_p", At: at})
	v = e.append(t, "workspace", "ws_1", v, keyEvent("key_1", "a"), keyEvent("key_2", "b"), keyEvent("key_3", "c"))
	v = e.append(t, "workspace", "ws_1", v, domain.APIKeyUpdated{KeyID: "key_2", Name: "b2", Allowlist: []string{}, At: at})
	v = e.append(t, "workspace", "ws_1", v, domain.APIKeyDeleted{KeyID: "key_3", At: at})
	v = e.append(t, "workspace", "ws_1", v, domain.MemberRevoked{AccountID: "acct_s", At: at})
	v = e.append(t, "workspace", "ws_1", v, domain.WorkspaceUpdated{Name: "production", At: at})
	wait(t, r, v)

	ctx := context.Background()
	ws, err := projections.Workspaces{Pool: e.pool}.Get(ctx, "org_1", "ws_1")
	if err != nil || ws.Name != "production" || ws.Version != v {
		t.Fatalf("workspace %+v %v (want version %d)", ws, err, v)
	}
	if _, err := (projections.Workspaces{Pool: e.pool}).Get(ctx, "org_other", "ws_1"); err != domain.ErrWorkspaceNotFound {
		t.Fatalf("another organization sees the workspace: %v", err)
	}
	members, err := projections.Members{Pool: e.pool}.List(ctx, "org_1", "ws_1")
	if err != nil || len(members) != 1 || members[0].AccountID != "acct_p" || !members[0].Primary {
		t.Fatalf("members %+v %v", members, err)
	}
	accounts, _, err := projections.Accounts{Pool: e.pool}.List(ctx, "org_1", projections.Page{Limit: 10})
	if err != nil || len(accounts) != 2 || accounts[0].AccessKey == nil || accounts[0].AccessKey.ID != "AK1" {
		t.Fatalf("accounts %+v %v", accounts, err)
	}
	keys, _, err := projections.APIKeys{Pool: e.pool}.List(ctx, "org_1", "ws_1", projections.KeyFilter{BusinessType: "search"}, projections.Page{Limit: 10})
	if err != nil || len(keys) != 2 || *keys[0].Name != "b2" || len(keys[0].Allowlist) != 0 || *keys[1].QPSLimit != 5 {
		t.Fatalf("keys %+v %v", keys, err)
	}
	if n := e.count(t, `SELECT count(*) FROM api_keys WHERE business_type = 'maas'`); n != 0 {
		t.Fatalf("maas keys %d", n)
	}
}

func TestRestartResumesFromCheckpoint(t *testing.T) {
	e := setup(t)
	r, stop := e.start(t, "views")
	v := e.append(t, "workspace", "ws_1", 0, domain.WorkspaceCreated{WorkspaceID: "ws_1", OrganizationID: "org_1", Name: "prod", At: at})
	for i := 0; i < 120; i++ { // more than one batch of 50
		v = e.append(t, "workspace", "ws_1", v, keyEvent("key_a"+string(rune('A'+i%26))+string(rune('A'+i/26)), ""))
	}
	wait(t, r, v)
	stop()
	for i := 0; i < 30; i++ {
		v = e.append(t, "workspace", "ws_1", v, keyEvent("key_b"+string(rune('A'+i%26))+string(rune('A'+i/26)), ""))
	}
	r2, _ := e.start(t, "views")
	wait(t, r2, v)
	if n := e.count(t, `SELECT count(*) FROM api_keys`); n != 150 {
		t.Fatalf("%d keys, want 150", n)
	}
	if n := e.count(t, `SELECT position FROM projection_checkpoints WHERE name = 'views'`); uint64(n) != v {
		t.Fatalf("checkpoint %d, want %d", n, v)
	}
}

func TestRedeliveryHasNoSecondEffect(t *testing.T) {
	e := setup(t)
	r, stop := e.start(t, "views")
	v := e.append(t, "workspace", "ws_1", 0, domain.WorkspaceCreated{WorkspaceID: "ws_1", OrganizationID: "org_1", Name: "prod", At: at})
	v = e.append(t, "workspace", "ws_1", v, keyEvent("key_1", "a"))
	v = e.append(t, "workspace", "ws_1", v, domain.MemberAuthorized{AccountID: "acct_1", At: at})
	o := e.append(t, "organization", "org_1", 0,
		domain.OrganizationCreated{OrganizationID: "org_1", Name: "acme", PrimaryAccountID: "acct_p", PrimaryAccountName: "admin", At: at},
		domain.AccountCreated{AccountID: "acct_1", Name: "alice", At: at},
		domain.AccessKeyCreated{AccountID: "acct_1", AccessKeyID: "AK1", SecretHash: "h", At: at},
		domain.RoleCreated{RoleID: "role_1", Name: "r", At: at},
		domain.PermissionGranted{RoleID: "role_1", Permission: "api_key:read", At: at},
		domain.RoleUserIncluded{RoleID: "role_1", AccountID: "acct_1", At: at})
	wait(t, r, o)
	stop()
	// Simulate a crash after the view commit but with the consumer still at the
	// beginning: a runner reading from 0 gets every event again.
	r2 := projections.NewRunner(e.pool, e.store, projections.RunnerConfig{Name: "views"}, projections.Views()...)
	if err := projections.Redeliver(context.Background(), r2, e.store, 0); err != nil {
		t.Fatalf("redelivery must be skipped, got %v", err)
	}
	if n := e.count(t, `SELECT count(*) FROM api_keys`); n != 1 {
		t.Fatalf("%d keys after redelivery", n)
	}
	if n := e.count(t, `SELECT count(*) FROM workspace_members`); n != 1 {
		t.Fatalf("%d members after redelivery", n)
	}
	a, err := projections.Accounts{Pool: e.pool}.Get(context.Background(), "org_1", "acct_1")
	if err != nil || a.AccessKey == nil || a.AccessKey.Status != "enabled" || len(a.Permissions) != 1 || a.Permissions[0] != "api_key:read" {
		t.Fatalf("account after redelivery: %+v %v", a, err)
	}
	roles, err := projections.Roles{Pool: e.pool}.List(context.Background(), "org_1")
	if err != nil || len(roles) != 1 || len(roles[0].Users) != 1 {
		t.Fatalf("roles after redelivery: %+v %v", roles, err)
	}
}

func TestOneActiveRunnerPerName(t *testing.T) {
	e := setup(t)
	a, stopA := e.start(t, "views")
	b, _ := e.start(t, "views")
	v := e.append(t, "workspace", "ws_1", 0, domain.WorkspaceCreated{WorkspaceID: "ws_1", OrganizationID: "org_1", Name: "prod", At: at})
	wait(t, a, v)
	wait(t, b, v) // a standby waits on the shared checkpoint
	// A standby knows no position of its own (it reads the shared checkpoint).
	aActive, bActive := a.Position() >= v, b.Position() >= v
	if aActive == bActive {
		t.Fatalf("active: a=%v b=%v; exactly one must project", aActive, bActive)
	}
	if aActive {
		stopA() // the standby takes over
	}
	v = e.append(t, "workspace", "ws_1", v, keyEvent("key_1", "a"))
	wait(t, b, v)
	if n := e.count(t, `SELECT count(*) FROM api_keys`); n != 1 {
		t.Fatalf("%d keys", n)
	}
}

// TestARunnerRebuildsWhenTheCheckpointGoesBack: a migration that empties the views
// and drops their checkpoint while a runner projects (an old instance during a
// rolling update) makes that runner start again from the beginning, never go on
// from where it was over emptied views.
func TestARunnerRebuildsWhenTheCheckpointGoesBack(t *testing.T) {
	e := setup(t)
	r, _ := e.start(t, "views")
	v := e.append(t, "workspace", "ws_1", 0, domain.WorkspaceCreated{WorkspaceID: "ws_1", OrganizationID: "org_1", Name: "prod", At: at})
	v = e.append(t, "workspace", "ws_1", v, keyEvent("key_1", "a"))
	wait(t, r, v)
	if _, err := e.pool.Exec(context.Background(), `TRUNCATE workspaces, api_keys; DELETE FROM projection_checkpoints`); err != nil {
		t.Fatal(err)
	}
	v = e.append(t, "workspace", "ws_1", v, keyEvent("key_2", "b"))
	deadline := time.Now().Add(10 * time.Second)
	for e.count(t, `SELECT count(*) FROM api_keys`) != 2 || e.count(t, `SELECT count(*) FROM workspaces`) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the views were not rebuilt: %d keys, %d workspaces", e.count(t, `SELECT count(*) FROM api_keys`), e.count(t, `SELECT count(*) FROM workspaces`))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAFailedWriteStartsOverFromTheCheckpoint: batches are written in the
// background while the next is read; a write that fails ends the run, whether it
// is found when the next batch is handed on or, the log then idle, between
// batches, and the runner starts over from its checkpoint rather than going on
// past the lost batch.
func TestAFailedWriteStartsOverFromTheCheckpoint(t *testing.T) {
	for name, keys := range map[string][]string{
		"an early batch": {"key_1", "key_bad", "key_2", "key_3"},
		"the last batch": {"key_1", "key_2", "key_bad"},
	} {
		t.Run(name, func(t *testing.T) {
			e := setup(t)
			var failures atomic.Int32
			failOnce := projections.ViewFunc(func(b *projections.Batch, r eventstore.Record) {
				if k, ok := r.Event.(domain.APIKeyCreated); ok && k.KeyID == "key_bad" && failures.Add(1) == 1 {
					b.Exec(`SELECT 1 / 0`)
				}
			})
			v := e.append(t, "workspace", "ws_1", 0, domain.WorkspaceCreated{WorkspaceID: "ws_1", OrganizationID: "org_1", Name: "prod", At: at})
			for _, id := range keys {
				v = e.append(t, "workspace", "ws_1", v, keyEvent(id, id))
			}
			r, _ := e.startWith(t, "views", 1, failOnce) // one event a batch
			wait(t, r, v)
			if n := failures.Load(); n < 2 {
				t.Fatalf("the failing batch was folded %d times, want it retried", n)
			}
			if n := e.count(t, `SELECT count(*) FROM api_keys`); n != len(keys) {
				t.Fatalf("%d keys, want %d", n, len(keys))
			}
			if n := e.count(t, `SELECT position FROM projection_checkpoints WHERE name = 'views'`); uint64(n) != v {
				t.Fatalf("checkpoint %d, want %d", n, v)
			}
		})
	}
}

// TestARunnerStandsByUnderANewerSchema: during a rolling update, an instance of an
// older version must not project into views a newer one migrated (its writes
// would miss what the newer migration keeps, as a backfill would): it does not
// start, and an active one stops, until the schema is one it knows.
func TestARunnerStandsByUnderANewerSchema(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	newer := func() {
		t.Helper()
		if _, err := e.pool.Exec(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, true)`); err != nil {
			t.Fatal(err)
		}
	}
	known := func() {
		t.Helper()
		if _, err := e.pool.Exec(ctx, `DELETE FROM goose_db_version WHERE version_id = 99999`); err != nil {
			t.Fatal(err)
		}
	}
	workspaces := func(want int) {
		t.Helper()
		if n := e.count(t, `SELECT count(*) FROM workspaces`); n != want {
			t.Fatalf("%d workspaces, want %d", n, want)
		}
	}
	// standingBy waits until the runner has said n times that it stands by.
	standingBy := func(n int) {
		t.Helper()
		eventually(t, "the runner standing by", func() bool { return strings.Count(e.logs.String(), "projector standing by") >= n })
	}
	newer()
	r, _ := e.start(t, "views")
	standingBy(1)
	v := e.append(t, "workspace", "ws_1", 0, domain.WorkspaceCreated{WorkspaceID: "ws_1", OrganizationID: "org_1", Name: "prod", At: at})
	time.Sleep(time.Second)
	workspaces(0) // it did not start
	if n := strings.Count(e.logs.String(), "projector standing by"); n != 1 {
		t.Fatalf("said %d times that it stands by, want once", n)
	}
	known()
	wait(t, r, v)
	workspaces(1)

	newer()
	standingBy(2) // the active runner's check stopped it
	e.append(t, "workspace", "ws_2", 0, domain.WorkspaceCreated{WorkspaceID: "ws_2", OrganizationID: "org_1", Name: "next", At: at})
	time.Sleep(time.Second)
	workspaces(1) // it stopped
	known()
	eventually(t, "the runner projecting again under a schema it knows", func() bool { return e.count(t, `SELECT count(*) FROM workspaces`) == 2 })
}

// eventually polls cond until it holds, failing the test after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
