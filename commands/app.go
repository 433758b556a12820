package commands

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/fault"
)

// Deps are the ports and settings every handler shares.
type Deps struct {
	Store       EventStore
	Snapshots   Snapshots // optional
	Vault       Vault
	Index       AccessKeyIndex
	Idempotency IdempotencyStore
	// Pepper keys the HMAC of every credential.
	Pepper []byte
	// Clock and Random default to time.Now and crypto/rand.
	Clock  func() time.Time
	Random io.Reader
	// CacheBytes bounds the estimated size of the aggregates kept in memory, per
	// kind (default DefaultCacheBytes).
	CacheBytes int64
	// LockWait bounds the wait for an aggregate another command of this instance
	// holds (default 7s: a freshness question and an append, each at its default
	// bound): behind a write the log stalls, the commands queued give up as it
	// does, each within its own bound.
	LockWait time.Duration
}

// App lists every command handler; cmd/keyledger wires it once. Safe for concurrent
// use.
type App struct {
	deps       Deps
	etagKey    []byte
	workspaces *repository[*domain.Workspace]
	orgs       *repository[*domain.Organization]
	// logEnd asks where the log ends, one question in flight answering all who
	// came before it was sent (the authentications of secrets the index lacks).
	logEnd *freshness
}

// New wires the handlers.
func New(d Deps) *App {
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.Random == nil {
		d.Random = rand.Reader
	}
	if d.CacheBytes <= 0 {
		d.CacheBytes = DefaultCacheBytes
	}
	if d.LockWait <= 0 {
		d.LockWait = 7 * time.Second
	}
	return &App{
		deps:       d,
		etagKey:    etagKey(d.Pepper),
		workspaces: newRepository(d.Store, d.Snapshots, domain.AggregateWorkspace, domain.NewEmptyWorkspace, domain.RestoreWorkspace, d.CacheBytes, d.LockWait),
		orgs:       newRepository(d.Store, d.Snapshots, domain.AggregateOrganization, domain.NewEmptyOrganization, domain.RestoreOrganization, d.CacheBytes, d.LockWait),
		logEnd:     newFreshness(func(ctx context.Context, _ string) (uint64, error) { return d.Store.Position(ctx) }),
	}
}

// CacheStats are the aggregate caches' counters, by kind ("workspace",
// "organization").
func (a *App) CacheStats() map[string]*CacheStats {
	return map[string]*CacheStats{domain.AggregateWorkspace: &a.workspaces.entries.stats, domain.AggregateOrganization: &a.orgs.entries.stats}
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

// errAlreadyApplied: the decision found what this request creates already in the
// log, written by an earlier attempt of the same request.
var errAlreadyApplied = errors.New("an earlier attempt of this request is in the log")

// idempotentCommand is a command that a client may retry with an Idempotency-Key.
type idempotentCommand[R any] struct {
	// authorize runs before the key is looked up, so a refused caller gets what a
	// fresh request would get (403, 404), never an earlier answer.
	authorize func() error
	// run executes the command, naming what it creates and appends after id.
	run func(id identity) (R, error)
	// find looks in the log for what an attempt named id created: the result as the
	// log has it now (without what the log never holds, such as secrets), or found
	// false. A replay of a completed request answers through it too.
	find func(id identity) (r R, found bool, err error)
	// replay checks that the caller may still see a result given again, rebuilds
	// what a result never holds (secrets) and records it (a plaintext leaving the
	// service is a reveal); nil when there is nothing to check or rebuild.
	replay func(*R) error
}

// idempotencyScope is the owner of a key value: the calling account in its
// organization. Another account that sends the same value sends its own request.
func idempotencyScope(c Caller) string { return c.OrganizationID + "/" + c.AccountID }

// idempotent runs a command with exactly one effect per (account, Idempotency-Key),
// whatever fails when. The caller is authorized first, on every attempt. A retry of
// a completed request gets what it created, read from the log (secrets rehydrated);
// another request with the same key gets ErrIdempotencyKeyReused; one running,
// ErrIdempotencyInProgress. An
// attempt whose outcome is unknown (the log stalled after the append was sent, the
// instance died) leaves its claim to the next attempt, which names everything as
// the first did and looks in the log before running again. The bool says that the
// result is an earlier attempt's.
func idempotent[R any](ctx context.Context, a *App, c Caller, idem Idempotency, cmd idempotentCommand[R]) (R, bool, error) {
	var zero R
	if err := cmd.authorize(); err != nil {
		return zero, false, err
	}
	if idem.Key == "" || a.deps.Idempotency == nil {
		r, err := cmd.run(identity{})
		return r, false, err
	}
	scope := idempotencyScope(c)
	claim, prior, err := a.deps.Idempotency.Claim(ctx, scope, idem.Key, idem.Fingerprint)
	if err != nil {
		return zero, false, err
	}
	if prior != nil {
		if prior.Fingerprint != idem.Fingerprint {
			return zero, false, ErrIdempotencyKeyReused
		}
		if !prior.Completed {
			return zero, false, ErrIdempotencyInProgress
		}
		r, found, err := cmd.find(newIdentity(scope, idem.Key, prior.CreatedAt))
		if err != nil {
			return zero, false, err
		}
		if !found {
			return zero, false, ErrIdempotentResultGone
		}
		return r, true, replay(cmd, &r)
	}
	id := newIdentity(scope, idem.Key, claim.CreatedAt)
	// completed: the request did complete, and its result cannot be given (gone
	// since, or not to this caller any more).
	completed := func(err error) (R, bool, error) {
		_ = a.deps.Idempotency.Complete(context.WithoutCancel(ctx), scope, idem.Key)
		return zero, false, err
	}
	done := func(r R, replayed bool) (R, bool, error) {
		if replayed {
			var refused *domain.ForbiddenError
			if err := replay(cmd, &r); errors.Is(err, ErrIdempotentResultGone) || errors.As(err, &refused) {
				return completed(err)
			} else if err != nil {
				return zero, false, a.unknown(ctx, scope, idem.Key, err)
			}
		}
		if err := a.deps.Idempotency.Complete(context.WithoutCancel(ctx), scope, idem.Key); err != nil {
			return zero, false, err
		}
		return r, replayed, nil
	}
	if claim.TakeOver { // an earlier attempt may have written: look first
		r, found, err := cmd.find(id)
		if errors.Is(err, ErrIdempotentResultGone) {
			return completed(err)
		}
		if err != nil {
			return zero, false, a.unknown(ctx, scope, idem.Key, err)
		}
		if found {
			return done(r, true)
		}
	}
	r, err := cmd.run(id)
	if errors.Is(err, errAlreadyApplied) { // an earlier attempt landed meanwhile
		var found bool
		if r, found, err = cmd.find(id); err == nil && !found {
			err = fmt.Errorf("idempotency: the log holds part of an earlier attempt: %w", errAlreadyApplied)
		}
		if errors.Is(err, ErrIdempotentResultGone) {
			return completed(err)
		}
		if err == nil {
			return done(r, true)
		}
	}
	if err != nil {
		if errors.Is(err, fault.ErrUnavailable) || errors.Is(err, errAlreadyApplied) {
			return zero, false, a.unknown(ctx, scope, idem.Key, err)
		}
		// Nothing was written: free the key for a corrected request.
		if rerr := a.deps.Idempotency.Release(context.WithoutCancel(ctx), scope, idem.Key); rerr != nil {
			return zero, false, fmt.Errorf("%w (and releasing the idempotency key: %v)", err, rerr)
		}
		return zero, false, err
	}
	return done(r, false)
}

func replay[R any](cmd idempotentCommand[R], r *R) error {
	if cmd.replay == nil {
		return nil
	}
	return cmd.replay(r)
}

// unknown keeps the claim of an attempt that may have written, for the next attempt
// to take over, and returns the attempt's error.
func (a *App) unknown(ctx context.Context, scope, key string, err error) error {
	if uerr := a.deps.Idempotency.Unknown(context.WithoutCancel(ctx), scope, key); uerr != nil {
		return fmt.Errorf("%w (and keeping the idempotency key: %v)", err, uerr)
	}
	return err
}
