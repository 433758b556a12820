package domain

import (
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// SnapshotFormat is the version of the snapshot encoding; a snapshot of another
// format is ignored (the aggregate is replayed from the log instead). Bump it with
// any change of an aggregate's state.
const SnapshotFormat = 6 // 6: a workspace's live Search key names counted by NameKey; 5: the deleted roles' ids; 4: names keyed without variation selectors, white space runs as one

// A snapshot holds an aggregate's whole state at a log position, so that a cold
// instance loads the snapshot and the events after it instead of every event. It
// holds what the events hold (sealed plaintexts, never a secret in clear), and it
// is derived data: losing it costs only a longer load.

type workspaceSnapshot struct {
	Format         int                  `json:"format"`
	ID             string               `json:"id"`
	OrgID          string               `json:"org_id"`
	Name           string               `json:"name"`
	Description    string               `json:"description"`
	CreatedAt      time.Time            `json:"created_at"`
	UpdatedAt      time.Time            `json:"updated_at"`
	Version        uint64               `json:"version"`
	MembersVersion uint64               `json:"members_version"`
	Members        map[string]time.Time `json:"members"`
	Keys           map[string]*APIKey   `json:"keys"`
	SearchNames    map[string]int       `json:"search_names"`
	SearchSeq      int                  `json:"search_seq"`
}

// Snapshot encodes the workspace's state.
func (w *Workspace) Snapshot() ([]byte, error) {
	return json.Marshal(workspaceSnapshot{Format: SnapshotFormat, ID: w.id, OrgID: w.orgID, Name: w.name, Description: w.description,
		CreatedAt: w.createdAt, UpdatedAt: w.updatedAt, Version: w.version, MembersVersion: w.membersVersion,
		Members: w.members, Keys: w.keys, SearchNames: w.searchNames, SearchSeq: w.searchSeq})
}

// RestoreWorkspace rebuilds a workspace from its snapshot.
func RestoreWorkspace(b []byte) (*Workspace, error) {
	var s workspaceSnapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	if s.Format != SnapshotFormat {
		return nil, ErrSnapshotFormat
	}
	w := NewEmptyWorkspace(s.ID)
	w.orgID, w.name, w.description, w.createdAt, w.updatedAt = s.OrgID, s.Name, s.Description, s.CreatedAt, s.UpdatedAt
	w.version, w.membersVersion, w.searchSeq = s.Version, s.MembersVersion, s.SearchSeq
	maps.Copy(w.members, s.Members)
	maps.Copy(w.keys, s.Keys)
	maps.Copy(w.searchNames, s.SearchNames)
	return w, nil
}

type roleSnapshot struct {
	Name        string          `json:"name"`
	Permissions []Permission    `json:"permissions"`
	Users       map[string]bool `json:"users"`
	Workspaces  map[string]bool `json:"workspaces"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	Version     uint64          `json:"version"`
	CreatedBy   string          `json:"created_by"`
	UpdatedBy   string          `json:"updated_by"`
}

type organizationSnapshot struct {
	Format       int                     `json:"format"`
	ID           string                  `json:"id"`
	Name         string                  `json:"name"`
	PrimaryID    string                  `json:"primary_id"`
	Accounts     map[string]*Account     `json:"accounts"`
	AccountNames map[string]string       `json:"account_names"`
	BySecret     map[string]string       `json:"by_secret"`
	Roles        map[string]roleSnapshot `json:"roles"`
	DeletedRoles []string                `json:"deleted_roles"`
	RoleNames    map[string]string       `json:"role_names"`
}

// Snapshot encodes the organization's state.
func (o *Organization) Snapshot() ([]byte, error) {
	s := organizationSnapshot{Format: SnapshotFormat, ID: o.id, Name: o.name, PrimaryID: o.primaryID, Accounts: o.accounts,
		AccountNames: o.accountNames, BySecret: o.bySecret, Roles: make(map[string]roleSnapshot, len(o.roles)), RoleNames: o.roleNames,
		DeletedRoles: slices.Sorted(maps.Keys(o.deletedRoles))}
	for id, r := range o.roles {
		s.Roles[id] = roleSnapshot{Name: r.name, Permissions: sortedPermissions(r.permissions), Users: r.users, Workspaces: r.workspaces,
			CreatedAt: r.createdAt, UpdatedAt: r.updatedAt, Version: r.version, CreatedBy: r.createdBy, UpdatedBy: r.updatedBy}
	}
	return json.Marshal(s)
}

// RestoreOrganization rebuilds an organization from its snapshot.
func RestoreOrganization(b []byte) (*Organization, error) {
	var s organizationSnapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	if s.Format != SnapshotFormat {
		return nil, ErrSnapshotFormat
	}
	o := NewEmptyOrganization(s.ID)
	o.name, o.primaryID = s.Name, s.PrimaryID
	maps.Copy(o.accounts, s.Accounts)
	maps.Copy(o.accountNames, s.AccountNames)
	maps.Copy(o.bySecret, s.BySecret)
	maps.Copy(o.roleNames, s.RoleNames)
	for _, id := range s.DeletedRoles {
		o.deletedRoles[id] = true
	}
	for id, r := range s.Roles {
		perms := make(map[Permission]bool, len(r.Permissions))
		for _, p := range r.Permissions {
			perms[p] = true
		}
		users, workspaces := map[string]bool{}, map[string]bool{}
		maps.Copy(users, r.Users)
		maps.Copy(workspaces, r.Workspaces)
		o.roles[id] = &role{id: id, name: r.Name, permissions: perms, users: users, workspaces: workspaces, createdAt: r.CreatedAt, updatedAt: r.UpdatedAt, version: r.Version,
			createdBy: r.CreatedBy, updatedBy: r.UpdatedBy}
	}
	return o, nil
}
