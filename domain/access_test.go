package domain_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

func org(t *testing.T) *domain.Organization {
	t.Helper()
	o := domain.NewEmptyOrganization("org_1")
	o.Apply(must(t)(o.Create("acme", "acct_p", "admin", "AKp", "hash-p", at))...)
	o.Apply(must(t)(o.CreateAccount("acct_a", "alice", at))...)
	o.Apply(must(t)(o.CreateAccount("acct_b", "bob", at))...)
	return o
}

func perms(ps ...string) *[]domain.Permission {
	out := []domain.Permission{}
	for _, s := range ps {
		p, err := domain.ParsePermission(s)
		if err != nil {
			panic(err)
		}
		out = append(out, p)
	}
	return &out
}

func TestAccessKeyRules(t *testing.T) {
	o := org(t)
	o.Apply(must(t)(o.CreateAccessKey("acct_a", "AKa", "hash-a", at))...)
	if _, err := o.CreateAccessKey("acct_a", "AKa2", "hash-a2", at); !errors.Is(err, domain.ErrAccessKeyExists) {
		t.Fatalf("second key: %v", err)
	}
	if a, ok := o.AccountBySecretHash("hash-a"); !ok || !a.Active() {
		t.Fatalf("new key: %+v", a)
	}
	o.Apply(must(t)(o.SetAccessKeyDisabled("acct_a", true, at))...)
	if a, _ := o.Account("acct_a"); a.Active() {
		t.Fatal("a disabled key is not active")
	}
	if events := must(t)(o.SetAccessKeyDisabled("acct_a", true, at)); len(events) != 0 {
		t.Fatal("no change, no event")
	}
	o.Apply(must(t)(o.SetAccessKeyDisabled("acct_a", false, at))...)
	o.Apply(must(t)(o.SetAccountDisabled("acct_a", true, at))...)
	if a, _ := o.Account("acct_a"); a.Active() {
		t.Fatal("a disabled account's key is not active")
	}
	o.Apply(must(t)(o.SetAccountDisabled("acct_a", false, at))...)
	o.Apply(must(t)(o.DeleteAccessKey("acct_a", at))...)
	if _, ok := o.AccountBySecretHash("hash-a"); ok {
		t.Fatal("a deleted key still resolves")
	}
	o.Apply(must(t)(o.CreateAccessKey("acct_a", "AKa3", "hash-a3", at))...)
	for name, err := range map[string]error{
		"disable primary":        func() error { _, err := o.SetAccountDisabled("acct_p", true, at); return err }(),
		"delete primary key":     func() error { _, err := o.DeleteAccessKey("acct_p", at); return err }(),
		"disable primary key":    func() error { _, err := o.SetAccessKeyDisabled("acct_p", true, at); return err }(),
		"no key":                 func() error { _, err := o.DeleteAccessKey("acct_b", at); return err }(),
		"unknown account":        func() error { _, err := o.CreateAccessKey("acct_x", "AKx", "h", at); return err }(),
		"unknown account status": func() error { _, err := o.SetAccountDisabled("acct_x", true, at); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRolesGiveTheUnionOfTheirPermissions(t *testing.T) {
	o := org(t)
	name := "readers"
	users := []string{"acct_a"}
	o.Apply(must(t)(o.CreateRole("role_1", domain.RoleSpec{Name: &name, Permissions: perms("api_key:read", "workspace:read"), Users: &users}, at))...)
	name2 := "writers"
	o.Apply(must(t)(o.CreateRole("role_2", domain.RoleSpec{Name: &name2, Permissions: perms("api_key:create", "api_key:read"), Users: &users}, at))...)
	got := fmt.Sprint(o.Permissions("acct_a"))
	if got != "[api_key:create api_key:read workspace:read]" {
		t.Fatalf("union: %s", got)
	}
	if len(o.Permissions("acct_b")) != 0 || len(o.Permissions("acct_p")) != 16 {
		t.Fatalf("bob %v, primary %v", o.Permissions("acct_b"), o.Permissions("acct_p"))
	}
	if slices.Contains(o.Permissions("acct_a"), domain.PermOrganizationAdmin) || !slices.Contains(o.Permissions("acct_p"), domain.PermOrganizationAdmin) {
		t.Fatal("organization:admin is the primary's alone")
	}

	// Replacing sets decides only the difference.
	none := []string{"acct_b"}
	events := must(t)(o.UpdateRole("role_2", domain.RoleSpec{Permissions: perms("api_key:create", "api_key:update"), Users: &none}, at))
	want := []domain.Event{
		domain.PermissionRevoked{RoleID: "role_2", Permission: "api_key:read", At: at},
		domain.PermissionGranted{RoleID: "role_2", Permission: "api_key:update", At: at},
		domain.RoleUserExcluded{RoleID: "role_2", AccountID: "acct_a", At: at},
		domain.RoleUserIncluded{RoleID: "role_2", AccountID: "acct_b", At: at},
	}
	if !reflect.DeepEqual(events, want) {
		t.Fatalf("got %#v", events)
	}
	o.Apply(events...)
	if got := fmt.Sprint(o.Permissions("acct_a")); got != "[api_key:read workspace:read]" {
		t.Fatalf("after update: %s", got)
	}
	if _, err := o.CreateRole("role_3", domain.RoleSpec{Name: &name}, at); !errors.Is(err, domain.ErrRoleNameTaken) {
		t.Fatalf("duplicate name: %v", err)
	}
	stranger := []string{"acct_zzz"}
	if _, err := o.UpdateRole("role_1", domain.RoleSpec{Users: &stranger}, at); err == nil {
		t.Fatal("a stranger in a role")
	}
	o.Apply(must(t)(o.DeleteRole("role_1", at))...)
	if len(o.Permissions("acct_a")) != 0 {
		t.Fatalf("after delete: %v", o.Permissions("acct_a"))
	}
	if _, err := domain.ParsePermission("organization:admin"); err == nil {
		t.Fatal("organization:admin is not grantable")
	}
}

// Every event type decodes back to itself: the registry misses none.
func TestEveryEventTypeDecodes(t *testing.T) {
	events := []domain.Event{
		domain.OrganizationCreated{}, domain.AccountCreated{}, domain.AccessKeyCreated{}, domain.AccessKeyDisabled{},
		domain.AccessKeyEnabled{}, domain.AccessKeyDeleted{}, domain.AccountDisabled{}, domain.AccountEnabled{},
		domain.RoleCreated{}, domain.RoleRenamed{}, domain.RoleDeleted{}, domain.PermissionGranted{}, domain.PermissionRevoked{},
		domain.RoleUserIncluded{}, domain.RoleUserExcluded{}, domain.WorkspaceCreated{}, domain.WorkspaceUpdated{},
		domain.MemberAuthorized{}, domain.MemberRevoked{}, domain.APIKeyCreated{}, domain.APIKeyUpdated{}, domain.APIKeyDeleted{},
		domain.APIKeyRevealed{}, domain.AccessKeyRotated{}, domain.RoleWorkspaceAdded{}, domain.RoleWorkspaceRemoved{},
		domain.APIKeysExported{},
	}
	seen := map[string]bool{}
	for _, e := range events {
		got, err := domain.DecodeEvent(e.EventType(), []byte(`{}`))
		if err != nil || reflect.TypeOf(got) != reflect.TypeOf(e) {
			t.Errorf("%s: %T %v", e.EventType(), got, err)
		}
		seen[e.EventType()] = true
	}
	if len(seen) != len(events) {
		t.Fatal("two events share a wire name")
	}
}

func TestAccountNamesAreUniqueIgnoringCase(t *testing.T) {
	cases := []struct {
		name string
		err  error
	}{
		{"ALICE", domain.ErrAccountNameTaken},
		{"Alice", domain.ErrAccountNameTaken},
		{" aLiCe ", domain.ErrAccountNameTaken},
		{"ADMIN", domain.ErrAccountNameTaken}, // the primary account's name
		{"alicia", nil},
		{"STRASSE", domain.ErrAccountNameTaken},    // full case folding: ß is ss
		{"\u00c9COLE", domain.ErrAccountNameTaken}, // É, and é written e + U+0301
		{"ΣΟΦΟΣ", domain.ErrAccountNameTaken},      // final sigma folds to σ
		{"ecole", nil},
		{"alice\ufe0f", domain.ErrAccountNameTaken}, // a variation selector shows nothing
		{"team\u00a0a", domain.ErrAccountNameTaken}, // any space is a space
		{"team   a", domain.ErrAccountNameTaken},    // a run of them, one
	}
	o := org(t)
	o.Apply(must(t)(o.CreateAccount("acct_s", "straße", at))...)
	o.Apply(must(t)(o.CreateAccount("acct_e", "e\u0301cole", at))...)
	o.Apply(must(t)(o.CreateAccount("acct_g", "σοφος", at))...)
	o.Apply(must(t)(o.CreateAccount("acct_t", "team a", at))...)
	for _, c := range cases {
		if _, err := o.CreateAccount("acct_new", c.name, at); !errors.Is(err, c.err) {
			t.Errorf("%q: got %v, want %v", c.name, err, c.err)
		}
	}
	if a, _ := o.Account("acct_e"); a.Name != "\u00e9cole" {
		t.Errorf("account names are stored in NFC, got %q", a.Name)
	}
}

// An old log may hold names that differ only by case: replaying it never fails,
// and none of them can be taken again.
func TestReplayOfNamesDifferingByCase(t *testing.T) {
	o := org(t)
	o.Apply(
		domain.AccountCreated{AccountID: "acct_A", Name: "ALICE", At: at},
		domain.RoleCreated{RoleID: "role_1", Name: "admins", At: at},
		domain.RoleCreated{RoleID: "role_2", Name: "ADMINS", At: at},
		domain.RoleCreated{RoleID: "role_3", Name: "ops", At: at},
		domain.RoleRenamed{RoleID: "role_3", Name: "Admins", At: at},
	)
	if a, ok := o.Account("acct_A"); !ok || a.Name != "ALICE" {
		t.Fatalf("replayed account: %+v", a)
	}
	if _, err := o.CreateAccount("acct_x", "Alice", at); !errors.Is(err, domain.ErrAccountNameTaken) {
		t.Fatalf("account: %v", err)
	}
	o.Apply(domain.RoleDeleted{RoleID: "role_3", At: at}, domain.RoleDeleted{RoleID: "role_2", At: at})
	name := "aDmInS"
	if _, err := o.CreateRole("role_4", domain.RoleSpec{Name: &name}, at); !errors.Is(err, domain.ErrRoleNameTaken) {
		t.Fatalf("role_1 still holds the name: %v", err)
	}
	own := "admins"
	if _, err := o.UpdateRole("role_1", domain.RoleSpec{Name: &own, Permissions: perms("workspace:read")}, at); err != nil {
		t.Fatalf("a role keeps its own name: %v", err)
	}
	o.Apply(domain.RoleDeleted{RoleID: "role_1", At: at})
	if _, err := o.CreateRole("role_4", domain.RoleSpec{Name: &name}, at); err != nil {
		t.Fatalf("the name is free once every holder is gone: %v", err)
	}
}

func TestRoleNamesAreUniqueIgnoringCase(t *testing.T) {
	o := org(t)
	readers, writers := "readers", "writers"
	o.Apply(must(t)(o.CreateRole("role_1", domain.RoleSpec{Name: &readers}, at))...)
	o.Apply(must(t)(o.CreateRole("role_2", domain.RoleSpec{Name: &writers}, at))...)
	for _, c := range []struct {
		op, id, name string
		err          error
	}{
		{"create", "role_3", "READERS", domain.ErrRoleNameTaken},
		{"create", "role_3", "Writers", domain.ErrRoleNameTaken},
		{"create", "role_3", "auditors", nil},
		{"rename", "role_2", "Readers", domain.ErrRoleNameTaken},
		{"rename", "role_1", "Readers", nil}, // a different case of its own name
		{"rename", "role_1", "readers", nil},
		{"rename", "role_1", "auditors", nil},
	} {
		name := c.name
		var err error
		if c.op == "create" {
			_, err = o.CreateRole(c.id, domain.RoleSpec{Name: &name}, at)
		} else {
			_, err = o.UpdateRole(c.id, domain.RoleSpec{Name: &name}, at)
		}
		if !errors.Is(err, c.err) {
			t.Errorf("%s %s %q: got %v, want %v", c.op, c.id, c.name, err, c.err)
		}
	}
	upper := "READERS"
	events := must(t)(o.UpdateRole("role_1", domain.RoleSpec{Name: &upper}, at))
	if !reflect.DeepEqual(events, []domain.Event{domain.RoleRenamed{RoleID: "role_1", Name: "READERS", At: at}}) {
		t.Fatalf("case-only rename: %#v", events)
	}
	o.Apply(events...)
	if _, err := o.CreateRole("role_3", domain.RoleSpec{Name: &readers}, at); !errors.Is(err, domain.ErrRoleNameTaken) {
		t.Fatalf("after the rename: %v", err)
	}
}

// TestRolesCarryWorkspaces: a role's workspace set is replaced by difference events,
// and authorizes the role's users there while they hold the role.
func TestRolesCarryWorkspaces(t *testing.T) {
	o := org(t)
	known := func(id string) bool { return id == "ws_1" || id == "ws_2" || id == "ws_3" }
	name, users := "ops", []string{"acct_a"}
	events := must(t)(o.CreateRole("role_1", domain.RoleSpec{Name: &name, Users: &users, Workspaces: &[]string{"ws_2", "ws_1"}, IsWorkspace: known}, at))
	var added []string
	for _, e := range events {
		if e, ok := e.(domain.RoleWorkspaceAdded); ok {
			added = append(added, e.WorkspaceID)
		}
	}
	if !slices.Equal(added, []string{"ws_2", "ws_1"}) {
		t.Fatalf("created with %v", events)
	}
	o.Apply(events...)
	if g := o.WorkspaceGrants("acct_a"); !reflect.DeepEqual(g, map[string][]string{"ws_1": {"role_1"}, "ws_2": {"role_1"}}) {
		t.Fatalf("grants %v", g)
	}
	if g := o.WorkspaceGrants("acct_b"); len(g) != 0 {
		t.Fatalf("bob holds no role: %v", g)
	}
	events = must(t)(o.UpdateRole("role_1", domain.RoleSpec{Workspaces: &[]string{"ws_3", "ws_2"}, IsWorkspace: known}, at))
	if fmt.Sprint(events) != fmt.Sprint([]domain.Event{domain.RoleWorkspaceRemoved{RoleID: "role_1", WorkspaceID: "ws_1", At: at},
		domain.RoleWorkspaceAdded{RoleID: "role_1", WorkspaceID: "ws_3", At: at}}) {
		t.Fatalf("update: %v", events)
	}
	o.Apply(events...)
	if m := o.RoleMembers("ws_3"); !reflect.DeepEqual(m, map[string][]string{"acct_a": {"role_1"}}) {
		t.Fatalf("members of ws_3: %v", m)
	}
	if r, _ := o.RoleByID("role_1"); !slices.Equal(r.Workspaces, []string{"ws_2", "ws_3"}) {
		t.Fatalf("role: %+v", r)
	}
	_, err := o.UpdateRole("role_1", domain.RoleSpec{Workspaces: &[]string{"ws_2", "ws_2", "ws_9"}, IsWorkspace: known}, at)
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 2 || ve.Fields[0].Code != "duplicate_entry" || ve.Fields[1].Code != "unknown_workspace" {
		t.Fatalf("bad workspaces: %v", err)
	}
	o.Apply(must(t)(o.DeleteRole("role_1", at))...)
	if g := o.WorkspaceGrants("acct_a"); len(g) != 0 {
		t.Fatalf("a deleted role authorizes nothing: %v", g)
	}
}

// TestAccessKeyRotation: a rotation replaces the key; the old secret stops at once
// or at the end of its grace period, a second rotation ends the first old secret at
// once, and the primary account's key rotates too.
func TestAccessKeyRotation(t *testing.T) {
	o := org(t)
	o.Apply(must(t)(o.CreateAccessKey("acct_a", "AK1", "h1", at))...)
	active := func(hash string, when time.Time) bool {
		a, ok := o.AccountBySecretHash(hash)
		return ok && a.SecretActive(hash, when)
	}
	o.Apply(must(t)(o.RotateAccessKey("acct_a", "AK2", "h2", time.Hour, at))...)
	if !active("h1", at.Add(59*time.Minute)) || active("h1", at.Add(time.Hour)) || !active("h2", at.Add(2*time.Hour)) {
		t.Fatal("grace period")
	}
	if a, _ := o.Account("acct_a"); a.AccessKeyID != "AK2" || a.PreviousAccessKeyID != "AK1" || !a.PreviousUntil.Equal(at.Add(time.Hour)) || a.KeyIDOf("h1") != "AK1" {
		t.Fatalf("account: %+v", a)
	}
	o.Apply(must(t)(o.RotateAccessKey("acct_a", "AK3", "h3", time.Hour, at.Add(time.Minute)))...)
	if active("h1", at.Add(2*time.Minute)) || !active("h2", at.Add(2*time.Minute)) || !active("h3", at.Add(2*time.Minute)) {
		t.Fatal("a second rotation ends the first old secret at once")
	}
	o.Apply(must(t)(o.SetAccessKeyDisabled("acct_a", true, at))...)
	if active("h2", at.Add(2*time.Minute)) || active("h3", at.Add(2*time.Minute)) {
		t.Fatal("disabling the account's key disables both secrets")
	}
	o.Apply(must(t)(o.SetAccessKeyDisabled("acct_a", false, at))...)
	o.Apply(must(t)(o.DeleteAccessKey("acct_a", at))...)
	if active("h2", at.Add(2*time.Minute)) || active("h3", at.Add(2*time.Minute)) {
		t.Fatal("deleting the key deletes both secrets")
	}
	o.Apply(must(t)(o.RotateAccessKey("acct_p", "AKp2", "hash-p2", 0, at))...)
	if active("hash-p", at) || !active("hash-p2", at) {
		t.Fatal("the primary's key rotates, at once without a grace period")
	}
	for _, g := range []time.Duration{-time.Second, 24*time.Hour + time.Second} {
		if _, err := o.RotateAccessKey("acct_p", "AKx", "hx", g, at); err == nil {
			t.Fatalf("grace %v accepted", g)
		}
	}
	if _, err := o.RotateAccessKey("acct_b", "AKx", "hx", 0, at); !errors.Is(err, domain.ErrAccessKeyNotFound) {
		t.Fatalf("no key to rotate: %v", err)
	}
}
