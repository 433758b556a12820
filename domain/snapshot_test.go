package domain_test

import (
	"bytes"
	"reflect"
	"strconv"
	"testing"

	"github.com/keyledger/keyledger/domain"
)

// applyAt applies events at consecutive positions from pos, as the log would, by
// an actor whose id changes with the position (so creators and editors differ).
func applyAt(a interface {
	ApplyBy(uint64, string, domain.Event)
}, pos *uint64, events []domain.Event) {
	for _, e := range events {
		*pos++
		a.ApplyBy(*pos, "acct_"+strconv.FormatUint(*pos%3, 10), e)
	}
}

// TestSnapshotsRestoreTheWholeState: a restored aggregate encodes exactly as the
// original, and decides and evolves as it does on the events that follow.
func TestSnapshotsRestoreTheWholeState(t *testing.T) {
	var pos uint64
	w := domain.NewEmptyWorkspace("ws_1")
	applyAt(w, &pos, must(t)(w.Create("org_1", "prod", "main", at)))
	applyAt(w, &pos, must(t)(w.SetMembers([]string{"acct_a", "acct_b"}, func(string) bool { return true }, at)))
	keys := []domain.NewAPIKey{
		{ID: "key_1", BusinessType: domain.BusinessSearch, Name: "crawler", QPSLimit: 5, SecretHash: "h1", Masked: "kls_…1", Sealed: []byte{1, 2}},
		{ID: "key_2", BusinessType: domain.BusinessMaaS, SecretHash: "h2", Masked: "klm_…2", Sealed: []byte{3}},
	}
	applyAt(w, &pos, must(t)(w.CreateAPIKeys(keys, "batch_1", at)))
	applyAt(w, &pos, must(t)(w.RevealAPIKey("key_2", at)))
	applyAt(w, &pos, must(t)(w.DeleteAPIKey("key_1", at)))

	snap, err := w.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	r, err := domain.RestoreWorkspace(snap)
	if err != nil {
		t.Fatal(err)
	}
	same := func(a, b interface{ Snapshot() ([]byte, error) }, when string) {
		t.Helper()
		x, _ := a.Snapshot()
		y, _ := b.Snapshot()
		if !bytes.Equal(x, y) {
			t.Fatalf("%s:\n%s\n%s", when, x, y)
		}
	}
	same(w, r, "restored")
	// The name of the deleted key is free on both; the next default name is the same.
	next := []domain.NewAPIKey{{ID: "key_3", BusinessType: domain.BusinessSearch, Name: "crawler", SecretHash: "h3"}, {ID: "key_4", BusinessType: domain.BusinessSearch, SecretHash: "h4"}}
	p1, p2 := pos, pos
	applyAt(w, &p1, must(t)(w.CreateAPIKeys(next, "", at)))
	applyAt(r, &p2, must(t)(r.CreateAPIKeys(next, "", at)))
	same(w, r, "after more events")

	o := org(t)
	applyAt(o, &pos, must(t)(o.CreateAccessKey("acct_a", "AKa", "hash-a", at)))
	name := "readers"
	users := []string{"acct_a"}
	applyAt(o, &pos, must(t)(o.CreateRole("role_1", domain.RoleSpec{Name: &name, Permissions: perms("api_key:read"), Users: &users,
		Workspaces: &[]string{"ws_1"}, IsWorkspace: func(string) bool { return true }}, at)))
	applyAt(o, &pos, must(t)(o.SetAccountDisabled("acct_b", true, at)))
	gone := "gone"
	applyAt(o, &pos, must(t)(o.CreateRole("role_2", domain.RoleSpec{Name: &gone, Permissions: perms("api_key:read"), IsWorkspace: func(string) bool { return true }}, at)))
	applyAt(o, &pos, must(t)(o.DeleteRole("role_2", at)))
	snap, err = o.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	ro, err := domain.RestoreOrganization(snap)
	if err != nil {
		t.Fatal(err)
	}
	same(o, ro, "restored organization")
	if g := ro.WorkspaceGrants("acct_a"); len(g["ws_1"]) != 1 {
		t.Fatalf("restored organization: grants %v", g)
	}
	if a, ok := ro.AccountBySecretHash("hash-a"); !ok || !a.Active() || len(ro.Permissions("acct_a")) != 1 {
		t.Fatalf("restored organization: %+v %v", a, ro.Permissions("acct_a"))
	}
	if _, err := ro.CreateAccount("acct_c", "ALICE", at); err == nil {
		t.Fatal("the restored organization forgot the account names")
	}
	if !ro.RoleWasDeleted("role_2") {
		t.Fatal("the restored organization forgot a deleted role")
	}

	// A field added to an aggregate's state must be added to its snapshot (and the
	// format bumped): these counts fail first.
	for typ, want := range map[reflect.Type]int{
		reflect.TypeOf(domain.Workspace{}):    14, // with at and by, of the event being applied
		reflect.TypeOf(domain.Organization{}): 11, // likewise
		reflect.TypeOf(domain.APIKey{}):       17,
		reflect.TypeOf(domain.Account{}):      17,
	} {
		if typ.NumField() != want {
			t.Errorf("%s has %d fields, its snapshot knows %d", typ, typ.NumField(), want)
		}
	}
	if f, _ := reflect.TypeOf(domain.Organization{}).FieldByName("roles"); f.Type.Elem().Elem().NumField() != 10 {
		t.Errorf("a role has %d fields, its snapshot knows 10", f.Type.Elem().Elem().NumField())
	}
	if _, err := domain.RestoreWorkspace([]byte(`{"format":0}`)); err != domain.ErrSnapshotFormat {
		t.Fatalf("a snapshot of another format: %v", err)
	}
}
