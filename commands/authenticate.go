package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/fault"
)

// indexCatchUpWait bounds the wait for the credential index to catch up with the
// log before what it does not know is refused.
const indexCatchUpWait = 2 * time.Second

// IndexCurrent waits until the credential index holds the log as it stands now, at
// most indexCatchUpWait (else fault.ErrUnavailable): what it does not know then, the
// log did not hold when IndexCurrent was called. The question of where the log ends
// is shared by the callers waiting (freshness).
func (a *App) IndexCurrent(ctx context.Context) error {
	wait, cancel := context.WithTimeout(ctx, indexCatchUpWait)
	defer cancel()
	end, err := a.logEnd.last(wait, "")
	if err == nil {
		err = a.deps.Index.WaitFor(wait, end)
	}
	if err != nil {
		return fault.Unavailable(fmt.Errorf("the credential index is behind the log: %w", err))
	}
	return nil
}

// Origin is where a request comes from, as the log records it.
type Origin struct {
	SourceIP        string
	RequestID       string // the server's own id
	ClientRequestID string // the client's X-Request-Id, if any
}

// Authenticate turns a bearer secret into the calling account. Every failure is
// ErrUnauthenticated, whatever the reason: malformed, unknown or revoked. The
// organization is checked as loaded from the log, so a revocation applies to the
// very next request, and so does a key created on another instance: an unknown one
// waits for the index to hold the log as it stood (a 503 when it cannot).
func (a *App) Authenticate(ctx context.Context, secret string, origin Origin) (Caller, error) {
	cred, err := domain.ParseCredential(secret)
	if err != nil || cred.Kind() != domain.KindAccessSecret {
		return Caller{}, ErrUnauthenticated
	}
	hash := domain.HashCredential(a.deps.Pepper, cred)
	orgID, ok := a.deps.Index.OrganizationOf(hash)
	if !ok {
		// Maybe a key another instance created or rotated in, which this index has
		// not applied yet: unknown only once it holds the log as it stood when the
		// request came.
		if err := a.IndexCurrent(ctx); err != nil {
			return Caller{}, err
		}
		if orgID, ok = a.deps.Index.OrganizationOf(hash); !ok {
			return Caller{}, ErrUnauthenticated
		}
	}
	var caller Caller
	err = a.orgs.read(ctx, orgID, func(o *domain.Organization, _ uint64) error {
		acc, ok := o.AccountBySecretHash(hash)
		if !ok || !acc.SecretActive(hash, a.now()) {
			return ErrUnauthenticated
		}
		caller = Caller{OrganizationID: orgID, AccountID: acc.ID, AccessKeyID: acc.KeyIDOf(hash), PreviousSecret: acc.IsPrevious(hash), Primary: acc.Primary,
			Permissions: map[domain.Permission]bool{}, Grants: o.WorkspaceGrants(acc.ID), SourceIP: origin.SourceIP, RequestID: origin.RequestID, ClientRequestID: origin.ClientRequestID}
		for _, p := range o.Permissions(acc.ID) {
			caller.Permissions[p] = true
		}
		return nil
	})
	return caller, err
}
