package domain

import (
	"fmt"
	"time"
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
)

// Wire names of every event.
const (
	TypeOrganizationCreated = "keyledger.organization.created.v1"
	TypeAccountCreated      = "keyledger.organization.account_created.v1"
	TypeAccessKeyCreated    = "keyledger.organization.access_key_created.v1"

	TypeWorkspaceCreated = "keyledger.workspace.created.v1"
	TypeWorkspaceUpdated = "keyledger.workspace.updated.v1"
	TypeMemberAuthorized = "keyledger.workspace.member_authorized.v1"
	TypeMemberRevoked    = "keyledger.workspace.member_revoked.v1"
	TypeAPIKeyCreated    = "keyledger.workspace.api_key_created.v1"
	TypeAPIKeyUpdated    = "keyledger.workspace.api_key_updated.v1"
	TypeAPIKeyDeleted    = "keyledger.workspace.api_key_deleted.v1"
	TypeAPIKeyRevealed   = "keyledger.workspace.api_key_revealed.v1"
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

// EventType implementations.
func (OrganizationCreated) EventType() string { return TypeOrganizationCreated }
func (AccountCreated) EventType() string      { return TypeAccountCreated }
func (AccessKeyCreated) EventType() string    { return TypeAccessKeyCreated }
func (WorkspaceCreated) EventType() string    { return TypeWorkspaceCreated }
func (WorkspaceUpdated) EventType() string    { return TypeWorkspaceUpdated }
func (MemberAuthorized) EventType() string    { return TypeMemberAuthorized }
func (MemberRevoked) EventType() string       { return TypeMemberRevoked }
func (APIKeyCreated) EventType() string       { return TypeAPIKeyCreated }
func (APIKeyUpdated) EventType() string       { return TypeAPIKeyUpdated }
func (APIKeyDeleted) EventType() string       { return TypeAPIKeyDeleted }
func (APIKeyRevealed) EventType() string      { return TypeAPIKeyRevealed }

var eventFactories = map[string]func() Event{
	TypeOrganizationCreated: func() Event { return &OrganizationCreated{} },
	TypeAccountCreated:      func() Event { return &AccountCreated{} },
	TypeAccessKeyCreated:    func() Event { return &AccessKeyCreated{} },
	TypeWorkspaceCreated:    func() Event { return &WorkspaceCreated{} },
	TypeWorkspaceUpdated:    func() Event { return &WorkspaceUpdated{} },
	TypeMemberAuthorized:    func() Event { return &MemberAuthorized{} },
	TypeMemberRevoked:       func() Event { return &MemberRevoked{} },
	TypeAPIKeyCreated:       func() Event { return &APIKeyCreated{} },
	TypeAPIKeyUpdated:       func() Event { return &APIKeyUpdated{} },
	TypeAPIKeyDeleted:       func() Event { return &APIKeyDeleted{} },
	TypeAPIKeyRevealed:      func() Event { return &APIKeyRevealed{} },
}

// NewEvent returns a pointer to a zero event of the given wire type, for decoding.
// Decoders dereference it before handing it to aggregates and projectors, which
// switch on value types.
func NewEvent(eventType string) (Event, error) {
	f, ok := eventFactories[eventType]
	if !ok {
		return nil, fmt.Errorf("unknown event type %q", eventType)
	}
	return f(), nil
}

// Deref turns a decoded *T into T for every event type.
func Deref(e Event) Event {
	switch v := e.(type) {
	case *OrganizationCreated:
		return *v
	case *AccountCreated:
		return *v
	case *AccessKeyCreated:
		return *v
	case *WorkspaceCreated:
		return *v
	case *WorkspaceUpdated:
		return *v
	case *MemberAuthorized:
		return *v
	case *MemberRevoked:
		return *v
	case *APIKeyCreated:
		return *v
	case *APIKeyUpdated:
		return *v
	case *APIKeyDeleted:
		return *v
	case *APIKeyRevealed:
		return *v
	}
	return e
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
}
