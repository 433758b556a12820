package domain

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
	"golang.org/x/text/unicode/norm"
)

// BusinessType is the product line of an API key.
type BusinessType string

// The business types. Their strings are on the wire and in the log.
const (
	BusinessMaaS   BusinessType = "maas"
	BusinessSearch BusinessType = "search"
)

// ParseBusinessType accepts "maas" or "search" in any case ("MaaS", "Search", as a
// console writes them) and answers the canonical lower-case form.
func ParseBusinessType(s string) (BusinessType, error) {
	switch b := BusinessType(strings.ToLower(s)); b {
	case BusinessMaaS, BusinessSearch:
		return b, nil
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
func NewAccountID() string { return AccountIDOf(ulid.Make()) }

// NewWorkspaceID returns a fresh workspace id.
func NewWorkspaceID() string { return WorkspaceIDOf(ulid.Make()) }

// NewAPIKeyID returns a fresh API key id.
func NewAPIKeyID() string { return APIKeyIDOf(ulid.Make()) }

// AccountIDOf, WorkspaceIDOf and APIKeyIDOf name a resource after a given ULID: the
// application derives them from an Idempotency-Key, so every attempt of a request
// names the same resources.
func AccountIDOf(u ulid.ULID) string { return prefixAccount + u.String() }

// WorkspaceIDOf names a workspace after a given ULID.
func WorkspaceIDOf(u ulid.ULID) string { return prefixWorkspace + u.String() }

// APIKeyIDOf names an API key after a given ULID.
func APIKeyIDOf(u ulid.ULID) string { return prefixAPIKey + u.String() }

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

// ParseName trims surrounding spaces from a required display name (of a workspace,
// an account, a role, a Search key or a batch name prefix), normalizes it to Unicode
// NFC and checks it: at most MaxNameLen characters once normalized, valid UTF-8, and
// no control character (newline and tab included, even at the ends), no format
// character (bidirectional controls, zero-width and other invisible characters, the
// byte order mark, the soft hyphen) and no line or paragraph separator, and at
// least one character that shows (not marks and selectors alone). Such characters
// make two names look alike, disguise what a name says or show nothing.
func ParseName(field, s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", invalid(field, "invalid_text", "must be valid UTF-8")
	}
	s = strings.TrimFunc(norm.NFC.String(s), isPlainSpace)
	if s == "" {
		return "", invalid(field, "required", "must not be empty")
	}
	if i := strings.IndexFunc(s, notInName); i >= 0 {
		return "", invalid(field, "invalid_text", fmt.Sprintf(
			"must not contain control, format or invisible characters (found %s)", codePoint(s[i:])))
	}
	if !strings.ContainsFunc(s, shown) { // only marks and selectors: a name shown as nothing
		return "", invalid(field, "invalid_text", "must contain a letter, digit, punctuation mark or symbol")
	}
	return checkLen(field, s, MaxNameLen)
}

// shown: a character a name is seen by (a letter, digit, punctuation or symbol),
// not one that only changes another (a combining mark, a variation selector).
func shown(r rune) bool { return unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S) }

// ParseText trims surrounding white space from an optional free text (a description,
// a note), normalizes it to Unicode NFC and checks it: at most max characters once
// normalized, valid UTF-8, no control character other than newline and tab, no
// bidirectional control (they reorder what is shown: "abc\u202egnp.exe" reads
// "abcexe.png") and no line or paragraph separator.
func ParseText(field, s string, max int) (string, error) {
	if !utf8.ValidString(s) {
		return "", invalid(field, "invalid_text", "must be valid UTF-8")
	}
	s = strings.TrimSpace(norm.NFC.String(s))
	if i := strings.IndexFunc(s, notInText); i >= 0 {
		return "", invalid(field, "invalid_text", fmt.Sprintf(
			"must not contain control characters other than newline and tab, bidirectional controls or line and paragraph separators (found %s)",
			codePoint(s[i:])))
	}
	return checkLen(field, s, max)
}

func checkLen(field, s string, max int) (string, error) {
	if n := utf8.RuneCountInString(s); n > max {
		return "", invalid(field, "too_long", fmt.Sprintf("at most %d characters, got %d", max, n))
	}
	return s, nil
}

// isPlainSpace is the white space trimmed from a name: spaces, but not the controls
// (tab, newline…) nor the line and paragraph separators, which are refused.
func isPlainSpace(r rune) bool {
	return unicode.IsSpace(r) && !unicode.IsControl(r) && !unicode.In(r, unicode.Zl, unicode.Zp)
}

// notInName: controls (Cc), format characters (Cf: bidirectional controls, zero-width
// characters, word joiner, invisible operators, byte order mark, soft hyphen, tags),
// line and paragraph separators, and the other characters shown as nothing (Hangul
// fillers, the combining grapheme joiner: a name of them looks blank). Variation
// selectors stay (an emoji's presentation); names are compared without them.
func notInName(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Other_Default_Ignorable_Code_Point)
}

// notInText: controls but newline and tab, bidirectional controls (U+061C, U+200E,
// U+200F, U+202A–U+202E, U+2066–U+2069) and line and paragraph separators. Other
// format characters stay: the zero-width joiner builds emoji.
func notInText(r rune) bool {
	if r == '\n' || r == '\t' {
		return false
	}
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || unicode.In(r, unicode.Zl, unicode.Zp)
}

// codePoint names the first character of s for an error message, as U+XXXX: the
// characters refused are invisible or would garble the message.
func codePoint(s string) string {
	r, _ := utf8.DecodeRuneInString(s)
	return fmt.Sprintf("U+%04X", r)
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

// RateMode is how a Search batch sets its keys' QPS limits.
type RateMode string

// The rate modes: none given (unlimited), one limit for all, one per key.
const (
	RateUnlimited  RateMode = ""
	RateUniform    RateMode = "uniform"
	RateIndividual RateMode = "individual"
)

// ParseRateMode accepts "uniform" or "individual" (field rate_limit.mode).
func ParseRateMode(s string) (RateMode, error) {
	switch RateMode(s) {
	case RateUniform, RateIndividual:
		return RateMode(s), nil
	case "":
		return "", invalid("rate_limit.mode", "required", `set mode to "uniform" or "individual"`)
	}
	return "", invalid("rate_limit.mode", "invalid_mode", `must be "uniform" or "individual"`)
}

// Status is whether an account or an access key may be used.
type Status string

// The statuses.
const (
	StatusEnabled  Status = "enabled"
	StatusDisabled Status = "disabled"
)

// ParseStatus accepts exactly "enabled" or "disabled" (field status).
func ParseStatus(s string) (Status, error) {
	switch Status(s) {
	case StatusEnabled, StatusDisabled:
		return Status(s), nil
	}
	return "", invalid("status", "invalid_status", `must be "enabled" or "disabled"`)
}
