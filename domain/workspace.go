package domain

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Workspace is the consistency boundary for a workspace's name, its authorized
// members and its API keys. Its methods decide and return events without changing
// anything; Apply evolves it. Not safe for concurrent use.
type Workspace struct {
	id          string
	orgID       string
	name        string
	description string
	createdAt   time.Time
	updatedAt   time.Time
	// version is the position of the last event that changed the workspace's own
	// fields; membersVersion that of the member set; at the one being applied.
	version, membersVersion, at uint64
	by                          string               // the actor of the event being applied
	members                     map[string]time.Time // account id → authorized at
	keys                        map[string]*APIKey
	searchNames                 map[string]int // live Search keys by NameKey of their name (a log from before the rule may hold two)
	searchSeq                   int            // Search keys ever created, for default names
}

// APIKey is the write-side state of one key; a copy is handed out.
type APIKey struct {
	ID           string
	BusinessType BusinessType
	Name         string
	Allowlist    []string
	Note         string
	QPSLimit     QPS
	SecretHash   string
	Masked       string
	Sealed       []byte
	BatchID      string
	Deleted      bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// LastRevealedAt is zero until the plaintext is first revealed.
	LastRevealedAt time.Time
	// Version is the position of the last event that changed the key (a reveal is
	// not a change of the key).
	Version uint64
	// CreatedBy and UpdatedBy are the accounts (ce-actor) of its creation and of
	// its last change.
	CreatedBy, UpdatedBy string
}

// NewAPIKey is a validated request for one key: the secret is already generated,
// hashed and sealed by the caller. An empty Name on a Search key gets a default.
type NewAPIKey struct {
	ID           string
	BusinessType BusinessType
	Name         string
	Allowlist    Allowlist
	Note         string
	QPSLimit     QPS
	SecretHash   string
	Masked       string
	Sealed       []byte
}

// APIKeyPatch is a validated edit; nil fields are left unchanged, and an empty
// Name is none (what a MaaS key has).
type APIKeyPatch struct {
	Name      *string
	Allowlist *Allowlist
	Note      *string
	QPSLimit  *QPS
}

// NewEmptyWorkspace is the state before the first event of workspace id.
func NewEmptyWorkspace(id string) *Workspace {
	return &Workspace{id: id, members: map[string]time.Time{}, keys: map[string]*APIKey{}, searchNames: map[string]int{}}
}

// ID, OrganizationID, Name, Description and Exists read the state.
func (w *Workspace) ID() string { return w.id }

// OrganizationID is the owning organization.
func (w *Workspace) OrganizationID() string { return w.orgID }

// Name is the display name.
func (w *Workspace) Name() string { return w.name }

// Description is the free-text description.
func (w *Workspace) Description() string { return w.description }

// CreatedAt is when the workspace was created.
func (w *Workspace) CreatedAt() time.Time { return w.createdAt }

// Members lists the authorized accounts in id order.
func (w *Workspace) Members() []string { return sortedKeys(w.members) }

// AuthorizedAt is when an account became a member (zero when it is not one).
func (w *Workspace) AuthorizedAt(accountID string) time.Time { return w.members[accountID] }

// UpdatedAt is when the workspace's name or description last changed.
func (w *Workspace) UpdatedAt() time.Time { return w.updatedAt }

// Version is the log position of the last change of the workspace's own fields.
func (w *Workspace) Version() uint64 { return w.version }

// MembersVersion is the log position of the last change of the member set.
func (w *Workspace) MembersVersion() uint64 { return w.membersVersion }

// Exists reports whether the workspace was created.
func (w *Workspace) Exists() bool { return w.orgID != "" }

// IsMember reports whether an account is authorized on the workspace.
func (w *Workspace) IsMember(accountID string) bool {
	_, ok := w.members[accountID]
	return ok
}

// Key returns a copy of one key, deleted or not.
func (w *Workspace) Key(id string) (APIKey, bool) {
	k, ok := w.keys[id]
	if !ok {
		return APIKey{}, false
	}
	return *k, true
}

// Create decides the creation of the workspace.
func (w *Workspace) Create(orgID, name, description string, at time.Time) ([]Event, error) {
	if w.Exists() {
		return nil, ErrWorkspaceExists
	}
	var verr ValidationError
	n, err := ParseName("name", name)
	if err != nil {
		verr.Merge("", err)
	}
	d, err := ParseText("description", description, MaxDescriptionLen)
	if err != nil {
		verr.Merge("", err)
	}
	if err := verr.Err(); err != nil {
		return nil, err
	}
	return []Event{WorkspaceCreated{WorkspaceID: w.id, OrganizationID: orgID, Name: n, Description: d, At: at}}, nil
}

// Update renames the workspace and/or changes its description; nil leaves a field
// as it is, and an edit that changes nothing decides no event.
func (w *Workspace) Update(name, description *string, at time.Time) ([]Event, error) {
	if !w.Exists() {
		return nil, ErrWorkspaceNotFound
	}
	var verr ValidationError
	e := WorkspaceUpdated{Name: w.name, Description: w.description, At: at}
	if name != nil {
		n, err := ParseName("name", *name)
		e.Name = n
		verr.Merge("", err)
	}
	if description != nil {
		d, err := ParseText("description", *description, MaxDescriptionLen)
		e.Description = d
		verr.Merge("", err)
	}
	if err := verr.Err(); err != nil {
		return nil, err
	}
	if e.Name == w.name && e.Description == w.description {
		return nil, nil
	}
	return []Event{e}, nil
}

// SetMembers replaces the member set ("Save"): only the difference becomes events,
// revocations first. isAccount tells whether an id is an account of the workspace's
// organization.
func (w *Workspace) SetMembers(accountIDs []string, isAccount func(string) bool, at time.Time) ([]Event, error) {
	if !w.Exists() {
		return nil, ErrWorkspaceNotFound
	}
	var verr ValidationError
	want := make(map[string]bool, len(accountIDs))
	for i, id := range accountIDs {
		field := "account_ids[" + strconv.Itoa(i) + "]"
		switch {
		case want[id]:
			verr.Add(field, "duplicate_entry", fmt.Sprintf("%s is listed twice", quoteInput(id)))
		case !isAccount(id):
			verr.Add(field, "unknown_account", fmt.Sprintf("%s is not an account of this organization", quoteInput(id)))
		}
		want[id] = true
	}
	if err := verr.Err(); err != nil {
		return nil, err
	}
	var events []Event
	for _, id := range sortedKeys(w.members) {
		if !want[id] {
			events = append(events, MemberRevoked{AccountID: id, At: at})
		}
	}
	for _, id := range accountIDs {
		if !w.IsMember(id) {
			events = append(events, MemberAuthorized{AccountID: id, At: at})
		}
	}
	return events, nil
}

// SetMember authorizes one account on the workspace or revokes it; no change, no
// event. The caller checked that the account is of the workspace's organization.
func (w *Workspace) SetMember(accountID string, member bool, at time.Time) ([]Event, error) {
	if !w.Exists() {
		return nil, ErrWorkspaceNotFound
	}
	switch {
	case member == w.IsMember(accountID):
		return nil, nil
	case member:
		return []Event{MemberAuthorized{AccountID: accountID, At: at}}, nil
	default:
		return []Event{MemberRevoked{AccountID: accountID, At: at}}, nil
	}
}

// CreateAPIKeys decides the creation of one or more keys (a Search batch is all or
// nothing: one name clash refuses every key). batchID is empty for a single key.
func (w *Workspace) CreateAPIKeys(keys []NewAPIKey, batchID string, at time.Time) ([]Event, error) {
	if !w.Exists() {
		return nil, ErrWorkspaceNotFound
	}
	taken := make(map[string]bool) // by NameKey
	seq := w.searchSeq
	events := make([]Event, 0, len(keys))
	for _, k := range keys {
		name := k.Name
		if k.BusinessType == BusinessSearch {
			seq++
			if name == "" {
				name = w.defaultSearchName(seq, taken)
			}
			key := NameKey(name)
			if w.searchNames[key] > 0 || taken[key] {
				return nil, &NameTakenError{Kind: ErrKeyNameTaken, Name: name}
			}
			taken[key] = true
		} else {
			name = ""
		}
		events = append(events, APIKeyCreated{
			KeyID: k.ID, BusinessType: k.BusinessType, Name: name, Allowlist: k.Allowlist.Entries(),
			Note: k.Note, QPSLimit: k.QPSLimit, SecretHash: k.SecretHash, Masked: k.Masked,
			Sealed: k.Sealed, BatchID: batchID, At: at,
		})
	}
	return events, nil
}

func (w *Workspace) defaultSearchName(seq int, taken map[string]bool) string {
	for ; ; seq++ {
		name := "search-key-" + strconv.Itoa(seq) // lower-case ASCII: its own NameKey
		if w.searchNames[name] == 0 && !taken[name] {
			return name
		}
	}
}

// releaseName is a live Search key's name no longer taken by it.
func (w *Workspace) releaseName(name string) {
	key := NameKey(name)
	if w.searchNames[key]--; w.searchNames[key] <= 0 {
		delete(w.searchNames, key)
	}
}

// UpdateAPIKey edits a live key. Name and QPS apply to Search keys only; an edit
// that changes nothing decides no event.
func (w *Workspace) UpdateAPIKey(id string, p APIKeyPatch, at time.Time) ([]Event, error) {
	k, err := w.liveKey(id)
	if err != nil {
		return nil, err
	}
	var verr ValidationError
	if k.BusinessType != BusinessSearch {
		if p.Name != nil && *p.Name != "" { // no name is what a MaaS key has (shown as null)
			verr.Add("name", "not_applicable", "only Search keys have a name")
		}
		if p.QPSLimit != nil && *p.QPSLimit != 0 { // unlimited is what a MaaS key is (shown as null)
			verr.Add("qps_limit", "not_applicable", "only Search keys have a QPS limit")
		}
	} else if p.Name != nil && *p.Name == "" {
		verr.Add("name", "required", "a Search key must have a name")
	}
	if err := verr.Err(); err != nil {
		return nil, err
	}
	e := APIKeyUpdated{KeyID: id, Name: k.Name, Allowlist: k.Allowlist, Note: k.Note, QPSLimit: k.QPSLimit, At: at}
	if p.Name != nil && *p.Name != k.Name {
		// Its own name in another case takes nothing another key has.
		if key := NameKey(*p.Name); key != NameKey(k.Name) && w.searchNames[key] > 0 {
			return nil, &NameTakenError{Kind: ErrKeyNameTaken, Name: *p.Name}
		}
		e.Name = *p.Name
	}
	if p.Allowlist != nil {
		e.Allowlist = p.Allowlist.Entries()
	}
	if p.Note != nil {
		e.Note = *p.Note
	}
	if p.QPSLimit != nil {
		e.QPSLimit = *p.QPSLimit
	}
	if e.Name == k.Name && e.Note == k.Note && e.QPSLimit == k.QPSLimit && slices.Equal(e.Allowlist, k.Allowlist) {
		return nil, nil
	}
	return []Event{e}, nil
}

// DeleteAPIKey deletes a live key for good.
func (w *Workspace) DeleteAPIKey(id string, at time.Time) ([]Event, error) {
	if _, err := w.liveKey(id); err != nil {
		return nil, err
	}
	return []Event{APIKeyDeleted{KeyID: id, At: at}}, nil
}

// RevealAPIKey decides the audit event of a reveal; the caller opens the sealed
// plaintext only after that event is in the log.
func (w *Workspace) RevealAPIKey(id string, at time.Time) ([]Event, error) {
	if _, err := w.liveKey(id); err != nil {
		return nil, err
	}
	return []Event{APIKeyRevealed{KeyID: id, At: at}}, nil
}

// ExportAPIKeys decides the audit record of an export of the key list: which
// filter and which columns (the export itself reads the views).
func (w *Workspace) ExportAPIKeys(businessType, batchID string, fields []string, at time.Time) ([]Event, error) {
	if !w.Exists() {
		return nil, ErrWorkspaceNotFound
	}
	return []Event{APIKeysExported{BusinessType: businessType, BatchID: batchID, Fields: fields, At: at}}, nil
}

func (w *Workspace) liveKey(id string) (*APIKey, error) {
	if !w.Exists() {
		return nil, ErrWorkspaceNotFound
	}
	k, ok := w.keys[id]
	if !ok {
		return nil, ErrAPIKeyNotFound
	}
	if k.Deleted {
		return nil, ErrAPIKeyDeleted
	}
	return k, nil
}

// Apply evolves the state by events whose positions are not known (tests). It
// never fails: events are facts.
func (w *Workspace) Apply(events ...Event) {
	for _, e := range events {
		w.apply(e)
	}
}

// ApplyBy evolves the state by an event read from the log or just appended at a
// position, which becomes the version of what it changes, by an actor (ce-actor),
// who becomes the creator or last editor of what it changes.
func (w *Workspace) ApplyBy(position uint64, actor string, e Event) {
	w.at, w.by = position, actor
	w.apply(e)
}

func (w *Workspace) apply(e Event) {
	switch e := e.(type) {
	case WorkspaceCreated:
		w.orgID, w.name, w.description, w.createdAt, w.updatedAt = e.OrganizationID, e.Name, e.Description, e.At, e.At
		w.version, w.membersVersion = w.at, w.at
	case WorkspaceUpdated:
		w.name, w.description, w.updatedAt, w.version = e.Name, e.Description, e.At, w.at
	case MemberAuthorized:
		w.members[e.AccountID], w.membersVersion = e.At, w.at
	case MemberRevoked:
		delete(w.members, e.AccountID)
		w.membersVersion = w.at
	case APIKeyCreated:
		w.keys[e.KeyID] = &APIKey{
			ID: e.KeyID, BusinessType: e.BusinessType, Name: e.Name, Allowlist: e.Allowlist, Note: e.Note,
			QPSLimit: e.QPSLimit, SecretHash: e.SecretHash, Masked: e.Masked, Sealed: e.Sealed, BatchID: e.BatchID,
			CreatedAt: e.At, UpdatedAt: e.At, Version: w.at, CreatedBy: w.by, UpdatedBy: w.by,
		}
		if e.BusinessType == BusinessSearch {
			w.searchNames[NameKey(e.Name)]++
			w.searchSeq++
		}
	case APIKeyUpdated:
		k := w.keys[e.KeyID]
		if k == nil {
			return
		}
		if k.BusinessType == BusinessSearch && k.Name != e.Name {
			w.releaseName(k.Name)
			w.searchNames[NameKey(e.Name)]++
		}
		k.Name, k.Allowlist, k.Note, k.QPSLimit, k.UpdatedAt, k.Version, k.UpdatedBy = e.Name, e.Allowlist, e.Note, e.QPSLimit, e.At, w.at, w.by
	case APIKeyDeleted:
		k := w.keys[e.KeyID]
		if k == nil {
			return
		}
		k.Deleted, k.Sealed, k.Version, k.UpdatedBy = true, nil, w.at, w.by
		if k.BusinessType == BusinessSearch {
			w.releaseName(k.Name)
		}
	case APIKeyRevealed:
		if k := w.keys[e.KeyID]; k != nil {
			k.LastRevealedAt = e.At
		}
	}
}
