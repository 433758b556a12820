package credindex

import (
	"sort"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// The index also keeps, for usage records, what each credential could call and
// when: a record is attributed as the log stood at the call's time, not now (a key
// deleted since still bills its past calls; a call made before a key existed or
// after an account left a workspace is refused).

// flips is a state that changes over time: the times it turned on and off, in
// order. The zero value is "off since always".
type flips []flip

type flip struct {
	at time.Time
	on bool
}

// set records a change at t; changes arrive in log order.
func (f *flips) set(t time.Time, on bool) { *f = append(*f, flip{t, on}) }

// endAt turns the state off at t, dropping a change planned after t (the end of a
// grace period that a later event brought forward).
func (f *flips) endAt(t time.Time) {
	for len(*f) > 0 && (*f)[len(*f)-1].at.After(t) {
		*f = (*f)[:len(*f)-1]
	}
	f.set(t, false)
}

// at says whether the state was on at t: the last change at or before t.
func (f flips) at(t time.Time) bool {
	i := sort.Search(len(f), func(i int) bool { return f[i].at.After(t) })
	return i > 0 && f[i-1].on
}

type accessKeyLife struct {
	accountID, orgID string
	alive, enabled   flips
}

type accountLife struct {
	orgID   string
	primary bool
	enabled flips
}

// history is what the index remembers over time of access keys, accounts and
// memberships (an API key's life, created then deleted for good, is kept in its
// entry). Guarded by Index.mu.
type history struct {
	accessKeys map[string]*accessKeyLife // access key id →
	accounts   map[string]*accountLife   // account id →
	previous   map[string]string         // account id → the access key in its grace period
	members    map[[2]string]flips       // (workspace, account) → direct membership
	viaRoles   map[[2]string]flips       // (workspace, account) → authorized through a role
}

// roleGrantChanged records an authorization through roles turning on or off.
func (h history) roleGrantChanged(workspaceID, accountID string, on bool, at time.Time) {
	k := [2]string{workspaceID, accountID}
	f := h.viaRoles[k]
	f.set(at, on)
	h.viaRoles[k] = f
}

// authorizedAt says whether the account was authorized on the workspace at t,
// directly or through a role.
func (h history) authorizedAt(workspaceID, accountID string, t time.Time) bool {
	k := [2]string{workspaceID, accountID}
	return h.members[k].at(t) || h.viaRoles[k].at(t)
}

func newHistory() history {
	return history{accessKeys: map[string]*accessKeyLife{}, accounts: map[string]*accountLife{}, previous: map[string]string{},
		members: map[[2]string]flips{}, viaRoles: map[[2]string]flips{}}
}

func (h history) apply(r eventstore.Record) {
	switch e := r.Event.(type) {
	case domain.OrganizationCreated:
		a := &accountLife{orgID: e.OrganizationID, primary: true}
		a.enabled.set(e.At, true)
		h.accounts[e.PrimaryAccountID] = a
	case domain.AccountCreated:
		a := &accountLife{orgID: r.Aggregate}
		a.enabled.set(e.At, true)
		h.accounts[e.AccountID] = a
	case domain.AccountDisabled:
		if a := h.accounts[e.AccountID]; a != nil {
			a.enabled.set(e.At, false)
		}
	case domain.AccountEnabled:
		if a := h.accounts[e.AccountID]; a != nil {
			a.enabled.set(e.At, true)
		}
	case domain.AccessKeyCreated:
		ak := &accessKeyLife{accountID: e.AccountID, orgID: r.Aggregate}
		ak.alive.set(e.At, true)
		ak.enabled.set(e.At, true)
		h.accessKeys[e.AccessKeyID] = ak
	case domain.AccessKeyDisabled:
		h.eachKeyOf(e.AccountID, e.AccessKeyID, func(ak *accessKeyLife) { ak.enabled.set(e.At, false) })
	case domain.AccessKeyEnabled:
		h.eachKeyOf(e.AccountID, e.AccessKeyID, func(ak *accessKeyLife) { ak.enabled.set(e.At, true) })
	case domain.AccessKeyDeleted:
		h.eachKeyOf(e.AccountID, e.AccessKeyID, func(ak *accessKeyLife) { ak.alive.endAt(e.At) })
		delete(h.previous, e.AccountID)
	case domain.AccessKeyRotated:
		if prev := h.accessKeys[h.previous[e.AccountID]]; prev != nil {
			prev.alive.endAt(e.At)
		}
		delete(h.previous, e.AccountID)
		enabled := true
		if old := h.accessKeys[e.PreviousAccessKeyID]; old != nil {
			enabled = old.enabled.at(e.At)
			end := e.PreviousUntil
			if end.Before(e.At) {
				end = e.At
			}
			old.alive.endAt(end)
			if e.HasGrace() {
				h.previous[e.AccountID] = e.PreviousAccessKeyID
			}
		}
		ak := &accessKeyLife{accountID: e.AccountID, orgID: r.Aggregate}
		ak.alive.set(e.At, true)
		ak.enabled.set(e.At, enabled)
		h.accessKeys[e.AccessKeyID] = ak
	case domain.MemberAuthorized:
		m := h.members[[2]string{r.Aggregate, e.AccountID}]
		m.set(e.At, true)
		h.members[[2]string{r.Aggregate, e.AccountID}] = m
	case domain.MemberRevoked:
		m := h.members[[2]string{r.Aggregate, e.AccountID}]
		m.set(e.At, false)
		h.members[[2]string{r.Aggregate, e.AccountID}] = m
	}
}

// eachKeyOf runs change on an account's access key and on the previous one a
// rotation left in its grace period.
func (h history) eachKeyOf(accountID, accessKeyID string, change func(*accessKeyLife)) {
	if ak := h.accessKeys[accessKeyID]; ak != nil {
		change(ak)
	}
	if prev := h.accessKeys[h.previous[accountID]]; prev != nil && h.previous[accountID] != accessKeyID {
		change(prev)
	}
}

// Attribution is whom a call is billed to.
type Attribution struct {
	OrganizationID string
	BillingKind    string // "workspace" or "account"
	BillingID      string
	AccountID      string // the account of an access key
}

// Reasons a usage record is not attributed; stable, on the wire.
const (
	UsageUnknownCredential        = "unknown_credential"
	UsageCredentialNotActive      = "credential_not_active"
	UsageWorkspaceMismatch        = "workspace_mismatch"
	UsageProductMismatch          = "product_mismatch"
	UsageNotAuthorizedOnWorkspace = "not_authorized_on_workspace"
)

// AttributeAt says whom a call made at t with a credential id on a workspace and
// product is billed to, as the log stood at t, or why it could not have been made.
func (x *Index) AttributeAt(credentialID, workspaceID string, product domain.BusinessType, t time.Time) (Attribution, string) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if k := x.keysByID[credentialID]; k != nil { // an API key's life is two times of its entry
		switch {
		case !k.aliveAt(t):
			return Attribution{}, UsageCredentialNotActive
		case k.workspaceID != workspaceID:
			return Attribution{}, UsageWorkspaceMismatch
		case k.product.businessType() != product:
			return Attribution{}, UsageProductMismatch
		}
		return Attribution{OrganizationID: x.workspaces[workspaceID], BillingKind: "workspace", BillingID: workspaceID}, ""
	}
	ak := x.history.accessKeys[credentialID]
	if ak == nil {
		return Attribution{}, UsageUnknownCredential
	}
	acc := x.history.accounts[ak.accountID]
	switch {
	case !ak.alive.at(t) || !ak.enabled.at(t) || acc == nil || !acc.enabled.at(t):
		return Attribution{}, UsageCredentialNotActive
	case x.workspaces[workspaceID] != ak.orgID:
		return Attribution{}, UsageNotAuthorizedOnWorkspace
	case !acc.primary && !x.history.authorizedAt(workspaceID, ak.accountID, t):
		return Attribution{}, UsageNotAuthorizedOnWorkspace
	}
	return Attribution{OrganizationID: ak.orgID, BillingKind: "account", BillingID: ak.accountID, AccountID: ak.accountID}, ""
}
