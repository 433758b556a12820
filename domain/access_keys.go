package domain

import "time"

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
