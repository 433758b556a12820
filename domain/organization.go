package domain

import (
	"maps"
	"slices"
	"time"
)

// Organization is the consistency boundary for accounts (the primary account and its
// sub-accounts) and their access keys. Its methods decide; Apply evolves. Not safe
// for concurrent use.
type Organization struct {
	id           string
	name         string
	primaryID    string
	accounts     map[string]*Account
	accountNames map[string]string
	bySecret     map[string]string // access key secret hash → account id
}

// Account is the write-side state of one account; a copy is handed out.
type Account struct {
	ID          string
	Name        string
	Primary     bool
	AccessKeyID string
	SecretHash  string
	CreatedAt   time.Time
}

// NewEmptyOrganization is the state before the first event of organization id.
func NewEmptyOrganization(id string) *Organization {
	return &Organization{id: id, accounts: map[string]*Account{}, accountNames: map[string]string{}, bySecret: map[string]string{}}
}

// ID is the organization id.
func (o *Organization) ID() string { return o.id }

// Exists reports whether the organization was created.
func (o *Organization) Exists() bool { return o.primaryID != "" }

// PrimaryAccountID is the primary account.
func (o *Organization) PrimaryAccountID() string { return o.primaryID }

// HasAccount reports whether id is an account of this organization.
func (o *Organization) HasAccount(id string) bool { _, ok := o.accounts[id]; return ok }

// Account returns a copy of one account.
func (o *Organization) Account(id string) (Account, bool) {
	a, ok := o.accounts[id]
	if !ok {
		return Account{}, false
	}
	return *a, true
}

// Create decides a new organization with its primary account and that account's
// access key (whose secret the caller generated and hashed).
func (o *Organization) Create(name, primaryAccountID, primaryName, accessKeyID, secretHash string, at time.Time) ([]Event, error) {
	if o.Exists() {
		return nil, ErrOrganizationExists
	}
	var verr ValidationError
	n, err := ParseName("name", name)
	verr.Merge("", err)
	pn, err := ParseName("primary_account_name", primaryName)
	verr.Merge("", err)
	if err := verr.Err(); err != nil {
		return nil, err
	}
	return []Event{
		OrganizationCreated{OrganizationID: o.id, Name: n, PrimaryAccountID: primaryAccountID, PrimaryAccountName: pn, At: at},
		AccessKeyCreated{AccountID: primaryAccountID, AccessKeyID: accessKeyID, SecretHash: secretHash, At: at},
	}, nil
}

// CreateAccount decides a new sub-account with a unique name.
func (o *Organization) CreateAccount(id, name string, at time.Time) ([]Event, error) {
	if !o.Exists() {
		return nil, ErrOrganizationNotFound
	}
	n, err := ParseName("name", name)
	if err != nil {
		return nil, err
	}
	if _, taken := o.accountNames[n]; taken {
		return nil, ErrAccountNameTaken
	}
	return []Event{AccountCreated{AccountID: id, Name: n, At: at}}, nil
}

// Apply evolves the state by events; it never fails.
func (o *Organization) Apply(events ...Event) {
	for _, e := range events {
		o.apply(e)
	}
}

func (o *Organization) apply(e Event) {
	switch e := e.(type) {
	case OrganizationCreated:
		o.name, o.primaryID = e.Name, e.PrimaryAccountID
		o.addAccount(&Account{ID: e.PrimaryAccountID, Name: e.PrimaryAccountName, Primary: true, CreatedAt: e.At})
	case AccountCreated:
		o.addAccount(&Account{ID: e.AccountID, Name: e.Name, CreatedAt: e.At})
	case AccessKeyCreated:
		if a := o.accounts[e.AccountID]; a != nil {
			a.AccessKeyID, a.SecretHash = e.AccessKeyID, e.SecretHash
			o.bySecret[e.SecretHash] = a.ID
		}
	}
}

func (o *Organization) addAccount(a *Account) {
	o.accounts[a.ID] = a
	o.accountNames[a.Name] = a.ID
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// AccountBySecretHash finds the account whose access key secret has this HMAC. The
// map lookup is on an HMAC, so its timing reveals nothing of the secret.
func (o *Organization) AccountBySecretHash(hash string) (Account, bool) {
	id, ok := o.bySecret[hash]
	if !ok {
		return Account{}, false
	}
	return o.Account(id)
}
