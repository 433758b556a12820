package domain

import (
	"fmt"
	"time"
)

// MaxRotationGrace is the longest an access key replaced by a rotation keeps
// working beside the new one.
const MaxRotationGrace = 24 * time.Hour

// CreateAccessKey gives an account its one access key.
func (o *Organization) CreateAccessKey(accountID, accessKeyID, secretHash string, at time.Time) ([]Event, error) {
	a, ok := o.accounts[accountID]
	if !ok {
		return nil, ErrAccountNotFound
	}
	if a.AccessKeyID != "" {
		return nil, ErrAccessKeyExists
	}
	return []Event{AccessKeyCreated{AccountID: accountID, AccessKeyID: accessKeyID, SecretHash: secretHash, At: at}}, nil
}

// SetAccessKeyDisabled disables or enables an account's access key; no change, no
// event.
func (o *Organization) SetAccessKeyDisabled(accountID string, disabled bool, at time.Time) ([]Event, error) {
	a, err := o.withAccessKey(accountID)
	if err != nil {
		return nil, err
	}
	switch {
	case a.AccessKeyDisabled == disabled:
		return nil, nil
	case disabled:
		return []Event{AccessKeyDisabled{AccountID: accountID, AccessKeyID: a.AccessKeyID, At: at}}, nil
	default:
		return []Event{AccessKeyEnabled{AccountID: accountID, AccessKeyID: a.AccessKeyID, At: at}}, nil
	}
}

// DeleteAccessKey deletes an account's access key; the account may get a new one.
func (o *Organization) DeleteAccessKey(accountID string, at time.Time) ([]Event, error) {
	a, err := o.withAccessKey(accountID)
	if err != nil {
		return nil, err
	}
	return []Event{AccessKeyDeleted{AccountID: accountID, AccessKeyID: a.AccessKeyID, At: at}}, nil
}

func (o *Organization) withAccessKey(accountID string) (*Account, error) {
	a, ok := o.accounts[accountID]
	if !ok {
		return nil, ErrAccountNotFound
	}
	if a.Primary {
		return nil, ErrPrimaryAccount
	}
	if a.AccessKeyID == "" {
		return nil, ErrAccessKeyNotFound
	}
	return a, nil
}

// RotateAccessKey replaces an account's access key, the primary account's
// included, by a new one (whose secret the caller generated and hashed). The old
// secret stops at once (grace 0) or at the end of the grace period, at most
// MaxRotationGrace, during which both work; an older secret still in its grace
// ends at once. The account keeps one set of AK: the new key inherits its status.
func (o *Organization) RotateAccessKey(accountID, accessKeyID, secretHash string, grace time.Duration, at time.Time) ([]Event, error) {
	if grace < 0 || grace > MaxRotationGrace {
		return nil, invalid("grace_seconds", "out_of_range", fmt.Sprintf("from 0 to %d seconds", int(MaxRotationGrace.Seconds())))
	}
	a, ok := o.accounts[accountID]
	if !ok {
		return nil, ErrAccountNotFound
	}
	if a.AccessKeyID == "" {
		return nil, ErrAccessKeyNotFound
	}
	return []Event{AccessKeyRotated{AccountID: accountID, PreviousAccessKeyID: a.AccessKeyID, AccessKeyID: accessKeyID,
		SecretHash: secretHash, PreviousUntil: at.Add(grace), At: at}}, nil
}

// rotate applies a rotation to the account.
func (o *Organization) rotate(a *Account, e AccessKeyRotated) {
	if a.PreviousSecretHash != "" { // a second rotation ends the first old secret at once
		delete(o.bySecret, a.PreviousSecretHash)
	}
	a.PreviousAccessKeyID, a.PreviousSecretHash, a.PreviousUntil = "", "", time.Time{}
	if e.HasGrace() {
		a.PreviousAccessKeyID, a.PreviousSecretHash, a.PreviousUntil = a.AccessKeyID, a.SecretHash, e.PreviousUntil
	} else {
		delete(o.bySecret, a.SecretHash)
	}
	a.AccessKeyID, a.SecretHash, a.AccessKeyCreatedAt = e.AccessKeyID, e.SecretHash, e.At
	a.AccessKeyCreatedBy, a.AccessKeyUpdatedBy = o.by, o.by
	o.bySecret[e.SecretHash] = a.ID
}
