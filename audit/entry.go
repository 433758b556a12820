package audit

import (
	"bytes"
	"encoding/json"
	"github.com/transparency-dev/merkle/compact"
	"slices"
	"strings"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// The kinds of target an audit entry names.
const (
	TargetOrganization = "organization"
	TargetAccount      = "account"
	TargetAccessKey    = "access_key"
	TargetRole         = "role"
	TargetWorkspace    = "workspace"
	TargetMember       = "member"
	TargetAPIKey       = "api_key"
)

// Action is an event type's short name, the audit entry's action:
// "keyledger.workspace.api_key_deleted.v1" is "workspace.api_key_deleted".
func Action(eventType string) string {
	a := strings.TrimPrefix(eventType, "keyledger.")
	if i := strings.LastIndex(a, ".v"); i > 0 {
		a = a[:i]
	}
	return a
}

// Target is what an event acts on: its kind and id, and the account it concerns
// beside it (a role's user, a workspace's member, an access key's owner).
type Target struct {
	Kind, ID, AccountID string
}

// TargetOf names the target of an event of the aggregate (an organization or a
// workspace id).
func TargetOf(e domain.Event, aggregate string) Target {
	switch e := e.(type) {
	case domain.OrganizationCreated:
		return Target{Kind: TargetOrganization, ID: aggregate, AccountID: e.PrimaryAccountID}
	case domain.AccountCreated:
		return Target{Kind: TargetAccount, ID: e.AccountID}
	case domain.AccountDisabled:
		return Target{Kind: TargetAccount, ID: e.AccountID}
	case domain.AccountEnabled:
		return Target{Kind: TargetAccount, ID: e.AccountID}
	case domain.AccessKeyCreated:
		return Target{Kind: TargetAccessKey, ID: e.AccessKeyID, AccountID: e.AccountID}
	case domain.AccessKeyDisabled:
		return Target{Kind: TargetAccessKey, ID: e.AccessKeyID, AccountID: e.AccountID}
	case domain.AccessKeyEnabled:
		return Target{Kind: TargetAccessKey, ID: e.AccessKeyID, AccountID: e.AccountID}
	case domain.AccessKeyDeleted:
		return Target{Kind: TargetAccessKey, ID: e.AccessKeyID, AccountID: e.AccountID}
	case domain.AccessKeyRotated:
		return Target{Kind: TargetAccessKey, ID: e.AccessKeyID, AccountID: e.AccountID}
	case domain.RoleCreated:
		return Target{Kind: TargetRole, ID: e.RoleID}
	case domain.RoleRenamed:
		return Target{Kind: TargetRole, ID: e.RoleID}
	case domain.RoleDeleted:
		return Target{Kind: TargetRole, ID: e.RoleID}
	case domain.PermissionGranted:
		return Target{Kind: TargetRole, ID: e.RoleID}
	case domain.PermissionRevoked:
		return Target{Kind: TargetRole, ID: e.RoleID}
	case domain.RoleUserIncluded:
		return Target{Kind: TargetRole, ID: e.RoleID, AccountID: e.AccountID}
	case domain.RoleUserExcluded:
		return Target{Kind: TargetRole, ID: e.RoleID, AccountID: e.AccountID}
	case domain.RoleWorkspaceAdded:
		return Target{Kind: TargetRole, ID: e.RoleID}
	case domain.RoleWorkspaceRemoved:
		return Target{Kind: TargetRole, ID: e.RoleID}
	case domain.WorkspaceCreated, domain.WorkspaceUpdated:
		return Target{Kind: TargetWorkspace, ID: aggregate}
	case domain.MemberAuthorized:
		return Target{Kind: TargetMember, ID: e.AccountID, AccountID: e.AccountID}
	case domain.MemberRevoked:
		return Target{Kind: TargetMember, ID: e.AccountID, AccountID: e.AccountID}
	case domain.APIKeyCreated:
		return Target{Kind: TargetAPIKey, ID: e.KeyID}
	case domain.APIKeyUpdated:
		return Target{Kind: TargetAPIKey, ID: e.KeyID}
	case domain.APIKeyDeleted:
		return Target{Kind: TargetAPIKey, ID: e.KeyID}
	case domain.APIKeyRevealed:
		return Target{Kind: TargetAPIKey, ID: e.KeyID}
	case domain.APIKeysExported:
		return Target{Kind: TargetWorkspace, ID: aggregate}
	}
	return Target{Kind: "event", ID: aggregate}
}

// Name is the display name an event gives an id (an account's, a key's, ...).
type Name struct {
	ID, Kind, Name string
}

// NamesOf lists the names an event gives or changes. A Search key is named by its
// name, a MaaS key by its masked form.
func NamesOf(e domain.Event, aggregate string) []Name {
	switch e := e.(type) {
	case domain.OrganizationCreated:
		return []Name{{aggregate, TargetOrganization, e.Name}, {e.PrimaryAccountID, TargetAccount, e.PrimaryAccountName}}
	case domain.AccountCreated:
		return []Name{{e.AccountID, TargetAccount, e.Name}}
	case domain.RoleCreated:
		return []Name{{e.RoleID, TargetRole, e.Name}}
	case domain.RoleRenamed:
		return []Name{{e.RoleID, TargetRole, e.Name}}
	case domain.WorkspaceCreated:
		return []Name{{aggregate, TargetWorkspace, e.Name}}
	case domain.WorkspaceUpdated:
		return []Name{{aggregate, TargetWorkspace, e.Name}}
	case domain.AccessKeyCreated:
		return []Name{{e.AccessKeyID, TargetAccessKey, e.AccessKeyID}}
	case domain.APIKeyCreated:
		name := e.Name
		if name == "" {
			name = e.Masked
		}
		return []Name{{e.KeyID, TargetAPIKey, keyKinds[e.BusinessType] + " key " + name}}
	case domain.APIKeyUpdated:
		if e.Name != "" {
			return []Name{{e.KeyID, TargetAPIKey, keyKinds[domain.BusinessSearch] + " key " + e.Name}}
		}
	}
	return nil
}

var keyKinds = map[domain.BusinessType]string{domain.BusinessMaaS: "MaaS", domain.BusinessSearch: "Search"}

// hidden are the payload fields an audit entry leaves out: the credential HMACs
// and the sealed plaintexts stay in the log (whose export carries them, for the
// tree) but not in the audit views.
var hidden = []string{"secret_hash", "sealed"}

// Changes is an event's payload as an audit entry shows it: without the hidden
// fields, whatever the event type (a new type carrying a secret hash, like a
// rotation's, is covered without being listed); only a payload that names one is
// parsed.
func Changes(data []byte) json.RawMessage {
	if !slices.ContainsFunc(hidden, func(f string) bool { return bytes.Contains(data, []byte(`"`+f+`"`)) }) {
		return data
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return json.RawMessage(`{}`)
	}
	for _, f := range hidden {
		delete(m, f)
	}
	out, _ := json.Marshal(m)
	return out
}

// verbs are the summaries' verbs, by event type.
var verbs = map[string]string{
	domain.TypeOrganizationCreated: "created", domain.TypeAccountCreated: "created", domain.TypeAccountDisabled: "disabled",
	domain.TypeAccountEnabled: "enabled", domain.TypeAccessKeyCreated: "created", domain.TypeAccessKeyDisabled: "disabled",
	domain.TypeAccessKeyEnabled: "enabled", domain.TypeAccessKeyDeleted: "deleted", domain.TypeAccessKeyRotated: "rotated", domain.TypeRoleCreated: "created",
	domain.TypeRoleRenamed: "renamed", domain.TypeRoleDeleted: "deleted", domain.TypePermissionGranted: "granted a permission on",
	domain.TypePermissionRevoked: "revoked a permission on", domain.TypeRoleUserIncluded: "added a user to",
	domain.TypeRoleUserExcluded: "removed a user from", domain.TypeRoleWorkspaceAdded: "added a workspace to",
	domain.TypeRoleWorkspaceRemoved: "removed a workspace from", domain.TypeWorkspaceCreated: "created", domain.TypeWorkspaceUpdated: "edited",
	domain.TypeMemberAuthorized: "authorized", domain.TypeMemberRevoked: "revoked", domain.TypeAPIKeyCreated: "created",
	domain.TypeAPIKeyUpdated: "edited", domain.TypeAPIKeyDeleted: "deleted", domain.TypeAPIKeyRevealed: "revealed",
	domain.TypeAPIKeysExported: "exported the key list of",
}

// Label is how a summary names a target: "role auditors", "Search key crawler-3"
// (an API key's name already says its kind).
func Label(kind, name string) string {
	switch kind {
	case TargetAPIKey:
		return name
	case TargetMember:
		return "account " + name
	}
	return strings.ReplaceAll(kind, "_", " ") + " " + name
}

// Summary is an audit entry's one line: "alice deleted Search key crawler-3 in
// workspace prod". Names are as the log last gave them (an id when it gave none).
func Summary(actor, eventType, target, workspace string) string {
	if actor == "" {
		actor = "the system"
	}
	verb, ok := verbs[eventType]
	if !ok {
		verb = Action(eventType)
	}
	s := actor + " " + verb + " " + target
	if workspace != "" && !strings.HasPrefix(target, "workspace ") {
		s += " in workspace " + workspace
	}
	return s
}

// LeafOf is the leaf hash of a record of the log at the given leaf index. A
// payload that is not JSON, which the log never holds (every append encodes
// JSON), has the empty leaf's hash rather than stopping the tree (the export
// would stop at it).
func LeafOf(r eventstore.Record, index uint64) []byte {
	h, err := FromRecord(r, &index).LeafHash()
	if err != nil {
		return Hasher.HashLeaf(nil)
	}
	return h
}

// Forest is each organization's tree, as its compact range, grown leaf by leaf in
// log order: the audit view's, the checkpointer's witness's and the tests' one
// way of building them.
type Forest map[string]*compact.Range

// Grow appends a record that is a leaf (IsLeaf) to its organization's tree,
// calling visit for each node it completes (nil: none), and returns the tree; nil
// for a record that is no leaf.
func (f Forest) Grow(r eventstore.Record, visit compact.VisitFn) *compact.Range {
	if !IsLeaf(r) {
		return nil
	}
	org := r.Metadata.OrganizationID
	tree, ok := f[org]
	if !ok {
		tree = Ranges.NewEmptyRange(0)
		f[org] = tree
	}
	_ = tree.Append(LeafOf(r, tree.End()), visit) // appending to a range from 0 cannot fail
	return tree
}
