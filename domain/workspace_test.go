package domain_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

var at = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func created(t *testing.T) *domain.Workspace {
	t.Helper()
	w := domain.NewEmptyWorkspace("ws_1")
	events, err := w.Create("org_1", "  prod  ", "main", at)
	if err != nil {
		t.Fatal(err)
	}
	w.Apply(events...)
	return w
}

func must(t *testing.T) func([]domain.Event, error) []domain.Event {
	return func(events []domain.Event, err error) []domain.Event {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return events
	}
}

func TestWorkspaceCreate(t *testing.T) {
	w := domain.NewEmptyWorkspace("ws_1")
	events := must(t)(w.Create("org_1", "  prod  ", "main", at))
	want := []domain.Event{domain.WorkspaceCreated{WorkspaceID: "ws_1", OrganizationID: "org_1", Name: "prod", Description: "main", At: at}}
	if !reflect.DeepEqual(events, want) {
		t.Fatalf("got %#v", events)
	}
	if w.Exists() {
		t.Fatal("deciding must not change state")
	}
	w.Apply(events...)
	if _, err := w.Create("org_1", "again", "", at); !errors.Is(err, domain.ErrWorkspaceExists) {
		t.Fatalf("second create: %v", err)
	}
	var ve *domain.ValidationError
	if _, err := domain.NewEmptyWorkspace("ws_2").Create("org_1", " ", string(make([]byte, 600)), at); !errors.As(err, &ve) || len(ve.Fields) != 2 {
		t.Fatalf("invalid create: %v", err)
	}
}

func TestWorkspaceUpdate(t *testing.T) {
	w := created(t)
	name := "staging"
	events := must(t)(w.Update(&name, nil, at))
	if !reflect.DeepEqual(events, []domain.Event{domain.WorkspaceUpdated{Name: "staging", Description: "main", At: at}}) {
		t.Fatalf("got %#v", events)
	}
	same := "prod"
	if events := must(t)(w.Update(&same, nil, at)); len(events) != 0 {
		t.Fatalf("no change must decide nothing, got %v", events)
	}
}

func TestSetMembersDecidesOnlyTheDifference(t *testing.T) {
	w := created(t)
	known := func(id string) bool { return id != "acct_stranger" }
	w.Apply(must(t)(w.SetMembers([]string{"acct_a", "acct_b"}, known, at))...)
	events := must(t)(w.SetMembers([]string{"acct_b", "acct_c"}, known, at))
	want := []domain.Event{domain.MemberRevoked{AccountID: "acct_a", At: at}, domain.MemberAuthorized{AccountID: "acct_c", At: at}}
	if !reflect.DeepEqual(events, want) {
		t.Fatalf("got %#v", events)
	}
	w.Apply(events...)
	if !reflect.DeepEqual(w.Members(), []string{"acct_b", "acct_c"}) {
		t.Fatalf("members %v", w.Members())
	}
	if _, err := w.SetMembers([]string{"acct_b", "acct_b", "acct_stranger"}, known, at); err == nil {
		t.Fatal("duplicates and strangers must be refused")
	}
}

func newKey(id string, bt domain.BusinessType, name string) domain.NewAPIKey {
	return domain.NewAPIKey{ID: id, BusinessType: bt, Name: name, SecretHash: "h-" + id, Masked: "m", Sealed: []byte("s")}
}

func TestCreateAPIKeysNamesSearchKeys(t *testing.T) {
	w := created(t)
	events := must(t)(w.CreateAPIKeys([]domain.NewAPIKey{
		newKey("key_1", domain.BusinessSearch, ""), newKey("key_2", domain.BusinessMaaS, "ignored"), newKey("key_3", domain.BusinessSearch, "search-key-2"),
	}, "", at))
	names := []string{}
	for _, e := range events {
		names = append(names, e.(domain.APIKeyCreated).Name)
	}
	if !reflect.DeepEqual(names, []string{"search-key-1", "", "search-key-2"}) {
		t.Fatalf("names %v", names)
	}
	w.Apply(events...)
	next := must(t)(w.CreateAPIKeys([]domain.NewAPIKey{newKey("key_4", domain.BusinessSearch, "")}, "", at))
	if got := next[0].(domain.APIKeyCreated).Name; got != "search-key-3" {
		t.Fatalf("default name %q", got)
	}
}

func TestCreateAPIKeysBatchIsAllOrNothing(t *testing.T) {
	w := created(t)
	w.Apply(must(t)(w.CreateAPIKeys([]domain.NewAPIKey{newKey("key_1", domain.BusinessSearch, "p-2")}, "", at))...)
	_, err := w.CreateAPIKeys([]domain.NewAPIKey{newKey("key_2", domain.BusinessSearch, "p-1"), newKey("key_3", domain.BusinessSearch, "p-2")}, "batch_1", at)
	if !errors.Is(err, domain.ErrKeyNameTaken) {
		t.Fatalf("got %v", err)
	}
	if _, ok := w.Key("key_2"); ok {
		t.Fatal("no key of a refused batch may exist")
	}
}

func TestAPIKeyLifecycle(t *testing.T) {
	w := created(t)
	w.Apply(must(t)(w.CreateAPIKeys([]domain.NewAPIKey{newKey("key_1", domain.BusinessSearch, "a"), newKey("key_2", domain.BusinessMaaS, "")}, "", at))...)

	name, q := "b", domain.QPS(5)
	events := must(t)(w.UpdateAPIKey("key_1", domain.APIKeyPatch{Name: &name, QPSLimit: &q}, at))
	if e := events[0].(domain.APIKeyUpdated); e.Name != "b" || e.QPSLimit != 5 {
		t.Fatalf("got %#v", e)
	}
	w.Apply(events...)
	if _, err := w.UpdateAPIKey("key_2", domain.APIKeyPatch{Name: &name}, at); err == nil {
		t.Fatal("a MaaS key has no name")
	}
	if events := must(t)(w.UpdateAPIKey("key_1", domain.APIKeyPatch{Name: &name}, at)); len(events) != 0 {
		t.Fatal("no change must decide nothing")
	}
	w.Apply(must(t)(w.RevealAPIKey("key_1", at))...)
	w.Apply(must(t)(w.DeleteAPIKey("key_1", at))...)
	for _, err := range []error{
		func() error { _, err := w.RevealAPIKey("key_1", at); return err }(),
		func() error { _, err := w.DeleteAPIKey("key_1", at); return err }(),
		func() error { _, err := w.UpdateAPIKey("key_1", domain.APIKeyPatch{}, at); return err }(),
	} {
		if !errors.Is(err, domain.ErrAPIKeyDeleted) {
			t.Fatalf("deleted key: %v", err)
		}
	}
	if k, _ := w.Key("key_1"); k.Sealed != nil {
		t.Fatal("a deleted key keeps no sealed plaintext")
	}
	if _, err := w.RevealAPIKey("key_9", at); !errors.Is(err, domain.ErrAPIKeyNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	// The name of a deleted Search key is free again.
	if _, err := w.CreateAPIKeys([]domain.NewAPIKey{newKey("key_5", domain.BusinessSearch, "b")}, "", at); err != nil {
		t.Fatal(err)
	}
}

func TestOrganization(t *testing.T) {
	o := domain.NewEmptyOrganization("org_1")
	events := must(t)(o.Create("acme", "acct_p", "admin", "AK1", "hash", at))
	if len(events) != 2 {
		t.Fatalf("got %v", events)
	}
	o.Apply(events...)
	if a, ok := o.AccountBySecretHash("hash"); !ok || !a.Primary || a.ID != "acct_p" {
		t.Fatalf("primary %v %v", a, ok)
	}
	o.Apply(must(t)(o.CreateAccount("acct_s", "dev", at))...)
	if !o.HasAccount("acct_s") {
		t.Fatal("sub-account missing")
	}
	if _, err := o.CreateAccount("acct_t", " dev ", at); !errors.Is(err, domain.ErrAccountNameTaken) {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, err := domain.NewEmptyOrganization("org_2").CreateAccount("acct_x", "a", at); !errors.Is(err, domain.ErrOrganizationNotFound) {
		t.Fatalf("no org: %v", err)
	}
}
