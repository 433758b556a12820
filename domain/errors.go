package domain

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel errors of the domain. The HTTP layer maps each to a status and a stable
// machine code in one place; renaming the text here does not change the wire.
var (
	// ErrWorkspaceNotFound: the workspace does not exist (or is not the caller's).
	ErrWorkspaceNotFound = errors.New("workspace: not found")
	// ErrWorkspaceExists: a create targeted an id already used.
	ErrWorkspaceExists = errors.New("workspace: already exists")
	// ErrAPIKeyNotFound: no such key in the workspace.
	ErrAPIKeyNotFound = errors.New("workspace: api key not found")
	// ErrAPIKeyDeleted: the key was deleted; it can never be revealed or edited again.
	ErrAPIKeyDeleted = errors.New("workspace: api key deleted")
	// ErrKeyNameTaken: another live Search key of the workspace has this name.
	ErrKeyNameTaken = errors.New("workspace: search key name already used")
	// ErrOrganizationNotFound: no such organization.
	ErrOrganizationNotFound = errors.New("organization: not found")
	// ErrOrganizationExists: a create targeted an id already used.
	ErrOrganizationExists = errors.New("organization: already exists")
	// ErrAccountNameTaken: account names are unique in an organization.
	ErrAccountNameTaken = errors.New("organization: account name already used")
	// ErrConflict: someone else appended to the aggregate first (optimistic
	// concurrency); the caller reloads and decides again.
	ErrConflict = errors.New("concurrent modification")
	// ErrVersionMismatch: the client's If-Match does not name the current version.
	ErrVersionMismatch = errors.New("version does not match If-Match")
)

// FieldError describes one invalid input field. Field is a JSON path such as
// "allowlist[2]"; Code is stable and machine-readable.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ValidationError lists every problem of one input at once.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Add records one problem.
func (e *ValidationError) Add(field, code, message string) {
	e.Fields = append(e.Fields, FieldError{Field: field, Code: code, Message: message})
}

// Merge appends the fields of another validation error found in err, prefixing
// their paths: under "allowlist", "[2]" becomes "allowlist[2]", "x" becomes
// "allowlist.x" and "" (the whole value) becomes "allowlist". Any other error is
// returned unchanged.
func (e *ValidationError) Merge(prefix string, err error) error {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	for _, f := range ve.Fields {
		switch {
		case prefix == "":
		case f.Field == "":
			f.Field = prefix
		case strings.HasPrefix(f.Field, "["):
			f.Field = prefix + f.Field
		default:
			f.Field = prefix + "." + f.Field
		}
		e.Fields = append(e.Fields, f)
	}
	return nil
}

// Err returns nil when no problem was recorded.
func (e *ValidationError) Err() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// MaxEventsPerWrite is the most events one write may append: they are one atomic
// batch of the log, whose server limits a batch to this many.
const MaxEventsPerWrite = 1000

// CheckWriteSize refuses a write of more than MaxEventsPerWrite events as bad input
// (a role given a thousand workspaces and a thousand users at once, say).
func CheckWriteSize(n int) error {
	if n <= MaxEventsPerWrite {
		return nil
	}
	return invalid("", "too_many_changes", fmt.Sprintf("one write makes at most %d changes, this one %d: split it", MaxEventsPerWrite, n))
}

func invalid(field, code, message string) error {
	return &ValidationError{Fields: []FieldError{{Field: field, Code: code, Message: message}}}
}

// NameTakenError says which name a conflict is about; it matches its kind
// (ErrKeyNameTaken, ErrRoleNameTaken, ErrAccountNameTaken) with errors.Is.
type NameTakenError struct {
	Kind error
	Name string
}

func (e *NameTakenError) Error() string { return e.Kind.Error() + ": " + strconv.Quote(e.Name) }

// Unwrap is the kind of conflict.
func (e *NameTakenError) Unwrap() error { return e.Kind }

// Errors of the organization aggregate.
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

var (
	// ErrMalformedCredential: wrong prefix, length, alphabet or checksum. Decided
	// without any lookup, so a typo never costs a query.
	ErrMalformedCredential = errors.New("credential: malformed")
	// ErrSnapshotFormat: the snapshot was written by another format.
	ErrSnapshotFormat = errors.New("domain: snapshot of another format")
)
