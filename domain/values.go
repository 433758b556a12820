package domain

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
)

// BusinessType is the product line of an API key.
type BusinessType string

// The business types. Their strings are on the wire and in the log.
const (
	BusinessMaaS   BusinessType = "maas"
	BusinessSearch BusinessType = "search"
)

// ParseBusinessType accepts exactly "maas" or "search".
func ParseBusinessType(s string) (BusinessType, error) {
	switch BusinessType(s) {
	case BusinessMaaS, BusinessSearch:
		return BusinessType(s), nil
	}
	return "", invalid("business_type", "invalid_business_type", `must be "maas" or "search"`)
}

// CredentialKind is the prefix of keys of this business type.
func (b BusinessType) CredentialKind() CredentialKind {
	if b == BusinessSearch {
		return KindSearchKey
	}
	return KindMaaSKey
}

// Limits of free-text fields, in characters.
const (
	MaxNameLen        = 64
	MaxDescriptionLen = 512
	MaxNoteLen        = 256
	MaxQPS            = 1_000_000
)

// Name prefixes of identifiers; an id names its kind at a glance in logs.
const (
	prefixOrganization = "org_"
	prefixAccount      = "acct_"
	prefixWorkspace    = "ws_"
	prefixAPIKey       = "key_"
	prefixAccessKey    = "AK"
)

// NewOrganizationID, NewAccountID, NewWorkspaceID and NewAPIKeyID return fresh,
// time-ordered identifiers; ids sort by creation time.
func NewOrganizationID() string { return prefixOrganization + ulid.Make().String() }

// NewAccountID returns a fresh account id.
func NewAccountID() string { return prefixAccount + ulid.Make().String() }

// NewWorkspaceID returns a fresh workspace id.
func NewWorkspaceID() string { return prefixWorkspace + ulid.Make().String() }

// NewAPIKeyID returns a fresh API key id.
func NewAPIKeyID() string { return prefixAPIKey + ulid.Make().String() }

// NewAccessKeyID returns a fresh public access key id.
func NewAccessKeyID() string { return prefixAccessKey + ulid.Make().String() }

// ValidID reports whether s looks like an id of the given kind ("ws_", "key_", …);
// used to reject garbage in paths before any lookup.
func ValidID(prefix, s string) bool {
	if !strings.HasPrefix(s, prefix) {
		return false
	}
	_, err := ulid.ParseStrict(s[len(prefix):])
	return err == nil
}

// IsWorkspaceID, IsAPIKeyID, IsAccountID check the shape of path ids.
func IsWorkspaceID(s string) bool { return ValidID(prefixWorkspace, s) }

// IsAPIKeyID checks the shape of an API key id.
func IsAPIKeyID(s string) bool { return ValidID(prefixAPIKey, s) }

// IsAccountID checks the shape of an account id.
func IsAccountID(s string) bool { return ValidID(prefixAccount, s) }

// ParseName trims and checks a required display name.
func ParseName(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", invalid(field, "required", "must not be empty")
	}
	return checkText(field, s, MaxNameLen)
}

// ParseText trims and checks an optional free text of at most max characters.
func ParseText(field, s string, max int) (string, error) {
	return checkText(field, strings.TrimSpace(s), max)
}

func checkText(field, s string, max int) (string, error) {
	if !utf8.ValidString(s) {
		return "", invalid(field, "invalid_text", "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return "", invalid(field, "too_long", fmt.Sprintf("at most %d characters, got %d", max, n))
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return "", invalid(field, "invalid_text", "must not contain control characters")
		}
	}
	return s, nil
}

// QPS is a Search key's rate limit; zero means unlimited.
type QPS int

// ParseQPS checks an optional limit: nil is unlimited, otherwise 1..MaxQPS.
func ParseQPS(field string, v *int) (QPS, error) {
	if v == nil {
		return 0, nil
	}
	if *v < 1 || *v > MaxQPS {
		return 0, invalid(field, "out_of_range", fmt.Sprintf("must be between 1 and %d (omit it for unlimited)", MaxQPS))
	}
	return QPS(*v), nil
}
