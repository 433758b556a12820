// Package commands holds one handler per command: authorize, load the aggregate from
// the event store, let the domain decide, append with an optimistic-concurrency check.
// It declares the small interfaces it needs of the infrastructure.
package commands

import (
	"context"
	"errors"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// EventStore is what handlers need of the log.
type EventStore interface {
	// Append writes events if the aggregate's last sequence is still expected and
	// returns its new version; domain.ErrConflict when someone wrote first.
	Append(ctx context.Context, kind, id string, expected uint64, events []domain.Event, meta domain.Metadata) (uint64, error)
	// AppendMany writes the changes of several aggregates of a kind as one atomic
	// batch, each version checked, and returns their new versions in order.
	AppendMany(ctx context.Context, kind string, changes []domain.Change, meta domain.Metadata) ([]uint64, error)
	// LoadEvents returns the aggregate's events after a version up to at least its
	// known end, with their positions, and the last version; reading less than the
	// end is an error, never a shorter aggregate.
	LoadEvents(ctx context.Context, kind, id string, after, end uint64) ([]domain.Recorded, uint64, error)
	// LastSequence is the aggregate's current version, in one round trip.
	LastSequence(ctx context.Context, kind, id string) (uint64, error)
	// Position is where the log ends, in one round trip.
	Position(ctx context.Context) (uint64, error)
}

// Snapshots keep the latest state of aggregates, so a cold load reads only the
// events after it. Derived data: a snapshot lost or unreadable only lengthens a load.
type Snapshots interface {
	// Load returns an aggregate's latest snapshot and the log position it was taken
	// at; ok false when there is none.
	Load(ctx context.Context, kind, id string) (data []byte, position uint64, ok bool, err error)
	Save(ctx context.Context, kind, id string, position uint64, data []byte) error
}

// Vault seals API key plaintexts under per-key data keys kept outside the log.
type Vault interface {
	// Seal seals each plaintext, in memory, under a new data key; wrapped are the
	// data keys as the vault stores them (under its master key).
	Seal(ids []string, plaintexts [][]byte) (sealed, wrapped [][]byte, err error)
	// Store starts writing the data keys, each only where its id has none, and
	// returns what waits for them: the caller appends meanwhile.
	Store(ctx context.Context, ids []string, wrapped [][]byte) (wait func() error)
	// Restore writes them over whatever the ids hold: the caller's events, which
	// hold the sealed values, are in the log.
	Restore(ctx context.Context, ids []string, wrapped [][]byte) error
	// Lost tells whether sealed can no longer be opened (no data key for id, or
	// another one); an error when the vault cannot tell. Whole tells whether the
	// vault still holds the canary the data key check planted beside the data keys.
	Lost(ctx context.Context, id string, sealed []byte) (bool, error)
	Whole(ctx context.Context) (bool, error)
	// Open fails with an error matching domain.ErrAPIKeyDeleted once Destroy ran.
	Open(ctx context.Context, id string, sealed []byte) ([]byte, error)
	Destroy(ctx context.Context, id string) error
}

// AccessKeyIndex finds the organization of an access key secret's hash. It may lag
// the log by milliseconds; the organization aggregate has the final word.
type AccessKeyIndex interface {
	OrganizationOf(secretHash string) (orgID string, ok bool)
	// Remember adds a key this instance just created, so it works at once here.
	Remember(secretHash, orgID string)
	// WaitFor waits until the index has applied the log up to a position.
	WaitFor(ctx context.Context, pos uint64) error
}

// IdempotencyStore remembers the requests sent with an Idempotency-Key.
type IdempotencyStore interface {
	// Claim reserves (scope, key) for a request with this fingerprint: a nil record
	// when the caller holds the claim (a new one, or one taken over from an attempt
	// whose outcome is unknown or whose holder died), else the earlier record (not
	// Completed while that request is still running).
	Claim(ctx context.Context, scope, key, fingerprint string) (Claim, *IdempotencyRecord, error)
	// Complete records that the claimed request is done (its effect is in the log).
	Complete(ctx context.Context, scope, key string) error
	// Release drops a claim whose request certainly wrote nothing, so the client may
	// retry with anything.
	Release(ctx context.Context, scope, key string) error
	// Unknown keeps a claim whose attempt may have written: the next attempt takes it
	// over and looks in the log first.
	Unknown(ctx context.Context, scope, key string) error
}

// Claim is the identity of a claimed request: when it was first claimed (the ids of
// what it creates derive from it), and whether an earlier attempt may have written.
type Claim struct {
	CreatedAt time.Time
	TakeOver  bool
}

// IdempotencyRecord is an earlier request with the same Idempotency-Key: its
// fingerprint, when it was first claimed (what it created is named after that), and
// whether it completed. It holds no result: a replay reads the resources from the log.
type IdempotencyRecord struct {
	Fingerprint string
	CreatedAt   time.Time
	Completed   bool
}

// Errors of the application layer, mapped to HTTP in one place.
var (
	// ErrUnauthenticated: no, malformed, unknown or revoked credential (401, always
	// the same answer whatever the reason).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrIdempotencyKeyReused: the key was used with another request body (422).
	ErrIdempotencyKeyReused = errors.New("idempotency key reused with a different request")
	// ErrIdempotencyInProgress: the first request with this key is still running (409).
	ErrIdempotencyInProgress = errors.New("a request with this idempotency key is in progress")
	// ErrIdempotentResultGone: the request sent with this key completed, but what it
	// created is gone since (a role deleted, say): there is nothing to answer again (410).
	ErrIdempotentResultGone = errors.New("what the request with this idempotency key created is gone")
)

// Caller is the authenticated account making a request, and where it comes from.
// Permissions are its effective permissions when the request began.
type Caller struct {
	OrganizationID string
	AccountID      string
	AccessKeyID    string
	// PreviousSecret: authenticated with a secret rotated out, in its grace period.
	PreviousSecret bool
	Primary        bool
	Permissions    map[domain.Permission]bool
	// Grants are the workspaces roles authorize the caller on (workspace id → role
	// ids), read with its permissions.
	Grants    map[string][]string
	SourceIP  string
	RequestID string
	// ClientRequestID is the client's X-Request-Id, if any.
	ClientRequestID string
}

func (c Caller) metadata(workspaceID string) domain.Metadata {
	return domain.Metadata{
		OrganizationID: c.OrganizationID, WorkspaceID: workspaceID, ActorID: c.AccountID,
		CredentialID: c.AccessKeyID, SourceIP: c.SourceIP, RequestID: c.RequestID,
		ClientRequestID: c.ClientRequestID,
	}
}

// Idempotency carries a client's Idempotency-Key and the fingerprint of its request
// (method, path and body). The zero value means "no key".
type Idempotency struct {
	Key         string
	Fingerprint string
}
