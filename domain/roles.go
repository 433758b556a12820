package domain

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/oklog/ulid/v2"
)

// Role grants permissions to the accounts it includes; a copy is handed out.
type Role struct {
	ID          string
	Name        string
	Permissions []Permission
	Users       []string
	// Workspaces are the workspaces the role authorizes its users on.
	Workspaces []string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// Version is the position of the last event that changed the role.
	Version uint64
	// CreatedBy and UpdatedBy are the actors of its creation and last change.
	CreatedBy, UpdatedBy string
}

type role struct {
	id, name             string
	permissions          map[Permission]bool
	users                map[string]bool
	workspaces           map[string]bool
	createdAt, updatedAt time.Time
	version              uint64
	createdBy, updatedBy string
}

// NewRoleID returns a fresh role id.
func NewRoleID() string { return RoleIDOf(ulid.Make()) }

// RoleIDOf names a role after a given ULID (see AccountIDOf).
func RoleIDOf(u ulid.ULID) string { return "role_" + u.String() }

// IsRoleID checks the shape of a role id.
func IsRoleID(s string) bool { return ValidID("role_", s) }

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
		Workspaces: sortedKeys(r.workspaces), CreatedAt: r.createdAt, UpdatedAt: r.updatedAt, Version: r.version, CreatedBy: r.createdBy, UpdatedBy: r.updatedBy}
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

// RoleSpec is a validated role change; nil fields stay as they are.
type RoleSpec struct {
	Name        *string
	Permissions *[]Permission
	Users       *[]string
	Workspaces  *[]string
	// IsWorkspace tells whether an id is a workspace of the organization (the
	// workspaces are aggregates of their own); needed when Workspaces is set.
	IsWorkspace func(id string) bool
}

// MaxRoleWorkspaces bounds the workspaces one role carries.
const MaxRoleWorkspaces = 1000

// WorkspaceGrants says, for each workspace an account is authorized on through
// roles, which roles (ids, in order) authorize it there.
func (o *Organization) WorkspaceGrants(accountID string) map[string][]string {
	return o.rolesBy(func(r *role) bool { return r.users[accountID] }, func(r *role) map[string]bool { return r.workspaces })
}

// RoleMembers says, for each account a role authorizes on a workspace, which roles
// (ids, in order) do.
func (o *Organization) RoleMembers(workspaceID string) map[string][]string {
	return o.rolesBy(func(r *role) bool { return r.workspaces[workspaceID] }, func(r *role) map[string]bool { return r.users })
}

// rolesBy lists, for each key of the set of every role that matches, the roles
// (ids, in order) whose set holds it.
func (o *Organization) rolesBy(matches func(*role) bool, set func(*role) map[string]bool) map[string][]string {
	out := map[string][]string{}
	for _, id := range sortedKeys(o.roles) {
		if r := o.roles[id]; matches(r) {
			for k := range set(r) {
				out[k] = append(out[k], id)
			}
		}
	}
	return out
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
	more, err := o.roleChanges(&role{id: id, permissions: map[Permission]bool{}, users: map[string]bool{}, workspaces: map[string]bool{}}, spec, at)
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
		if key := NameKey(*spec.Name); key != NameKey(r.name) {
			if other, taken := o.roleNames[key]; taken && other != r.id {
				return nil, &NameTakenError{Kind: ErrRoleNameTaken, Name: *spec.Name}
			}
		}
	}
	var events []Event
	if spec.Permissions != nil {
		want := map[Permission]bool{}
		for i, p := range *spec.Permissions {
			if want[p] {
				verr.Add("permissions["+strconv.Itoa(i)+"]", "duplicate_entry", fmt.Sprintf("%s is listed twice", quoteInput(p.String())))
			}
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
	if spec.Workspaces != nil {
		more, err := r.workspaceChanges(*spec.Workspaces, spec.IsWorkspace, at)
		verr.Merge("", err)
		events = append(events, more...)
	}
	if err := verr.Err(); err != nil {
		return nil, err
	}
	return events, nil
}

// workspaceChanges replaces the role's workspace set: removals, then additions in
// the order given.
func (r *role) workspaceChanges(ids []string, isWorkspace func(string) bool, at time.Time) ([]Event, error) {
	var verr ValidationError
	if len(ids) > MaxRoleWorkspaces {
		verr.Add("workspaces", "too_many", fmt.Sprintf("at most %d workspaces, got %d", MaxRoleWorkspaces, len(ids)))
		return nil, &verr
	}
	want := make(map[string]bool, len(ids))
	for i, id := range ids {
		field := "workspaces[" + strconv.Itoa(i) + "]"
		switch {
		case want[id]:
			verr.Add(field, "duplicate_entry", fmt.Sprintf("%s is listed twice", quoteInput(id)))
		case isWorkspace == nil || !isWorkspace(id):
			verr.Add(field, "unknown_workspace", fmt.Sprintf("%s is not a workspace of this organization", quoteInput(id)))
		}
		want[id] = true
	}
	if err := verr.Err(); err != nil {
		return nil, err
	}
	var events []Event
	for _, id := range sortedKeys(r.workspaces) {
		if !want[id] {
			events = append(events, RoleWorkspaceRemoved{RoleID: r.id, WorkspaceID: id, At: at})
		}
	}
	for _, id := range ids {
		if !r.workspaces[id] {
			events = append(events, RoleWorkspaceAdded{RoleID: r.id, WorkspaceID: id, At: at})
		}
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

// changeRole applies a change to a role, if it exists, and versions it.
func (o *Organization) changeRole(id string, at time.Time, change func(*role)) {
	if r := o.roles[id]; r != nil {
		change(r)
		r.updatedAt, r.version, r.updatedBy = at, o.at, o.by
	}
}

// unindexRole frees the index entry r holds (r was renamed or deleted, or is being
// replaced): an old log may hold roles whose names differ only by case, so the entry
// passes to the latest of the other roles that still have that name, if any.
func (o *Organization) unindexRole(r *role) {
	key := NameKey(r.name)
	if o.roleNames[key] != r.id {
		return
	}
	delete(o.roleNames, key)
	for _, id := range sortedKeys(o.roles) {
		if other := o.roles[id]; other != r && NameKey(other.name) == key {
			o.roleNames[key] = id
		}
	}
}

// changeUsers versions the accounts a role includes: their effective permissions,
// part of each account, changed with the role's.
func (o *Organization) changeUsers(r *role) {
	for id := range r.users {
		o.changeAccount(id, func(*Account) {})
	}
}
