package domain

import (
	"fmt"
	"time"

	"github.com/segmentio/encoding/json"
)

// Event is a fact decided by an aggregate. EventType is its stable wire name
// ("keyledger.<aggregate>.<event>.v<N>"), written into the log's ce-type header:
// renaming a Go type never changes the log, changing a constant breaks every reader.
type Event interface {
	EventType() string
}

// Aggregate kinds; they form the log subject keyledger.events.<kind>.<id>.
const (
	AggregateOrganization = "organization"
	AggregateWorkspace    = "workspace"
	// AggregateCheckpoint is the subject of an organization's signed audit-log
	// checkpoints (keyledger.events.checkpoint.<organization_id>).
	AggregateCheckpoint = "checkpoint"
)

// Wire names of every event.
const (
	TypeOrganizationCreated  = "keyledger.organization.created.v1"
	TypeAccountCreated       = "keyledger.organization.account_created.v1"
	TypeAccessKeyCreated     = "keyledger.organization.access_key_created.v1"
	TypeAccessKeyDisabled    = "keyledger.organization.access_key_disabled.v1"
	TypeAccessKeyEnabled     = "keyledger.organization.access_key_enabled.v1"
	TypeAccessKeyDeleted     = "keyledger.organization.access_key_deleted.v1"
	TypeAccessKeyRotated     = "keyledger.organization.access_key_rotated.v1"
	TypeAccountDisabled      = "keyledger.organization.account_disabled.v1"
	TypeAccountEnabled       = "keyledger.organization.account_enabled.v1"
	TypeRoleCreated          = "keyledger.organization.role_created.v1"
	TypeRoleRenamed          = "keyledger.organization.role_renamed.v1"
	TypeRoleDeleted          = "keyledger.organization.role_deleted.v1"
	TypePermissionGranted    = "keyledger.organization.role_permission_granted.v1"
	TypePermissionRevoked    = "keyledger.organization.role_permission_revoked.v1"
	TypeRoleUserIncluded     = "keyledger.organization.role_user_included.v1"
	TypeRoleUserExcluded     = "keyledger.organization.role_user_excluded.v1"
	TypeRoleWorkspaceAdded   = "keyledger.organization.role_workspace_added.v1"
	TypeRoleWorkspaceRemoved = "keyledger.organization.role_workspace_removed.v1"

	TypeWorkspaceCreated = "keyledger.workspace.created.v1"
	TypeWorkspaceUpdated = "keyledger.workspace.updated.v1"
	TypeMemberAuthorized = "keyledger.workspace.member_authorized.v1"
	TypeMemberRevoked    = "keyledger.workspace.member_revoked.v1"
	TypeAPIKeyCreated    = "keyledger.workspace.api_key_created.v1"
	TypeAPIKeyUpdated    = "keyledger.workspace.api_key_updated.v1"
	TypeAPIKeyDeleted    = "keyledger.workspace.api_key_deleted.v1"
	TypeAPIKeyRevealed   = "keyledger.workspace.api_key_revealed.v1"
	TypeAPIKeysExported  = "keyledger.workspace.api_keys_exported.v1"

	TypeCheckpointSigned = "keyledger.audit.checkpoint_signed.v1"
	TypeCallRefused      = "keyledger.audit.call_refused.v1"
	TypeResponseReplayed = "keyledger.audit.response_replayed.v1"
)

// OrganizationCreated opens an organization with its primary account.
type OrganizationCreated struct {
	OrganizationID     string    `json:"organization_id"`
	Name               string    `json:"name"`
	PrimaryAccountID   string    `json:"primary_account_id"`
	PrimaryAccountName string    `json:"primary_account_name"`
	At                 time.Time `json:"at"`
}

// AccountCreated adds a sub-account.
type AccountCreated struct {
	AccountID string    `json:"account_id"`
	Name      string    `json:"name"`
	At        time.Time `json:"at"`
}

// AccessKeyCreated gives an account its access key. SecretHash is the HMAC of the
// secret under the server pepper; the secret itself never enters the log.
type AccessKeyCreated struct {
	AccountID   string    `json:"account_id"`
	AccessKeyID string    `json:"access_key_id"`
	SecretHash  string    `json:"secret_hash"`
	At          time.Time `json:"at"`
}

// AccessKeyDisabled, AccessKeyEnabled and AccessKeyDeleted change an account's
// access key; a deleted key's account may get a new one.
type AccessKeyDisabled struct {
	AccountID   string    `json:"account_id"`
	AccessKeyID string    `json:"access_key_id"`
	At          time.Time `json:"at"`
}

// AccessKeyEnabled re-enables a disabled access key.
type AccessKeyEnabled struct {
	AccountID   string    `json:"account_id"`
	AccessKeyID string    `json:"access_key_id"`
	At          time.Time `json:"at"`
}

// AccessKeyDeleted deletes an access key for good.
type AccessKeyDeleted struct {
	AccountID   string    `json:"account_id"`
	AccessKeyID string    `json:"access_key_id"`
	At          time.Time `json:"at"`
}

// AccessKeyRotated replaces an account's access key by a new one. The previous
// secret works until PreviousUntil (At when it stopped at once), which is its
// deletion; SecretHash is the new secret's HMAC.
type AccessKeyRotated struct {
	AccountID           string    `json:"account_id"`
	PreviousAccessKeyID string    `json:"previous_access_key_id"`
	AccessKeyID         string    `json:"access_key_id"`
	SecretHash          string    `json:"secret_hash"`
	PreviousUntil       time.Time `json:"previous_until"`
	At                  time.Time `json:"at"`
}

// HasGrace tells whether the previous secret outlives the rotation.
func (e AccessKeyRotated) HasGrace() bool { return e.PreviousUntil.After(e.At) }

// AccountDisabled stops every credential of a sub-account at once.
type AccountDisabled struct {
	AccountID string    `json:"account_id"`
	At        time.Time `json:"at"`
}

// AccountEnabled re-enables a sub-account.
type AccountEnabled struct {
	AccountID string    `json:"account_id"`
	At        time.Time `json:"at"`
}

// RoleCreated opens a role; its permissions and users follow as their own events in
// the same atomic append.
type RoleCreated struct {
	RoleID string    `json:"role_id"`
	Name   string    `json:"name"`
	At     time.Time `json:"at"`
}

// RoleRenamed renames a role.
type RoleRenamed struct {
	RoleID string    `json:"role_id"`
	Name   string    `json:"name"`
	At     time.Time `json:"at"`
}

// RoleDeleted deletes a role; its users lose what it granted.
type RoleDeleted struct {
	RoleID string    `json:"role_id"`
	At     time.Time `json:"at"`
}

// PermissionGranted adds a permission ("module:action") to a role.
type PermissionGranted struct {
	RoleID     string    `json:"role_id"`
	Permission string    `json:"permission"`
	At         time.Time `json:"at"`
}

// PermissionRevoked removes a permission from a role.
type PermissionRevoked struct {
	RoleID     string    `json:"role_id"`
	Permission string    `json:"permission"`
	At         time.Time `json:"at"`
}

// RoleUserIncluded includes an account in a role.
type RoleUserIncluded struct {
	RoleID    string    `json:"role_id"`
	AccountID string    `json:"account_id"`
	At        time.Time `json:"at"`
}

// RoleUserExcluded excludes an account from a role.
type RoleUserExcluded struct {
	RoleID    string    `json:"role_id"`
	AccountID string    `json:"account_id"`
	At        time.Time `json:"at"`
}

// RoleWorkspaceAdded authorizes the accounts a role includes on a workspace.
type RoleWorkspaceAdded struct {
	RoleID      string    `json:"role_id"`
	WorkspaceID string    `json:"workspace_id"`
	At          time.Time `json:"at"`
}

// RoleWorkspaceRemoved takes a workspace out of a role: its accounts stay
// authorized there only directly or through another role.
type RoleWorkspaceRemoved struct {
	RoleID      string    `json:"role_id"`
	WorkspaceID string    `json:"workspace_id"`
	At          time.Time `json:"at"`
}

// WorkspaceCreated opens a workspace in an organization.
type WorkspaceCreated struct {
	WorkspaceID    string    `json:"workspace_id"`
	OrganizationID string    `json:"organization_id"`
	Name           string    `json:"name"`
	Description    string    `json:"description"`
	At             time.Time `json:"at"`
}

// WorkspaceUpdated renames a workspace or changes its description.
type WorkspaceUpdated struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	At          time.Time `json:"at"`
}

// MemberAuthorized authorizes an account on the workspace.
type MemberAuthorized struct {
	AccountID string    `json:"account_id"`
	At        time.Time `json:"at"`
}

// MemberRevoked removes an account's authorization on the workspace.
type MemberRevoked struct {
	AccountID string    `json:"account_id"`
	At        time.Time `json:"at"`
}

// APIKeyCreated records a new workspace API key. SecretHash is the lookup HMAC;
// Sealed is the plaintext under AES-256-GCM with the key's own data key, which lives
// outside the log, so deleting the data key makes Sealed unreadable forever.
type APIKeyCreated struct {
	KeyID        string       `json:"key_id"`
	BusinessType BusinessType `json:"business_type"`
	Name         string       `json:"name,omitempty"`
	Allowlist    []string     `json:"allowlist"`
	Note         string       `json:"note,omitempty"`
	QPSLimit     QPS          `json:"qps_limit,omitempty"`
	SecretHash   string       `json:"secret_hash"`
	Masked       string       `json:"masked"`
	Sealed       []byte       `json:"sealed"`
	BatchID      string       `json:"batch_id,omitempty"`
	At           time.Time    `json:"at"`
}

// APIKeyUpdated carries the key's whole editable state after the edit.
type APIKeyUpdated struct {
	KeyID     string    `json:"key_id"`
	Name      string    `json:"name,omitempty"`
	Allowlist []string  `json:"allowlist"`
	Note      string    `json:"note,omitempty"`
	QPSLimit  QPS       `json:"qps_limit,omitempty"`
	At        time.Time `json:"at"`
}

// APIKeyDeleted deletes a key for good.
type APIKeyDeleted struct {
	KeyID string    `json:"key_id"`
	At    time.Time `json:"at"`
}

// APIKeyRevealed audits one reveal of a key's plaintext.
type APIKeyRevealed struct {
	KeyID string    `json:"key_id"`
	At    time.Time `json:"at"`
}

// APIKeysExported audits one export of the workspace's key list (masked): the
// filter it applied and the columns it wrote. It changes no state.
type APIKeysExported struct {
	BusinessType string    `json:"business_type,omitempty"`
	BatchID      string    `json:"batch_id,omitempty"`
	Fields       []string  `json:"fields"`
	At           time.Time `json:"at"`
}

// CheckpointSigned publishes a signed checkpoint of an organization's audit log:
// the size and root hash of the Merkle tree over its events, as a C2SP signed note
// (tlog-checkpoint). It is not itself a leaf of the tree.
type CheckpointSigned struct {
	Size     uint64 `json:"size"`
	RootHash []byte `json:"root_hash"`
	Note     string `json:"note"`
	// Border is the tree's right border at Size (its compact range's hashes, left
	// to right), from which it grows: a starting instance checks it gives the
	// signed root and resumes from it rather than from the log's beginning.
	// Absent in checkpoints signed before it was kept.
	Border [][]byte  `json:"border,omitempty"`
	At     time.Time `json:"at"`
}

// CallRefused records a management call refused with 401 or 403. It changes no
// state: it is kept in the KEYLEDGER_AUDIT stream, not in the log, for auditors.
// Nothing of the credential but its kind and, once authenticated, its id.
type CallRefused struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Method string `json:"method"`
	// Route is the route's pattern ("/v1/workspaces/:ws/api-keys"), Path the path
	// asked (at most 256 bytes).
	Route string `json:"route"`
	Path  string `json:"path"`
	// CredentialKind is what the Authorization header held: "access_key",
	// "api_key", "malformed" or "none".
	CredentialKind    string    `json:"credential_kind"`
	AccountID         string    `json:"account_id,omitempty"`
	MissingPermission string    `json:"missing_permission,omitempty"`
	At                time.Time `json:"at"`
}

// ResponseReplayed records the answer of a retried request given again from its
// idempotency record: no new state, kept in the KEYLEDGER_AUDIT stream.
type ResponseReplayed struct {
	Method         string    `json:"method"`
	Route          string    `json:"route"`
	Path           string    `json:"path"`
	Status         int       `json:"status"`
	AccountID      string    `json:"account_id"`
	IdempotencyKey string    `json:"idempotency_key"`
	At             time.Time `json:"at"`
}

// EventType implementations.
func (OrganizationCreated) EventType() string  { return TypeOrganizationCreated }
func (AccountCreated) EventType() string       { return TypeAccountCreated }
func (AccessKeyCreated) EventType() string     { return TypeAccessKeyCreated }
func (AccessKeyDisabled) EventType() string    { return TypeAccessKeyDisabled }
func (AccessKeyEnabled) EventType() string     { return TypeAccessKeyEnabled }
func (AccessKeyDeleted) EventType() string     { return TypeAccessKeyDeleted }
func (AccessKeyRotated) EventType() string     { return TypeAccessKeyRotated }
func (AccountDisabled) EventType() string      { return TypeAccountDisabled }
func (AccountEnabled) EventType() string       { return TypeAccountEnabled }
func (RoleCreated) EventType() string          { return TypeRoleCreated }
func (RoleRenamed) EventType() string          { return TypeRoleRenamed }
func (RoleDeleted) EventType() string          { return TypeRoleDeleted }
func (PermissionGranted) EventType() string    { return TypePermissionGranted }
func (PermissionRevoked) EventType() string    { return TypePermissionRevoked }
func (RoleUserIncluded) EventType() string     { return TypeRoleUserIncluded }
func (RoleUserExcluded) EventType() string     { return TypeRoleUserExcluded }
func (RoleWorkspaceAdded) EventType() string   { return TypeRoleWorkspaceAdded }
func (RoleWorkspaceRemoved) EventType() string { return TypeRoleWorkspaceRemoved }
func (WorkspaceCreated) EventType() string     { return TypeWorkspaceCreated }
func (WorkspaceUpdated) EventType() string     { return TypeWorkspaceUpdated }
func (MemberAuthorized) EventType() string     { return TypeMemberAuthorized }
func (MemberRevoked) EventType() string        { return TypeMemberRevoked }
func (APIKeyCreated) EventType() string        { return TypeAPIKeyCreated }
func (APIKeyUpdated) EventType() string        { return TypeAPIKeyUpdated }
func (APIKeyDeleted) EventType() string        { return TypeAPIKeyDeleted }
func (APIKeyRevealed) EventType() string       { return TypeAPIKeyRevealed }
func (APIKeysExported) EventType() string      { return TypeAPIKeysExported }
func (CheckpointSigned) EventType() string     { return TypeCheckpointSigned }
func (CallRefused) EventType() string          { return TypeCallRefused }
func (ResponseReplayed) EventType() string     { return TypeResponseReplayed }

var decoders = map[string]func([]byte) (Event, error){
	TypeOrganizationCreated:  decodeAs[OrganizationCreated],
	TypeAccountCreated:       decodeAs[AccountCreated],
	TypeAccessKeyCreated:     decodeAs[AccessKeyCreated],
	TypeAccessKeyDisabled:    decodeAs[AccessKeyDisabled],
	TypeAccessKeyEnabled:     decodeAs[AccessKeyEnabled],
	TypeAccessKeyDeleted:     decodeAs[AccessKeyDeleted],
	TypeAccessKeyRotated:     decodeAs[AccessKeyRotated],
	TypeAccountDisabled:      decodeAs[AccountDisabled],
	TypeAccountEnabled:       decodeAs[AccountEnabled],
	TypeRoleCreated:          decodeAs[RoleCreated],
	TypeRoleRenamed:          decodeAs[RoleRenamed],
	TypeRoleDeleted:          decodeAs[RoleDeleted],
	TypePermissionGranted:    decodeAs[PermissionGranted],
	TypePermissionRevoked:    decodeAs[PermissionRevoked],
	TypeRoleUserIncluded:     decodeAs[RoleUserIncluded],
	TypeRoleUserExcluded:     decodeAs[RoleUserExcluded],
	TypeRoleWorkspaceAdded:   decodeAs[RoleWorkspaceAdded],
	TypeRoleWorkspaceRemoved: decodeAs[RoleWorkspaceRemoved],
	TypeWorkspaceCreated:     decodeAs[WorkspaceCreated],
	TypeWorkspaceUpdated:     decodeAs[WorkspaceUpdated],
	TypeMemberAuthorized:     decodeAs[MemberAuthorized],
	TypeMemberRevoked:        decodeAs[MemberRevoked],
	TypeAPIKeyCreated:        decodeAs[APIKeyCreated],
	TypeAPIKeyUpdated:        decodeAs[APIKeyUpdated],
	TypeAPIKeyDeleted:        decodeAs[APIKeyDeleted],
	TypeAPIKeyRevealed:       decodeAs[APIKeyRevealed],
	TypeAPIKeysExported:      decodeAs[APIKeysExported],
	TypeCheckpointSigned:     decodeAs[CheckpointSigned],
	TypeCallRefused:          decodeAs[CallRefused],
	TypeResponseReplayed:     decodeAs[ResponseReplayed],
	EventTypeUsageRecorded:   decodeAs[UsageRecorded],
}

// decodeAs decodes with segmentio's encoding/json, which reads as the standard
// library does at about a fifth of its cost: every consumer of the log decodes
// every event.
func decodeAs[T Event](data []byte) (Event, error) {
	var e T
	err := json.Unmarshal(data, &e)
	return e, err
}

// DecodeEvent decodes the JSON payload of an event of the given wire type into its
// value type, the form aggregates and projectors switch on.
func DecodeEvent(eventType string, data []byte) (Event, error) {
	dec, ok := decoders[eventType]
	if !ok {
		return nil, fmt.Errorf("unknown event type %q", eventType)
	}
	e, err := dec(data)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", eventType, err)
	}
	return e, nil
}

// Change is one aggregate's part of an append to several aggregates at once: its
// events, written only if its version is still Expected.
type Change struct {
	ID       string
	Expected uint64
	Events   []Event
}

// Recorded is an event with its position in the log: the stream sequence that
// versions the resources it changes.
type Recorded struct {
	Position uint64
	Event    Event
	// Time is when the event was appended (its ce-time); Actor who caused it
	// (ce-actor).
	Time  time.Time
	Actor string
}

// Metadata says who caused events and through which credential; the event store
// writes it into the envelope (ce-actor, ce-credential, …), never into payloads.
type Metadata struct {
	OrganizationID string
	WorkspaceID    string
	ActorID        string
	CredentialID   string
	SourceIP       string
	RequestID      string
	// ClientRequestID is the X-Request-Id a client sent, kept beside RequestID
	// (always the server's own), never instead of it.
	ClientRequestID string
	// EventID names the i-th event of the append (its ce-id and Nats-Msg-Id); nil
	// gives fresh ULIDs. A request with an Idempotency-Key derives them from its key,
	// so every attempt appends the same ids and the log's duplicate window drops a
	// second copy.
	EventID func(i int) string
}
