package httpapi

import (
	"time"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/projections"
)

// One wire shape per resource: a create, an edit and a read of the same resource
// answer the same representation, built here from either the write's result or
// the view's row. Instants are UTC.

// AccountRef is the account that did something: its id and name (an id such as
// "system:bootstrap" and no name for the system).
type AccountRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Workspace is a workspace resource.
type Workspace struct {
	ID             string    `json:"id"`
	OrganizationID string    `json:"organization_id"`
	Name           string    `json:"name"`
	Description    string    `json:"description"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func workspaceOfResult(r commands.WorkspaceResult) Workspace {
	return Workspace{ID: r.WorkspaceID, OrganizationID: r.OrganizationID, Name: r.Name, Description: r.Description,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

func workspaceOfRow(r projections.WorkspaceRow) Workspace {
	return Workspace{ID: r.ID, OrganizationID: r.OrganizationID, Name: r.Name, Description: r.Description,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// Account is an account resource: its access key (never the secret) and its
// effective permissions.
type Account struct {
	ID             string     `json:"id"`
	OrganizationID string     `json:"organization_id"`
	Name           string     `json:"name"`
	Primary        bool       `json:"primary"`
	Status         string     `json:"status" enum:"enabled,disabled"`
	AccessKey      *AccessKey `json:"access_key"`
	Permissions    []string   `json:"permissions"`
	CreatedAt      time.Time  `json:"created_at"`
	// CreatedBy created the account; UpdatedBy changed its status last.
	CreatedBy AccountRef `json:"created_by"`
	UpdatedBy AccountRef `json:"updated_by"`
}

// AccessKey is an account's access key without its secret.
type AccessKey struct {
	ID        string    `json:"id"`
	AccountID string    `json:"account_id"`
	Status    string    `json:"status" enum:"enabled,disabled"`
	CreatedAt time.Time `json:"created_at"`
	// CreatedBy created the key; UpdatedBy changed its status last.
	CreatedBy AccountRef `json:"created_by"`
	UpdatedBy AccountRef `json:"updated_by"`
	// Previous is the key a rotation replaced while it still works (its grace
	// period); null otherwise.
	Previous *PreviousAccessKey `json:"previous"`
}

// PreviousAccessKey is the key a rotation replaced, working until EndsAt.
type PreviousAccessKey struct {
	ID     string    `json:"id"`
	EndsAt time.Time `json:"ends_at"`
}

// CreatedAccessKey is the response of an access key creation: the only time its
// secret is shown.
type CreatedAccessKey struct {
	AccessKey
	Secret string `json:"secret"`
}

func accountOfResult(r commands.AccountResult) Account {
	a := Account{ID: r.AccountID, OrganizationID: r.OrganizationID, Name: r.Name, Primary: r.Primary, Status: r.Status,
		Permissions: nonNil(r.Permissions), CreatedAt: r.CreatedAt.UTC(), CreatedBy: AccountRef(r.CreatedBy), UpdatedBy: AccountRef(r.UpdatedBy)}
	if r.AccessKey != nil {
		k := accessKeyOfResult(*r.AccessKey)
		a.AccessKey = &k
	}
	return a
}

func accessKeyOfResult(k commands.AccessKeyResult) AccessKey {
	out := AccessKey{ID: k.AccessKeyID, AccountID: k.AccountID, Status: k.Status, CreatedAt: k.CreatedAt.UTC(),
		CreatedBy: AccountRef(k.CreatedBy), UpdatedBy: AccountRef(k.UpdatedBy)}
	if k.PreviousAccessKeyID != "" {
		out.Previous = &PreviousAccessKey{ID: k.PreviousAccessKeyID, EndsAt: k.PreviousUntil.UTC()}
	}
	return out
}

func accountOfRow(r projections.AccountRow) Account {
	a := Account{ID: r.ID, OrganizationID: r.OrganizationID, Name: r.Name, Primary: r.Primary, Status: r.Status,
		Permissions: nonNil(r.Permissions), CreatedAt: r.CreatedAt.UTC(), CreatedBy: AccountRef(r.CreatedBy), UpdatedBy: AccountRef(r.UpdatedBy)}
	if k := r.AccessKey; k != nil {
		a.AccessKey = &AccessKey{ID: k.ID, AccountID: r.ID, Status: k.Status, CreatedAt: k.CreatedAt.UTC(),
			CreatedBy: AccountRef(k.CreatedBy), UpdatedBy: AccountRef(k.UpdatedBy)}
		if k.PreviousID != nil && k.PreviousUntil != nil {
			a.AccessKey.Previous = &PreviousAccessKey{ID: *k.PreviousID, EndsAt: k.PreviousUntil.UTC()}
		}
	}
	return a
}

// APIKey is a key resource, masked.
type APIKey struct {
	ID             string     `json:"id"`
	WorkspaceID    string     `json:"workspace_id"`
	BusinessType   string     `json:"business_type" enum:"maas,search"`
	Name           *string    `json:"name"`
	Allowlist      []string   `json:"allowlist"`
	Note           string     `json:"note"`
	QPSLimit       *int       `json:"qps_limit"`
	MaskedSecret   string     `json:"masked_secret"`
	BatchID        *string    `json:"batch_id"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	LastRevealedAt *time.Time `json:"last_revealed_at"`
	// LastUsedAt is the minute a verification last allowed the key (null: never,
	// or not written yet: instances write it every 30 s).
	LastUsedAt *time.Time `json:"last_used_at"`
	// CreatedBy created the key; UpdatedBy changed it last (a reveal is no change).
	CreatedBy AccountRef `json:"created_by"`
	UpdatedBy AccountRef `json:"updated_by"`
}

// CreatedAPIKey is a key in a create response: the only place, with reveal, where
// its plaintext secret appears.
type CreatedAPIKey struct {
	APIKey
	Secret string `json:"secret"`
}

func apiKeyOfResult(k commands.APIKeyResult) APIKey {
	out := APIKey{ID: k.KeyID, WorkspaceID: k.WorkspaceID, BusinessType: k.BusinessType, Allowlist: nonNil(k.Allowlist),
		Note: k.Note, QPSLimit: k.QPSLimit, MaskedSecret: k.Masked, CreatedAt: k.CreatedAt.UTC(), UpdatedAt: k.UpdatedAt.UTC(),
		LastRevealedAt: utcPtr(k.LastRevealedAt), CreatedBy: AccountRef(k.CreatedBy), UpdatedBy: AccountRef(k.UpdatedBy)}
	if k.Name != "" {
		out.Name = &k.Name
	}
	if k.BatchID != "" {
		out.BatchID = &k.BatchID
	}
	return out
}

func apiKeyOfRow(k projections.APIKeyRow) APIKey {
	out := APIKey{ID: k.ID, WorkspaceID: k.WorkspaceID, BusinessType: k.BusinessType, Name: k.Name, Allowlist: nonNil(k.Allowlist),
		Note: k.Note, MaskedSecret: k.MaskedSecret, BatchID: k.BatchID, CreatedAt: k.CreatedAt.UTC(), UpdatedAt: k.UpdatedAt.UTC(),
		LastRevealedAt: utcPtr(k.LastRevealedAt), LastUsedAt: utcPtr(k.LastUsedAt), CreatedBy: AccountRef(k.CreatedBy), UpdatedBy: AccountRef(k.UpdatedBy)}
	if k.QPSLimit != nil {
		q := int(*k.QPSLimit)
		out.QPSLimit = &q
	}
	return out
}

// Role is a role resource: permission items, included accounts and the workspaces
// it authorizes them on.
type Role struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Permissions []string  `json:"permissions"`
	Users       []string  `json:"users"`
	Workspaces  []string  `json:"workspaces"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// CreatedBy created the role; UpdatedBy changed it last.
	CreatedBy AccountRef `json:"created_by"`
	UpdatedBy AccountRef `json:"updated_by"`
}

func roleOfResult(r commands.RoleResult) Role {
	return Role{ID: r.RoleID, Name: r.Name, Permissions: nonNil(r.Permissions), Users: nonNil(r.Users), Workspaces: nonNil(r.Workspaces),
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), CreatedBy: AccountRef(r.CreatedBy), UpdatedBy: AccountRef(r.UpdatedBy)}
}

func roleOfRow(r projections.RoleRow) Role {
	return Role{ID: r.ID, Name: r.Name, Permissions: nonNil(r.Permissions), Users: nonNil(r.Users), Workspaces: nonNil(r.Workspaces),
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), CreatedBy: AccountRef(r.CreatedBy), UpdatedBy: AccountRef(r.UpdatedBy)}
}

// Member is an account authorized on a workspace: directly ("direct", since
// authorized_at), through the roles listed, or both.
type Member struct {
	AccountID string `json:"account_id"`
	Name      string `json:"name"`
	Primary   bool   `json:"primary"`
	Direct    bool   `json:"direct"`
	// AuthorizedAt is null when the account is authorized only through roles.
	AuthorizedAt *time.Time `json:"authorized_at"`
	Roles        []RoleRef  `json:"roles"`
}

// RoleRef names a role.
type RoleRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Candidate is a sub-account not authorized on the workspace.
type Candidate struct {
	AccountID string `json:"account_id"`
	Name      string `json:"name"`
}

// MemberList is who is authorized on a workspace, as GET and PUT answer it; with
// include=candidates, the organization's sub-accounts not authorized there too.
type MemberList struct {
	Items      []Member     `json:"items"`
	Candidates *[]Candidate `json:"candidates,omitempty"`
}

func membersOfResult(r commands.MembersResult) MemberList {
	out := MemberList{Items: make([]Member, len(r.Members))}
	for i, m := range r.Members {
		roles := make([]RoleRef, len(m.Roles))
		for j, r := range m.Roles {
			roles[j] = RoleRef{ID: r.ID, Name: r.Name}
		}
		var at *time.Time
		if !m.AuthorizedAt.IsZero() {
			at = utcPtr(&m.AuthorizedAt)
		}
		out.Items[i] = Member{AccountID: m.AccountID, Name: m.Name, Primary: m.Primary, Direct: at != nil, AuthorizedAt: at, Roles: roles}
	}
	return out
}

func membersOfRows(rows []projections.MemberRow) MemberList {
	out := MemberList{Items: make([]Member, len(rows))}
	for i, m := range rows {
		roles := make([]RoleRef, len(m.RoleIDs))
		for j := range m.RoleIDs {
			roles[j] = RoleRef{ID: m.RoleIDs[j], Name: m.RoleNames[j]}
		}
		at := utcPtr(m.AuthorizedAt)
		out.Items[i] = Member{AccountID: m.AccountID, Name: m.Name, Primary: m.Primary, Direct: at != nil, AuthorizedAt: at, Roles: roles}
	}
	return out
}

// Me is the caller: its account, organization, permissions by module and the
// workspaces it is authorized on.
type Me struct {
	Account          Account             `json:"account"`
	OrganizationID   string              `json:"organization_id"`
	OrganizationName string              `json:"organization_name"`
	Permissions      map[string][]string `json:"permissions"`
	Workspaces       []string            `json:"workspaces"`
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
