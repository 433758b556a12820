package commands

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// CreateAccount adds a sub-account to the caller's organization.
type CreateAccount struct {
	Caller      Caller
	Idempotency Idempotency
	Name        string
}

// AccountResult is the account as the write left it.
type AccountResult struct {
	AccountID      string
	OrganizationID string
	Name           string
	Primary        bool
	Status         string
	AccessKey      *AccessKeyResult
	// Permissions are the account's effective permission items, sorted.
	Permissions []string
	CreatedAt   time.Time
	// CreatedBy and UpdatedBy are the accounts that created it and changed its
	// status last.
	CreatedBy, UpdatedBy Actor
	// ETag is the account's entity tag; Version the log position of the write.
	ETag    string
	Version uint64
	// Replayed is set when this answers a retry with an earlier request's result.
	Replayed bool
}

// AccessKeyResult is an account's access key without its secret.
type AccessKeyResult struct {
	AccessKeyID string
	AccountID   string
	Status      string
	CreatedAt   time.Time
	// CreatedBy and UpdatedBy are the accounts that created it and changed it last.
	CreatedBy, UpdatedBy Actor
	// PreviousAccessKeyID is the key a rotation replaced, working until
	// PreviousUntil; empty once its grace period has ended (or when there was none).
	PreviousAccessKeyID string
	PreviousUntil       time.Time
}

// CreateAccount handles the command.
func (a *App) CreateAccount(ctx context.Context, cmd CreateAccount) (AccountResult, error) {
	r, replayed, err := idempotent(ctx, a, cmd.Caller, cmd.Idempotency, idempotentCommand[AccountResult]{
		authorize: func() error { return cmd.Caller.can(domain.PermOrganizationAdmin) },
		run:       func(id identity) (AccountResult, error) { return a.createAccount(ctx, cmd, id) },
		find: func(id identity) (AccountResult, bool, error) {
			var out AccountResult
			acct := domain.AccountIDOf(id.ulid("account", 0))
			err := a.orgs.read(ctx, cmd.Caller.OrganizationID, func(o *domain.Organization, version uint64) error {
				if o.HasAccount(acct) {
					out = a.accountResult(o, acct)
					out.Version = version
				}
				return nil
			})
			return out, out.AccountID != "", err
		},
	})
	r.Replayed = replayed
	return r, err
}

func (a *App) createAccount(ctx context.Context, cmd CreateAccount, name identity) (AccountResult, error) {
	id := domain.AccountIDOf(name.ulid("account", 0))
	at := a.now()
	meta := cmd.Caller.metadata("")
	meta.EventID = name.eventIDs()
	return a.changeAccountWith(ctx, meta, id, func(o *domain.Organization) ([]domain.Event, error) {
		if o.HasAccount(id) && name.set {
			return nil, errAlreadyApplied
		}
		return o.CreateAccount(id, cmd.Name, at)
	})
}
