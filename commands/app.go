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

// idempotent runs a command once per (organization, Idempotency-Key): a retry with
// the same request gets the stored result (rehydrated, since secrets are never
// stored), another request with the same key gets ErrIdempotencyKeyReused.
func idempotent[R any](ctx context.Context, a *App, c Caller, idem Idempotency, run func() (R, error), rehydrate func(*R) error) (R, error) {
	var zero R
	if idem.Key == "" || a.deps.Idempotency == nil {
		return run()
	}
	prior, err := a.deps.Idempotency.Claim(ctx, c.OrganizationID, idem.Key, idem.Fingerprint)
	if err != nil {
		return zero, err
	}
	if prior != nil {
		if prior.Fingerprint != idem.Fingerprint {
			return zero, ErrIdempotencyKeyReused
		}
		if prior.Result == nil {
			return zero, ErrIdempotencyInProgress
		}
		var r R
		if err := json.Unmarshal(prior.Result, &r); err != nil {
			return zero, fmt.Errorf("idempotency: decode stored result: %w", err)
		}
		if rehydrate != nil {
			if err := rehydrate(&r); err != nil {
				return zero, err
			}
		}
		return r, nil
	}
	r, err := run()
	if err != nil {
		// Nothing was written (or the outcome is unknown and the log's
		// duplicate window and the version check guard a retry): free the key.
		if rerr := a.deps.Idempotency.Release(context.WithoutCancel(ctx), c.OrganizationID, idem.Key); rerr != nil {
			return zero, fmt.Errorf("%w (and releasing the idempotency key: %v)", err, rerr)
		}
		return zero, err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return zero, err
	}
	if err := a.deps.Idempotency.Complete(context.WithoutCancel(ctx), c.OrganizationID, idem.Key, body); err != nil {
		return zero, err
	}
	return r, nil
}
