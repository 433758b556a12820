package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/keyledger/keyledger/domain"
)

// Allowlist accepts either a list of entries or one string separated by commas or
// whitespace ("1.2.3.4, 10.0.0.0/8").
type Allowlist []string

// UnmarshalJSON implements json.Unmarshaler. The string form is checked as the
// client wrote it (its length limit counts the raw text, separators included).
func (a *Allowlist) UnmarshalJSON(b []byte) error {
	return stringOrList(b, (*[]string)(a), func(s string) ([]string, error) {
		l, err := domain.ParseAllowlistText(s)
		return l.Entries(), err
	})
}

// stringOrList decodes a JSON list of strings into out, or one string that split
// turns into the list.
func stringOrList(b []byte, out *[]string, split func(string) ([]string, error)) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte(`"`)) {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		l, err := split(s)
		if err != nil {
			return err
		}
		*out = l
		return nil
	}
	return json.Unmarshal(b, out)
}

// Nullable tells an absent field (Set false) from null (Set true, Value nil).
type Nullable[T any] struct {
	Set   bool
	Value *T
}

// NullableInt is a number that may be null (qps_limit null: unlimited).
type NullableInt = Nullable[int]

// NullableString is a string that may be null (a MaaS key's name: it has none).
type NullableString = Nullable[string]

func (*Nullable[T]) acceptsNull() {}

// MarshalJSON writes null or the value: a request as it was sent, for its
// Idempotency-Key fingerprint (with omitzero, an absent field stays absent).
func (n Nullable[T]) MarshalJSON() ([]byte, error) {
	if n.Value == nil {
		return []byte("null"), nil
	}
	return json.Marshal(*n.Value)
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *Nullable[T]) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	return json.Unmarshal(b, &n.Value)
}

// CreateWorkspaceRequest is the body of POST /v1/workspaces.
type CreateWorkspaceRequest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// UpdateWorkspaceRequest is the body of PATCH /v1/workspaces/{ws}.
type UpdateWorkspaceRequest struct {
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
}

// WorkspaceList is a page of workspaces.
type WorkspaceList struct {
	Items      []Workspace `json:"items"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// CreateAccountRequest is the body of POST /v1/accounts.
type CreateAccountRequest struct {
	Name string `json:"name"`
}

// AccountList is a page of accounts.
type AccountList struct {
	Items      []Account `json:"items"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// PutMembersRequest is the new member set of a workspace.
type PutMembersRequest struct {
	AccountIDs []string `json:"account_ids"`
}

// CreateAPIKeyRequest is the body of POST /v1/workspaces/{ws}/api-keys.
type CreateAPIKeyRequest struct {
	BusinessType string `json:"business_type" enum:"maas,search"`
	// Name absent or null: none for MaaS, the default for Search (as a key is shown).
	Name      NullableString `json:"name,omitzero"`
	Allowlist Allowlist      `json:"allowlist,omitempty"`
	Note      *string        `json:"note,omitempty"`
	// QPSLimit absent or null: unlimited (as a key is shown).
	QPSLimit NullableInt `json:"qps_limit,omitzero"`
}

// BatchNaming names the keys of a batch: a prefix, or one name per key.
type BatchNaming struct {
	Prefix *string  `json:"prefix,omitempty"`
	Names  NameList `json:"names,omitempty"`
}

// NameList accepts a list of names or one string of them, as pasted from a
// spreadsheet or a chat: separated by commas (the full-width "，" and the
// ideographic "、" too), semicolons ("；" too) or line breaks, each trimmed; an
// empty piece (a trailing comma) is no name. Spaces stay within a name.
type NameList []string

// UnmarshalJSON implements json.Unmarshaler.
func (n *NameList) UnmarshalJSON(b []byte) error {
	return stringOrList(b, (*[]string)(n), func(s string) ([]string, error) {
		l := []string{} // a string of no names is names given, not left out
		for _, name := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(",，、;；\n\r", r) }) {
			if name = strings.TrimSpace(name); name != "" {
				l = append(l, name)
			}
		}
		return l, nil
	})
}

// BatchRateLimit is the QPS of a batch: "uniform" (qps) or "individual" (qps_list,
// where null leaves that key unlimited).
type BatchRateLimit struct {
	Mode    string        `json:"mode" enum:"uniform,individual"`
	QPS     *int          `json:"qps,omitempty"`
	QPSList []NullableInt `json:"qps_list,omitempty"`
}

// CreateSearchBatchRequest is the body of POST /v1/workspaces/{ws}/api-keys/batch.
// business_type, when given, must say Search: a batch makes Search keys.
type CreateSearchBatchRequest struct {
	BusinessType *string         `json:"business_type,omitempty" enum:"search"`
	Count        int             `json:"count"`
	Naming       BatchNaming     `json:"naming"`
	Allowlist    Allowlist       `json:"allowlist,omitempty"`
	RateLimit    *BatchRateLimit `json:"rate_limit,omitempty"`
}

// UpdateAPIKeyRequest is the body of PATCH /v1/workspaces/{ws}/api-keys/{key};
// qps_limit null makes a Search key unlimited; name and qps_limit null are what a
// MaaS key has (a Search key must keep its name).
type UpdateAPIKeyRequest struct {
	Name      NullableString `json:"name,omitzero"`
	Allowlist *Allowlist     `json:"allowlist,omitempty"`
	Note      *string        `json:"note,omitempty"`
	QPSLimit  NullableInt    `json:"qps_limit"`
}

// APIKeyBatch is the response of a batch creation.
type APIKeyBatch struct {
	BatchID string          `json:"batch_id"`
	Items   []CreatedAPIKey `json:"items"`
}

// APIKeyList is a page of keys; with `fields`, items hold only those fields.
type APIKeyList struct {
	Items      []map[string]any `json:"items"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// RevealedAPIKey is the response of a reveal.
type RevealedAPIKey struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

func fingerprint(method, path string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(method + " " + path + "\n"))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// StatusRequest enables or disables an account or an access key.
type StatusRequest struct {
	Status string `json:"status" enum:"enabled,disabled"`
}

// RoleRequest is the body of POST /v1/roles and PATCH /v1/roles/{id}: permissions
// are "module:action" items, users account ids, workspaces the workspace ids the
// role authorizes its users on; each replaces the role's set.
type RoleRequest struct {
	Name        *string   `json:"name,omitempty"`
	Permissions *[]string `json:"permissions,omitempty"`
	Users       *[]string `json:"users,omitempty"`
	Workspaces  *[]string `json:"workspaces,omitempty"`
}

// RotateAccessKeyRequest is the body of POST /v1/accounts/{id}/access-key/rotate
// ({} rotates with no grace period).
type RotateAccessKeyRequest struct {
	// GraceSeconds is how long the old secret keeps working beside the new one: 0
	// (the default) stops it at once, at most 86400 (24 h).
	GraceSeconds *int `json:"grace_seconds,omitempty"`
}

// AccountWorkspacesRequest is the body of PUT /v1/accounts/{id}/workspaces: the
// whole set of workspaces the account is to be a direct member of.
type AccountWorkspacesRequest struct {
	WorkspaceIDs []string `json:"workspace_ids"`
}

// AccountWorkspaces are the workspaces an account is a direct member of (roles may
// authorize it on more: see /v1/me and the member lists).
type AccountWorkspaces struct {
	AccountID    string   `json:"account_id"`
	WorkspaceIDs []string `json:"workspace_ids"`
}

// RoleList lists the organization's roles.
type RoleList struct {
	Items []Role `json:"items"`
}
