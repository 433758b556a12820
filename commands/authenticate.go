package commands

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// Authenticate turns a bearer secret into the calling account. Every failure is
// ErrUnauthenticated, whatever the reason: malformed, unknown or revoked. The
// organization is checked as loaded from the log, so a revocation applies to the
// very next request.
func (a *App) Authenticate(ctx context.Context, secret, sourceIP, requestID string) (Caller, error) {
	cred, err := domain.ParseCredential(secret)
	if err != nil || cred.Kind() != domain.KindAccessSecret {
		return Caller{}, ErrUnauthenticated
	}
	hash := domain.HashCredential(a.deps.Pepper, cred)
	orgID, ok := a.deps.Index.OrganizationOf(hash)
	if !ok {
		return Caller{}, ErrUnauthenticated
	}
	var caller Caller
	err = a.orgs.read(ctx, orgID, func(o *domain.Organization, _ uint64) error {
		acc, ok := o.AccountBySecretHash(hash)
		if !ok || !acc.Active() {
			return ErrUnauthenticated
		}
		caller = Caller{OrganizationID: orgID, AccountID: acc.ID, AccessKeyID: acc.AccessKeyID, Primary: acc.Primary,
			Permissions: map[domain.Permission]bool{}, SourceIP: sourceIP, RequestID: requestID}
		for _, p := range o.Permissions(acc.ID) {
			caller.Permissions[p] = true
		}
		return nil
	})
	return caller, err
}
