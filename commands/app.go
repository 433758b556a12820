package commands

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// Deps are the ports and settings every handler shares.
type Deps struct {
	Store       EventStore
	Vault       Vault
	Index       AccessKeyIndex
	Idempotency IdempotencyStore
	// Pepper keys the HMAC of every credential.
	Pepper []byte
	// Clock and Random default to time.Now and crypto/rand.
	Clock  func() time.Time
	Random io.Reader
}

// App lists every command handler; cmd/keyledger wires it once. Safe for concurrent
// use.
type App struct {
	deps       Deps
	etagKey    []byte
	workspaces *repository[*domain.Workspace]
	orgs       *repository[*domain.Organization]
}

// New wires the handlers.
func New(d Deps) *App {
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.Random == nil {
		d.Random = rand.Reader
	}
	return &App{
		deps:       d,
		etagKey:    etagKey(d.Pepper),
		workspaces: newRepository(d.Store, domain.AggregateWorkspace, domain.NewEmptyWorkspace),
		orgs:       newRepository(d.Store, domain.AggregateOrganization, domain.NewEmptyOrganization),
	}
}

// now is truncated to what PostgreSQL keeps, so writes and reads show the same instant.
func (a *App) now() time.Time { return a.deps.Clock().UTC().Truncate(time.Microsecond) }

// ownWorkspace refuses a workspace of another organization as if it did not exist.
func ownWorkspace(c Caller, w *domain.Workspace) error {
	if !w.Exists() || w.OrganizationID() != c.OrganizationID {
		return domain.ErrWorkspaceNotFound
	}
	return nil
}

// idempotentCommand is a command that a client may retry with an Idempotency-Key.
type idempotentCommand[R any] struct {
	// authorize runs before the key is looked up, so a refused caller gets what a
	// fresh request would get (403, 404), never an earlier answer.
	authorize func() error
	run       func() (R, error)
	// replay rebuilds what a stored result never holds (secrets) for a retry, and
	// records it (a plaintext leaving the service is a reveal); nil when nothing is
	// to be rebuilt.
	replay func(*R) error
}

// idempotencyScope is the owner of a key value: the calling account in its
// organization. Another account that sends the same value sends its own request.
func idempotencyScope(c Caller) string { return c.OrganizationID + "/" + c.AccountID }

// idempotent runs a command once per (account, Idempotency-Key): a retry with the
// same request gets the stored result (rehydrated, since secrets are never stored),
// another request with the same key gets ErrIdempotencyKeyReused. The caller is
// authorized first, on every attempt.
func idempotent[R any](ctx context.Context, a *App, c Caller, idem Idempotency, cmd idempotentCommand[R]) (R, bool, error) {
	var zero R
	if err := cmd.authorize(); err != nil {
		return zero, false, err
	}
	if idem.Key == "" || a.deps.Idempotency == nil {
		r, err := cmd.run()
		return r, false, err
	}
	scope := idempotencyScope(c)
	prior, err := a.deps.Idempotency.Claim(ctx, scope, idem.Key, idem.Fingerprint)
	if err != nil {
		return zero, false, err
	}
	if prior != nil {
		if prior.Fingerprint != idem.Fingerprint {
			return zero, false, ErrIdempotencyKeyReused
		}
		if prior.Result == nil {
			return zero, false, ErrIdempotencyInProgress
		}
		var r R
		if err := json.Unmarshal(prior.Result, &r); err != nil {
			return zero, false, fmt.Errorf("idempotency: decode stored result: %w", err)
		}
		if cmd.replay != nil {
			if err := cmd.replay(&r); err != nil {
				return zero, false, err
			}
		}
		return r, true, nil
	}
	r, err := cmd.run()
	if err != nil {
		// Nothing was written (or the outcome is unknown and the log's
		// duplicate window and the version check guard a retry): free the key.
		if rerr := a.deps.Idempotency.Release(context.WithoutCancel(ctx), scope, idem.Key); rerr != nil {
			return zero, false, fmt.Errorf("%w (and releasing the idempotency key: %v)", err, rerr)
		}
		return zero, false, err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return zero, false, err
	}
	if err := a.deps.Idempotency.Complete(context.WithoutCancel(ctx), scope, idem.Key, body); err != nil {
		return zero, false, err
	}
	return r, false, nil
}
