package commands

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// Actor is an account that did something: its id (ce-actor) and its name (""
// for the system, as "system:bootstrap").
type Actor struct{ ID, Name string }

// actorOf names an account of the organization.
func actorOf(o *domain.Organization, id string) Actor {
	acc, _ := o.Account(id)
	return Actor{ID: id, Name: acc.Name}
}

// nameActors fills the names of the accounts that created and last changed keys,
// from the organization. Account names never change, so the cached organization
// answers unless it predates one of the accounts.
func (a *App) nameActors(ctx context.Context, orgID string, keys []APIKeyResult) error {
	fill := func(o *domain.Organization) bool {
		known := true
		for i := range keys {
			for _, ref := range []*Actor{&keys[i].CreatedBy, &keys[i].UpdatedBy} {
				if acc, ok := o.Account(ref.ID); ok {
					ref.Name = acc.Name
				} else if domain.IsAccountID(ref.ID) {
					known = false
				}
			}
		}
		return known
	}
	var known bool
	if err := a.orgs.peek(ctx, orgID, func(o *domain.Organization) error { known = fill(o); return nil }); err != nil || known {
		return err
	}
	return a.orgs.read(ctx, orgID, func(o *domain.Organization, _ uint64) error { fill(o); return nil })
}
