package domain

import "time"

// Account is the write-side state of one account; a copy is handed out. An account
// without an access key has an empty AccessKeyID.
type Account struct {
	ID                 string
	Name               string
	Primary            bool
	Disabled           bool
	AccessKeyID        string
	SecretHash         string
	AccessKeyDisabled  bool
	AccessKeyCreatedAt time.Time
	CreatedAt          time.Time
	// Version is the position of the last event that changed the account, its
	// access key or the roles that include it.
	Version uint64
	// CreatedBy and UpdatedBy are the actors of the account's creation and of the
	// last change of its status; AccessKeyCreatedBy and AccessKeyUpdatedBy those
	// of its access key.
	CreatedBy, UpdatedBy                   string
	AccessKeyCreatedBy, AccessKeyUpdatedBy string
	// PreviousAccessKeyID and PreviousSecretHash are the access key a rotation
	// replaced, which keeps working until PreviousUntil (its grace period); empty
	// when there is none. It is the same set of AK: disabling the account's key
	// disables both, and it never comes back once its grace ends.
	PreviousAccessKeyID, PreviousSecretHash string
	PreviousUntil                           time.Time
}

// Active reports whether the account's access key may authenticate now.
func (a Account) Active() bool { return !a.Disabled && a.AccessKeyID != "" && !a.AccessKeyDisabled }

// SecretActive reports whether the secret with this HMAC may authenticate at now:
// the account and its key are active, and the secret is the current one, or the
// previous one within its grace period (whose end is its deletion).
func (a Account) SecretActive(hash string, now time.Time) bool {
	return a.Active() && (hash == a.SecretHash || hash == a.PreviousSecretHash && a.PreviousActiveAt(now))
}

// PreviousActiveAt reports whether a key a rotation replaced still worked at t.
func (a Account) PreviousActiveAt(t time.Time) bool {
	return a.PreviousAccessKeyID != "" && t.Before(a.PreviousUntil)
}

// KeyIDOf is the id of the account's access key whose secret has this HMAC.
func (a Account) KeyIDOf(hash string) string {
	if a.IsPrevious(hash) {
		return a.PreviousAccessKeyID
	}
	return a.AccessKeyID
}

// IsPrevious says whether hash is the account's secret rotated out, in its grace.
func (a Account) IsPrevious(hash string) bool {
	return a.PreviousSecretHash != "" && hash == a.PreviousSecretHash
}

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

// AccountByAccessKeyID finds the account holding an access key, the current one or
// the previous one of a rotation (a scan: for audit questions, not for a request's
// path).
func (o *Organization) AccountByAccessKeyID(id string) (Account, bool) {
	for _, a := range o.accounts {
		if id != "" && (a.AccessKeyID == id || a.PreviousAccessKeyID == id) {
			return *a, true
		}
	}
	return Account{}, false
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

// CreateAccount decides a new sub-account with a unique name: two names that differ
// only by case or by Unicode normalization are the same name.
func (o *Organization) CreateAccount(id, name string, at time.Time) ([]Event, error) {
	if !o.Exists() {
		return nil, ErrOrganizationNotFound
	}
	n, err := ParseName("name", name)
	if err != nil {
		return nil, err
	}
	if _, taken := o.accountNames[NameKey(n)]; taken {
		return nil, ErrAccountNameTaken
	}
	return []Event{AccountCreated{AccountID: id, Name: n, At: at}}, nil
}

// SetAccountDisabled disables or enables a sub-account; no change, no event.
func (o *Organization) SetAccountDisabled(id string, disabled bool, at time.Time) ([]Event, error) {
	a, ok := o.accounts[id]
	if !ok {
		return nil, ErrAccountNotFound
	}
	if a.Primary {
		return nil, ErrPrimaryAccount
	}
	switch {
	case a.Disabled == disabled:
		return nil, nil
	case disabled:
		return []Event{AccountDisabled{AccountID: id, At: at}}, nil
	default:
		return []Event{AccountEnabled{AccountID: id, At: at}}, nil
	}
}

// changeAccount applies a change to an account, if it exists, and versions it.
func (o *Organization) changeAccount(id string, change func(*Account)) {
	if a := o.accounts[id]; a != nil {
		change(a)
		a.Version = o.at
	}
}

// addAccount indexes the account's name; when an old log holds two names that
// differ only by case, the later account holds the index entry and the name stays
// taken either way (accounts are never renamed nor deleted).
func (o *Organization) addAccount(a *Account) {
	o.accounts[a.ID] = a
	o.accountNames[NameKey(a.Name)] = a.ID
}
