package domain

import (
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Organization is the consistency boundary for accounts (the primary account and its
// sub-accounts), their access keys and the roles. Its methods decide; Apply evolves.
// Not safe for concurrent use.
type Organization struct {
	id           string
	name         string
	primaryID    string
	accounts     map[string]*Account
	accountNames map[string]string // nameKey of an account name → account id
	bySecret     map[string]string // access key secret hash → account id
	roles        map[string]*role
	deletedRoles map[string]bool   // ids of the roles deleted: never to be created again
	roleNames    map[string]string // nameKey of a role name → role id
	at           uint64            // the position of the event being applied
	by           string            // the actor of the event being applied
}

// NewEmptyOrganization is the state before the first event of organization id.
func NewEmptyOrganization(id string) *Organization {
	return &Organization{id: id, accounts: map[string]*Account{}, accountNames: map[string]string{},
		bySecret: map[string]string{}, roles: map[string]*role{}, deletedRoles: map[string]bool{}, roleNames: map[string]string{}}
}

// RoleWasDeleted tells whether the role id existed and was deleted (a role's id is
// never given again: an idempotent retry of its creation finds it gone).
func (o *Organization) RoleWasDeleted(id string) bool { return o.deletedRoles[id] }

// ID is the organization id.
func (o *Organization) ID() string { return o.id }

// Name is the organization's name.
func (o *Organization) Name() string { return o.name }

// Exists reports whether the organization was created.
func (o *Organization) Exists() bool { return o.primaryID != "" }

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Create decides a new organization with its primary account and that account's
// access key (whose secret the caller generated and hashed).
func (o *Organization) Create(name, primaryAccountID, primaryName, accessKeyID, secretHash string, at time.Time) ([]Event, error) {
	if o.Exists() {
		return nil, ErrOrganizationExists
	}
	var verr ValidationError
	n, err := ParseName("name", name)
	verr.Merge("", err)
	pn, err := ParseName("primary_account_name", primaryName)
	verr.Merge("", err)
	if err := verr.Err(); err != nil {
		return nil, err
	}
	return []Event{
		OrganizationCreated{OrganizationID: o.id, Name: n, PrimaryAccountID: primaryAccountID, PrimaryAccountName: pn, At: at},
		AccessKeyCreated{AccountID: primaryAccountID, AccessKeyID: accessKeyID, SecretHash: secretHash, At: at},
	}, nil
}

// Apply evolves the state by events; it never fails.
func (o *Organization) Apply(events ...Event) {
	for _, e := range events {
		o.apply(e)
	}
}

// ApplyBy evolves the state by an event read from the log or just appended at a
// position, which becomes the version of what it changes, by an actor (ce-actor),
// who becomes the creator or last editor of what it changes.
func (o *Organization) ApplyBy(position uint64, actor string, e Event) {
	o.at, o.by = position, actor
	o.apply(e)
}

func (o *Organization) apply(e Event) {
	switch e := e.(type) {
	case OrganizationCreated:
		o.name, o.primaryID = e.Name, e.PrimaryAccountID
		o.addAccount(&Account{ID: e.PrimaryAccountID, Name: e.PrimaryAccountName, Primary: true, CreatedAt: e.At, Version: o.at,
			CreatedBy: o.by, UpdatedBy: o.by})
	case AccountCreated:
		o.addAccount(&Account{ID: e.AccountID, Name: e.Name, CreatedAt: e.At, Version: o.at, CreatedBy: o.by, UpdatedBy: o.by})
	case AccountDisabled:
		o.changeAccount(e.AccountID, func(a *Account) { a.Disabled, a.UpdatedBy = true, o.by })
	case AccountEnabled:
		o.changeAccount(e.AccountID, func(a *Account) { a.Disabled, a.UpdatedBy = false, o.by })
	case AccessKeyCreated:
		o.changeAccount(e.AccountID, func(a *Account) {
			a.AccessKeyID, a.SecretHash, a.AccessKeyDisabled, a.AccessKeyCreatedAt = e.AccessKeyID, e.SecretHash, false, e.At
			a.AccessKeyCreatedBy, a.AccessKeyUpdatedBy = o.by, o.by
			o.bySecret[e.SecretHash] = a.ID
		})
	case AccessKeyDisabled:
		o.changeAccount(e.AccountID, func(a *Account) { a.AccessKeyDisabled, a.AccessKeyUpdatedBy = true, o.by })
	case AccessKeyEnabled:
		o.changeAccount(e.AccountID, func(a *Account) { a.AccessKeyDisabled, a.AccessKeyUpdatedBy = false, o.by })
	case AccessKeyRotated:
		o.changeAccount(e.AccountID, func(a *Account) { o.rotate(a, e) })
	case AccessKeyDeleted:
		o.changeAccount(e.AccountID, func(a *Account) {
			delete(o.bySecret, a.SecretHash)
			delete(o.bySecret, a.PreviousSecretHash)
			a.PreviousAccessKeyID, a.PreviousSecretHash, a.PreviousUntil = "", "", time.Time{}
			a.AccessKeyID, a.SecretHash, a.AccessKeyDisabled, a.AccessKeyCreatedAt = "", "", false, time.Time{}
			a.AccessKeyCreatedBy, a.AccessKeyUpdatedBy = "", ""
		})
	case RoleCreated:
		if old := o.roles[e.RoleID]; old != nil {
			o.unindexRole(old)
		}
		o.roles[e.RoleID] = &role{id: e.RoleID, name: e.Name, permissions: map[Permission]bool{}, users: map[string]bool{},
			workspaces: map[string]bool{}, createdAt: e.At, updatedAt: e.At, version: o.at, createdBy: o.by, updatedBy: o.by}
		o.roleNames[NameKey(e.Name)] = e.RoleID
	case RoleRenamed:
		o.changeRole(e.RoleID, e.At, func(r *role) {
			o.unindexRole(r)
			r.name = e.Name
			o.roleNames[NameKey(e.Name)] = r.id
		})
	case RoleDeleted:
		o.deletedRoles[e.RoleID] = true
		if r := o.roles[e.RoleID]; r != nil {
			delete(o.roles, e.RoleID)
			o.unindexRole(r)
			for id := range r.users {
				o.changeAccount(id, func(*Account) {})
			}
		}
	case PermissionGranted:
		o.changeRole(e.RoleID, e.At, func(r *role) {
			if p, err := ParsePermission(e.Permission); err == nil {
				r.permissions[p] = true
			}
			o.changeUsers(r)
		})
	case PermissionRevoked:
		o.changeRole(e.RoleID, e.At, func(r *role) {
			if p, err := ParsePermission(e.Permission); err == nil {
				delete(r.permissions, p)
			}
			o.changeUsers(r)
		})
	case RoleUserIncluded:
		o.changeRole(e.RoleID, e.At, func(r *role) { r.users[e.AccountID] = true })
		o.changeAccount(e.AccountID, func(*Account) {})
	case RoleUserExcluded:
		o.changeRole(e.RoleID, e.At, func(r *role) { delete(r.users, e.AccountID) })
		o.changeAccount(e.AccountID, func(*Account) {})
	case RoleWorkspaceAdded:
		o.changeRole(e.RoleID, e.At, func(r *role) { r.workspaces[e.WorkspaceID] = true })
	case RoleWorkspaceRemoved:
		o.changeRole(e.RoleID, e.At, func(r *role) { delete(r.workspaces, e.WorkspaceID) })
	}
}

// NameKey is the form under which two names are the same name: the canonical
// caseless match of Unicode (NFD(toCasefold(NFD(s)))), so that "alice", "ALICE" and
// "Alice" clash, as do "straße" and "STRASSE", "é" and "e\u0301", "ς" and "Σ"; with
// variation selectors dropped and any run of white space one space ("team a" and
// "team\u00a0 a" clash).
// cases.Fold does the full Unicode case folding that strings.ToLower does not.
func NameKey(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Variation_Selector, r) { // shows as nothing of its own
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " ") // any run of spaces is one
	return norm.NFD.String(cases.Fold().String(norm.NFD.String(s)))
}

// sortedKeys lists a map's keys in order; an empty map gives an empty list, never
// nil (which a client would read as null).
func sortedKeys[V any](m map[string]V) []string {
	return append([]string{}, slices.Sorted(maps.Keys(m))...)
}
