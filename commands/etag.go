package commands

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/keyledger/keyledger/domain"
)

// etagKey derives the key of entity tags from the pepper, so tags are stable across
// instances and restarts but reveal nothing of the log.
func etagKey(pepper []byte) []byte {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte("keyledger etag v1"))
	return m.Sum(nil)
}

// ETag is the entity tag of a resource at its own version (the log position of the
// last event that changed that resource): a keyed hash of both, quoted, so it says
// nothing of other resources nor of the log's volume. Reads and writes of the same
// resource at the same version answer the same tag.
func (a *App) ETag(resourceID string, version uint64) string {
	m := hmac.New(sha256.New, a.etagKey)
	m.Write([]byte(resourceID))
	m.Write([]byte{0})
	m.Write([]byte(strconv.FormatUint(version, 10)))
	return `"` + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12]) + `"`
}

// IfMatch is a client's If-Match header: empty (no precondition), "*" or a list of
// entity tags. A weak tag never matches (RFC 9110 §13.1.1: strong comparison).
type IfMatch string

// precondition refuses with domain.ErrVersionMismatch a change based on another
// version of the resource than its current one.
func (a *App) precondition(m IfMatch, resourceID string, version uint64) error {
	if m == "" {
		return nil
	}
	tag := a.ETag(resourceID, version)
	for _, t := range strings.Split(string(m), ",") {
		if t = strings.TrimSpace(t); t == "*" || t == tag {
			return nil
		}
	}
	return domain.ErrVersionMismatch
}

// accountPrecondition checks If-Match against an account's entity tag (its access
// key is part of it); an account that does not exist is the decision's to refuse.
func (a *App) accountPrecondition(o *domain.Organization, accountID string, m IfMatch) error {
	acc, ok := o.Account(accountID)
	if !ok {
		return nil
	}
	return a.precondition(m, acc.ID, acc.Version)
}
