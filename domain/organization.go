package domain

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/oklog/ulid/v2"
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
	roleNames    map[string]string // nameKey of a role name → role id
	at           uint64            // the position of the event being applied
}

// Account is the write-side state of one account; a copy is handed out. An account
// without an access key has an empty AccessKeyID.
type Account struct {
	ID                 string
	Name               string
	Primary            bool
	Disabled           bool
	AccessKeyID        string
	SecretHash         string
	AccessKeyDisabled  bool
	AccessKeyCreatedAt time.Time
	CreatedAt          time.Time
	// Version is the position of the last event that changed the account, its
	// access key or the roles that include it.
	Version uint64
}

// Active reports whether the account's access key may authenticate now.
func (a Account) Active() bool { return !a.Disabled && a.AccessKeyID != "" && !a.AccessKeyDisabled }

// Role grants permissions to the accounts it includes; a copy is handed out.
type Role struct {
	ID          string
	Name        string
	Permissions []Permission
	Users       []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Version is the position of the last event that changed the role.
	Version uint64
}

type role struct {
	id, name             string
	permissions          map[Permission]bool
	users                map[string]bool
	createdAt, updatedAt time.Time
	version              uint64
}

// Errors of the organization.
var (
	// ErrAccountNotFound: no such account in the organization.
	ErrAccountNotFound = fmt.Errorf("organization: account not found")
	// ErrPrimaryAccount: the primary account cannot be disabled, nor its access key
	// disabled or deleted (no one could manage the organization any more).
	ErrPrimaryAccount = fmt.Errorf("organization: the primary account's access is not changed that way")
	// ErrAccessKeyExists: an account holds at most one access key.
	ErrAccessKeyExists = fmt.Errorf("organization: the account already has an access key")
	// ErrAccessKeyNotFound: the account has no access key.
	ErrAccessKeyNotFound = fmt.Errorf("organization: the account has no access key")
	// ErrRoleNotFound: no such role.
	ErrRoleNotFound = fmt.Errorf("organization: role not found")
	// ErrRoleNameTaken: role names are unique in the organization.
	ErrRoleNameTaken = fmt.Errorf("organization: role name already used")
)

// NewEmptyOrganization is the state before the first event of organization id.
func NewEmptyOrganization(id string) *Organization {
	return &Organization{id: id, accounts: map[string]*Account{}, accountNames: map[string]string{},
		bySecret: map[string]string{}, roles: map[string]*role{}, roleNames: map[string]string{}}
}

// NewRoleID returns a fresh role id.
func NewRoleID() string { return RoleIDOf(ulid.Make()) }

// RoleIDOf names a role after a given ULID (see AccountIDOf).
func RoleIDOf(u ulid.ULID) string { return "role_" + u.String() }

// IsRoleID checks the shape of a role id.
func IsRoleID(s string) bool { return ValidID("role_", s) }

// ID is the organization id.
func (o *Organization) ID() string { return o.id }

// Name is the organization's name.
func (o *Organization) Name() string { return o.name }

// Exists reports whether the organization was created.
func (o *Organization) Exists() bool { return o.primaryID != "" }

// PrimaryAccountID is the primary account.
func (o *Organization) PrimaryAccountID() string { return o.primaryID }

// HasAccount reports whether id is an account of this organization.
func (o *Organization) HasAccount(id string) bool { _, ok := o.accounts[id]; return ok }

// Account returns a copy of one account.
func (o *Organization) Account(id string) (Account, bool) {
	a, ok := o.accounts[id]
	if !ok {
		return Account{}, false
	}
	return *a, true
}

// AccountBySecretHash finds the account whose access key secret has this HMAC. The
// map lookup is on an HMAC, so its timing reveals nothing of the secret.
func (o *Organization) AccountBySecretHash(hash string) (Account, bool) {
	id, ok := o.bySecret[hash]
	if !ok {
		return Account{}, false
	}
	return o.Account(id)
}

// Permissions are the effective permissions of an account: the union of the roles
// that include it; the primary account holds every permission and organization admin.
func (o *Organization) Permissions(accountID string) []Permission {
	set := map[Permission]bool{}
	if accountID == o.primaryID {
		for _, p := range AllPermissions() {
			set[p] = true
		}
	} else {
		for _, r := range o.roles {
			if r.users[accountID] {
				maps.Copy(set, r.permissions)
			}
		}
	}
	return sortedPermissions(set)
}

// Authorize refuses, with a *ForbiddenError naming it, an account that lacks p.
func (o *Organization) Authorize(accountID string, p Permission) error {
	if accountID == o.primaryID {
		return nil
	}
	if p != PermOrganizationAdmin {
		for _, r := range o.roles {
			if r.users[accountID] && r.permissions[p] {
				return nil
			}
		}
	}
	return &ForbiddenError{Missing: p}
}

// Roles lists the roles by id.
func (o *Organization) Roles() []Role {
	out := make([]Role, 0, len(o.roles))
	for _, id := range sortedKeys(o.roles) {
		out = append(out, o.roles[id].export())
	}
	return out
}

// RoleByID returns a copy of one role.
func (o *Organization) RoleByID(id string) (Role, bool) {
	r, ok := o.roles[id]
	if !ok {
		return Role{}, false
	}
	return r.export(), true
}

func (r *role) export() Role {
	return Role{ID: r.id, Name: r.name, Permissions: sortedPermissions(r.permissions), Users: sortedKeys(r.users),
		CreatedAt: r.createdAt, UpdatedAt: r.updatedAt, Version: r.version}
}

func sortedPermissions(set map[Permission]bool) []Permission {
	out := slices.Collect(maps.Keys(set))
	slices.SortFunc(out, func(a, b Permission) int {
		if a.Module != b.Module {
			return compare(string(a.Module), string(b.Module))
		}
		return compare(string(a.Action), string(b.Action))
	})
	return out
}

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

// CreateAccount decides a new sub-account with a unique name: two names that differ
// only by case or by Unicode normalization are the same name.
func (o *Organization) CreateAccount(id, name string, at time.Time) ([]Event, error) {
	if !o.Exists() {
		return nil, ErrOrganizationNotFound
	}
	n, err := ParseName("name", name)
	if err != nil {
		return nil, err
	}
	if _, taken := o.accountNames[nameKey(n)]; taken {
		return nil, ErrAccountNameTaken
	}
	return []Event{AccountCreated{AccountID: id, Name: n, At: at}}, nil
}

// SetAccountDisabled disables or enables a sub-account; no change, no event.
func (o *Organization) SetAccountDisabled(id string, disabled bool, at time.Time) ([]Event, error) {
	a, ok := o.accounts[id]
	if !ok {
		return nil, ErrAccountNotFound
	}
	if a.Primary {
		return nil, ErrPrimaryAccount
	}
	switch {
	case a.Disabled == disabled:
		return nil, nil
	case disabled:
		return []Event{AccountDisabled{AccountID: id, At: at}}, nil
	default:
		return []Event{AccountEnabled{AccountID: id, At: at}}, nil
	}
}

// CreateAccessKey gives an account its one access key.
func (o *Organization) CreateAccessKey(accountID, accessKeyID, secretHash string, at time.Time) ([]Event, error) {
	a, ok := o.accounts[accountID]
	if !ok {
		return nil, ErrAccountNotFound
	}
	if a.AccessKeyID != "" {
		return nil, ErrAccessKeyExists
	}
	return []Event{AccessKeyCreated{AccountID: accountID, AccessKeyID: accessKeyID, SecretHash: secretHash, At: at}}, nil
}

// SetAccessKeyDisabled disables or enables an account's access key; no change, no
// event.
func (o *Organization) SetAccessKeyDisabled(accountID string, disabled bool, at time.Time) ([]Event, error) {
	a, err := o.withAccessKey(accountID)
	if err != nil {
		return nil, err
	}
	switch {
	case a.AccessKeyDisabled == disabled:
		return nil, nil
	case disabled:
		return []Event{AccessKeyDisabled{AccountID: accountID, AccessKeyID: a.AccessKeyID, At: at}}, nil
	default:
		return []Event{AccessKeyEnabled{AccountID: accountID, AccessKeyID: a.AccessKeyID, At: at}}, nil
	}
}

// DeleteAccessKey deletes an account's access key; the account may get a new one.
func (o *Organization) DeleteAccessKey(accountID string, at time.Time) ([]Event, error) {
	a, err := o.withAccessKey(accountID)
	if err != nil {
		return nil, err
	}
	return []Event{AccessKeyDeleted{AccountID: accountID, AccessKeyID: a.AccessKeyID, At: at}}, nil
}

func (o *Organization) withAccessKey(accountID string) (*Account, error) {
	a, ok := o.accounts[accountID]
	if !ok {
		return nil, ErrAccountNotFound
	}
	if a.Primary {
		return nil, ErrPrimaryAccount
	}
	if a.AccessKeyID == "" {
		return nil, ErrAccessKeyNotFound
	}
	return a, nil
}

// RoleSpec is a validated role change; nil fields stay as they are.
type RoleSpec struct {
	Name        *string
	Permissions *[]Permission
	Users       *[]string
}

// CreateRole decides a role with its permissions and users.
func (o *Organization) CreateRole(id string, spec RoleSpec, at time.Time) ([]Event, error) {
	if !o.Exists() {
		return nil, ErrOrganizationNotFound
	}
	if spec.Name == nil {
		return nil, invalid("name", "required", "must not be empty")
	}
	events := []Event{RoleCreated{RoleID: id, Name: *spec.Name, At: at}}
	more, err := o.roleChanges(&role{id: id, permissions: map[Permission]bool{}, users: map[string]bool{}}, spec, at)
	if err != nil {
		return nil, err
	}
	return append(events, more...), nil
}

// UpdateRole renames a role and/or replaces its permissions or users: only the
// difference becomes events.
func (o *Organization) UpdateRole(id string, spec RoleSpec, at time.Time) ([]Event, error) {
	r, ok := o.roles[id]
	if !ok {
		return nil, ErrRoleNotFound
	}
	var events []Event
	if spec.Name != nil && *spec.Name != r.name {
		events = append(events, RoleRenamed{RoleID: id, Name: *spec.Name, At: at})
	}
	more, err := o.roleChanges(r, spec, at)
	if err != nil {
		return nil, err
	}
	return append(events, more...), nil
}

func (o *Organization) roleChanges(r *role, spec RoleSpec, at time.Time) ([]Event, error) {
	var verr ValidationError
	// Role names are unique ignoring case; a role may always keep its own name or
	// change only its case (even if an old log left another role with that name).
	if spec.Name != nil {
		if key := nameKey(*spec.Name); key != nameKey(r.name) {
			if other, taken := o.roleNames[key]; taken && other != r.id {
				return nil, fmt.Errorf("%w: %q", ErrRoleNameTaken, *spec.Name)
			}
		}
	}
	var events []Event
	if spec.Permissions != nil {
		want := map[Permission]bool{}
		for _, p := range *spec.Permissions {
			want[p] = true
		}
		for _, p := range sortedPermissions(r.permissions) {
			if !want[p] {
				events = append(events, PermissionRevoked{RoleID: r.id, Permission: p.String(), At: at})
			}
		}
		for _, p := range sortedPermissions(want) {
			if !r.permissions[p] {
				events = append(events, PermissionGranted{RoleID: r.id, Permission: p.String(), At: at})
			}
		}
	}
	if spec.Users != nil {
		want := map[string]bool{}
		for i, id := range *spec.Users {
			field := "users[" + strconv.Itoa(i) + "]"
			switch {
			case want[id]:
				verr.Add(field, "duplicate_entry", fmt.Sprintf("%s is listed twice", quoteInput(id)))
			case !o.HasAccount(id):
				verr.Add(field, "unknown_account", fmt.Sprintf("%s is not an account of this organization", quoteInput(id)))
			}
			want[id] = true
		}
		for _, id := range sortedKeys(r.users) {
			if !want[id] {
				events = append(events, RoleUserExcluded{RoleID: r.id, AccountID: id, At: at})
			}
		}
		for _, id := range *spec.Users {
			if !r.users[id] && want[id] {
				events = append(events, RoleUserIncluded{RoleID: r.id, AccountID: id, At: at})
				want[id] = false // once, even if listed twice
			}
		}
	}
	if err := verr.Err(); err != nil {
		return nil, err
	}
	return events, nil
}

// DeleteRole deletes a role.
func (o *Organization) DeleteRole(id string, at time.Time) ([]Event, error) {
	if _, ok := o.roles[id]; !ok {
		return nil, ErrRoleNotFound
	}
	return []Event{RoleDeleted{RoleID: id, At: at}}, nil
}

// Apply evolves the state by events; it never fails.
func (o *Organization) Apply(events ...Event) {
	for _, e := range events {
		o.apply(e)
	}
}

// ApplyAt evolves the state by an event read from the log or just appended at a
// position, which becomes the version of what it changes.
func (o *Organization) ApplyAt(position uint64, e Event) {
	o.at = position
	o.apply(e)
}

func (o *Organization) apply(e Event) {
	switch e := e.(type) {
	case OrganizationCreated:
		o.name, o.primaryID = e.Name, e.PrimaryAccountID
		o.addAccount(&Account{ID: e.PrimaryAccountID, Name: e.PrimaryAccountName, Primary: true, CreatedAt: e.At, Version: o.at})
	case AccountCreated:
		o.addAccount(&Account{ID: e.AccountID, Name: e.Name, CreatedAt: e.At, Version: o.at})
	case AccountDisabled:
		o.changeAccount(e.AccountID, func(a *Account) { a.Disabled = true })
	case AccountEnabled:
		o.changeAccount(e.AccountID, func(a *Account) { a.Disabled = false })
	case AccessKeyCreated:
		o.changeAccount(e.AccountID, func(a *Account) {
			a.AccessKeyID, a.SecretHash, a.AccessKeyDisabled, a.AccessKeyCreatedAt = e.AccessKeyID, e.SecretHash, false, e.At
			o.bySecret[e.SecretHash] = a.ID
		})
	case AccessKeyDisabled:
		o.changeAccount(e.AccountID, func(a *Account) { a.AccessKeyDisabled = true })
	case AccessKeyEnabled:
		o.changeAccount(e.AccountID, func(a *Account) { a.AccessKeyDisabled = false })
	case AccessKeyDeleted:
		o.changeAccount(e.AccountID, func(a *Account) {
			delete(o.bySecret, a.SecretHash)
			a.AccessKeyID, a.SecretHash, a.AccessKeyDisabled, a.AccessKeyCreatedAt = "", "", false, time.Time{}
		})
	case RoleCreated:
		if old := o.roles[e.RoleID]; old != nil {
			o.unindexRole(old)
		}
		o.roles[e.RoleID] = &role{id: e.RoleID, name: e.Name, permissions: map[Permission]bool{}, users: map[string]bool{},
			createdAt: e.At, updatedAt: e.At, version: o.at}
		o.roleNames[nameKey(e.Name)] = e.RoleID
	case RoleRenamed:
		o.changeRole(e.RoleID, e.At, func(r *role) {
			o.unindexRole(r)
			r.name = e.Name
			o.roleNames[nameKey(e.Name)] = r.id
		})
	case RoleDeleted:
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
		})
	case PermissionRevoked:
		o.changeRole(e.RoleID, e.At, func(r *role) {
			if p, err := ParsePermission(e.Permission); err == nil {
				delete(r.permissions, p)
			}
		})
	case RoleUserIncluded:
		o.changeRole(e.RoleID, e.At, func(r *role) { r.users[e.AccountID] = true })
		o.changeAccount(e.AccountID, func(*Account) {})
	case RoleUserExcluded:
		o.changeRole(e.RoleID, e.At, func(r *role) { delete(r.users, e.AccountID) })
		o.changeAccount(e.AccountID, func(*Account) {})
	}
}

// changeAccount applies a change to an account, if it exists, and versions it.
func (o *Organization) changeAccount(id string, change func(*Account)) {
	if a := o.accounts[id]; a != nil {
		change(a)
		a.Version = o.at
	}
}

// changeRole applies a change to a role, if it exists, and versions it.
func (o *Organization) changeRole(id string, at time.Time, change func(*role)) {
	if r := o.roles[id]; r != nil {
		change(r)
		r.updatedAt, r.version = at, o.at
	}
}

// addAccount indexes the account's name; when an old log holds two names that
// differ only by case, the later account holds the index entry and the name stays
// taken either way (accounts are never renamed nor deleted).
func (o *Organization) addAccount(a *Account) {
	o.accounts[a.ID] = a
	o.accountNames[nameKey(a.Name)] = a.ID
}

// unindexRole frees the index entry r holds (r was renamed or deleted, or is being
// replaced): an old log may hold roles whose names differ only by case, so the entry
// passes to the latest of the other roles that still have that name, if any.
func (o *Organization) unindexRole(r *role) {
	key := nameKey(r.name)
	if o.roleNames[key] != r.id {
		return
	}
	delete(o.roleNames, key)
	for _, id := range sortedKeys(o.roles) {
		if other := o.roles[id]; other != r && nameKey(other.name) == key {
			o.roleNames[key] = id
		}
	}
}

// nameKey is the form under which two names are the same name: the canonical
// caseless match of Unicode (NFD(toCasefold(NFD(s)))), so that "alice", "ALICE" and
// "Alice" clash, as do "straße" and "STRASSE", "é" and "e\u0301", "ς" and "Σ".
// cases.Fold does the full Unicode case folding that strings.ToLower does not.
func nameKey(s string) string {
	return norm.NFD.String(cases.Fold().String(norm.NFD.String(s)))
}

// sortedKeys lists a map's keys in order; an empty map gives an empty list, never
// nil (which a client would read as null).
func sortedKeys[V any](m map[string]V) []string {
	return append([]string{}, slices.Sorted(maps.Keys(m))...)
}
