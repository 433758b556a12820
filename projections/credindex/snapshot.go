package credindex

import (
	"bufio"
	"cmp"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
)

// A snapshot is the whole index at a log position: a starting instance restores it
// and applies only the log after it instead of the whole log. It holds what the
// events hold (credential HMACs, never a secret) and is derived data: losing it, or
// a corrupt or foreign one, costs only a full replay. Rate buckets start full, as
// after any restart, and last-use minutes not yet written are not in it.

// snapshotFormat versions the encoding; another format is ignored.
const snapshotFormat = 2

// errSnapshotFormat: a snapshot of another format (or none at all).
var errSnapshotFormat = errors.New("credential index snapshot: unknown format")

type snapFlip struct {
	At int64
	On bool
}

type snapAccessKey struct {
	ID, AccountID, OrgID string
	Hash                 [32]byte
	Disabled, Deleted    bool
	Until                int64 // UnixNano, 0: no end
}

type snapAccount struct {
	ID, OrgID         string
	Disabled, Primary bool
	Previous          string // the access key in its grace period
}

type snapRole struct {
	ID                string
	Users, Workspaces []string
}

type snapPair struct {
	WorkspaceID, AccountID string
	Flips                  []snapFlip // history only
}

type snapAccessKeyLife struct {
	ID, AccountID, OrgID string
	Alive, Enabled       []snapFlip
}

type snapAccountLife struct {
	ID, OrgID string
	Primary   bool
	Enabled   []snapFlip
}

// indexSnapshot is the encoded snapshot's head (gob); the API keys follow it in
// their own flat encoding (snapkeys.go), in chunks decoded in parallel.
type indexSnapshot struct {
	Format   int
	Position uint64
	// PositionID is the id of the event at Position: a log that grew as long but
	// has another event there is another log.
	PositionID string
	Keys       keysHead
	AccessKeys []snapAccessKey
	Accounts   []snapAccount
	Members    []snapPair
	Roles      []snapRole
	Workspaces [][2]string // workspace, organization
	// History.
	AccessKeyLives []snapAccessKeyLife
	AccountLives   []snapAccountLife
	MemberFlips    []snapPair
	RoleFlips      []snapPair
	Previous       [][2]string // account, access key

	keys   []*keyEntry // the copy's keys, written after the head
	allows []*allowed
}

// WriteSnapshot encodes the index as it stands and returns the log position it
// covers. While the index follows the log, its own follower copies the state
// between two batches (under the read lock, with no writer waiting, so
// verifications never wait); the copy is encoded outside. Every list is sorted: the
// same index always encodes the same.
func (x *Index) WriteSnapshot(ctx context.Context, w io.Writer) (uint64, error) {
	var s *indexSnapshot
	if x.running.Load() {
		reply := make(chan *indexSnapshot, 1)
		select {
		case x.snapshots <- reply:
			s = <-reply
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	} else {
		x.mu.RLock()
		s = x.snapshotLocked()
		x.mu.RUnlock()
	}
	return s.Position, s.encode(w)
}

// encode writes the head, then the keys.
func (s *indexSnapshot) encode(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	s.sort()
	chunks := s.prepareKeys()
	if err := gob.NewEncoder(bw).Encode(s); err != nil {
		return err
	}
	for _, c := range chunks {
		if err := writeChunk(bw, c); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// answerSnapshot copies the state for a waiting WriteSnapshot, if any; the
// follower calls it between batches.
func (x *Index) answerSnapshot() {
	select {
	case reply := <-x.snapshots:
		x.mu.RLock()
		reply <- x.snapshotLocked()
		x.mu.RUnlock()
	default:
	}
}

func (x *Index) snapshotLocked() *indexSnapshot {
	s := &indexSnapshot{Format: snapshotFormat, Position: x.position.Load(), PositionID: x.lastID}
	// A key's entry is replaced, never changed, when its key changes (its limiter
	// locks itself): the pointers are the copy. The allowlists keep the index's
	// order (append-only: the same log, the same order). Every list is sorted
	// outside the lock (sort), where no writer waits for it.
	s.keys = slices.AppendSeq(make([]*keyEntry, 0, len(x.keysByID)), maps.Values(x.keysByID))
	s.allows = slices.Clone(x.allowsList)
	for _, ak := range x.accessKeys {
		sa := snapAccessKey{ID: ak.id, AccountID: ak.accountID, OrgID: ak.orgID, Hash: ak.hash, Disabled: ak.disabled, Deleted: ak.deleted}
		if !ak.until.IsZero() {
			sa.Until = ak.until.UnixNano()
		}
		s.AccessKeys = append(s.AccessKeys, sa)
	}
	for id, a := range x.accounts {
		sa := snapAccount{ID: id, OrgID: a.orgID, Disabled: a.disabled, Primary: a.primary}
		if a.previous != nil {
			sa.Previous = a.previous.id
		}
		s.Accounts = append(s.Accounts, sa)
	}
	for ws, accounts := range x.members {
		for acc := range accounts {
			s.Members = append(s.Members, snapPair{WorkspaceID: ws, AccountID: acc})
		}
	}
	for id, r := range x.roles.roles {
		s.Roles = append(s.Roles, snapRole{ID: id, Users: slices.Collect(maps.Keys(r.users)), Workspaces: slices.Collect(maps.Keys(r.workspaces))})
	}
	for ws, org := range x.workspaces {
		s.Workspaces = append(s.Workspaces, [2]string{ws, org})
	}
	h := x.history
	for id, l := range h.accessKeys {
		s.AccessKeyLives = append(s.AccessKeyLives, snapAccessKeyLife{ID: id, AccountID: l.accountID, OrgID: l.orgID,
			Alive: snapFlips(l.alive), Enabled: snapFlips(l.enabled)})
	}
	for id, l := range h.accounts {
		s.AccountLives = append(s.AccountLives, snapAccountLife{ID: id, OrgID: l.orgID, Primary: l.primary, Enabled: snapFlips(l.enabled)})
	}
	s.MemberFlips, s.RoleFlips = snapPairs(h.members), snapPairs(h.viaRoles)
	for acc, ak := range h.previous {
		s.Previous = append(s.Previous, [2]string{acc, ak})
	}
	return s
}

// sort orders every list of the copy but the keys (prepareKeys sorts them): the
// same index always encodes the same.
func (s *indexSnapshot) sort() {
	slices.SortFunc(s.AccessKeys, func(a, b snapAccessKey) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Accounts, func(a, b snapAccount) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Members, comparePairs)
	for _, r := range s.Roles {
		slices.Sort(r.Users)
		slices.Sort(r.Workspaces)
	}
	slices.SortFunc(s.Roles, func(a, b snapRole) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Workspaces, func(a, b [2]string) int { return cmp.Compare(a[0], b[0]) })
	slices.SortFunc(s.AccessKeyLives, func(a, b snapAccessKeyLife) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.AccountLives, func(a, b snapAccountLife) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.MemberFlips, comparePairs)
	slices.SortFunc(s.RoleFlips, comparePairs)
	slices.SortFunc(s.Previous, func(a, b [2]string) int { return cmp.Compare(a[0], b[0]) })
}

func comparePairs(a, b snapPair) int {
	return cmp.Or(cmp.Compare(a.WorkspaceID, b.WorkspaceID), cmp.Compare(a.AccountID, b.AccountID))
}

func snapFlips(f flips) []snapFlip {
	out := make([]snapFlip, len(f))
	for i, x := range f {
		out[i] = snapFlip{At: x.at.UnixNano(), On: x.on}
	}
	return out
}

func flipsOf(s []snapFlip) flips {
	out := make(flips, len(s))
	for i, x := range s {
		out[i] = flip{at: time.Unix(0, x.At).UTC(), on: x.On}
	}
	return out
}

func snapPairs(m map[[2]string]flips) []snapPair {
	out := make([]snapPair, 0, len(m))
	for k, f := range m {
		out = append(out, snapPair{WorkspaceID: k[0], AccountID: k[1], Flips: snapFlips(f)})
	}
	return out
}

// LogCheck says whether the log holds the event with this id at this position (an
// error when it does not, or cannot tell).
type LogCheck func(position uint64, eventID string) error

// RestoreSnapshot replaces the state of an index that has applied nothing yet with a
// snapshot's, and returns the position it covers; the index then follows the log
// from there. A snapshot whose position the log does not hold, or holds another
// event at, is another log's and refused. Any error leaves the index empty, for a
// full replay.
func (x *Index) RestoreSnapshot(r io.Reader, check LogCheck) (uint64, error) {
	br := bufio.NewReaderSize(r, 1<<20) // a ByteReader: gob reads no further than its own
	var s indexSnapshot
	if err := gob.NewDecoder(br).Decode(&s); err != nil {
		return 0, fmt.Errorf("credential index snapshot: %w", err)
	}
	if s.Format != snapshotFormat {
		return 0, errSnapshotFormat
	}
	if s.Position > 0 {
		if err := check(s.Position, s.PositionID); err != nil {
			return 0, fmt.Errorf("credential index snapshot: not of this log: %w", err)
		}
	}
	keys, err := s.Keys.decode(br)
	if err != nil {
		return 0, fmt.Errorf("credential index snapshot: %w", err)
	}
	// The snapshot ends with its keys; reading to the end lets a checking reader
	// (the store's digest) say whether all of it was right, before any state changes.
	if n, err := io.Copy(io.Discard, br); err != nil {
		return 0, fmt.Errorf("credential index snapshot: %w", err)
	} else if n != 0 {
		return 0, fmt.Errorf("credential index snapshot: %d bytes after the keys", n)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.position.Load() != 0 {
		return 0, errors.New("credential index snapshot: the index has applied events already")
	}
	x.keys, x.keysByID = make(map[[32]byte]*keyEntry, len(keys.entries)), make(map[string]*keyEntry, len(keys.entries))
	x.uses = make([]keyUseRef, 0, len(keys.entries))
	for i := range keys.entries {
		e := &keys.entries[i]
		x.keys[e.hash], x.keysByID[e.id] = e, e
		x.uses = append(x.uses, keyUseRef{keyID: e.id, use: e.use})
	}
	for _, a := range keys.allows {
		x.allows[allowKey(a.entries)] = a
	}
	x.allowsList = keys.allows
	byID := map[string]*accessKeyEntry{}
	for _, a := range s.AccessKeys {
		e := &accessKeyEntry{id: a.ID, accountID: a.AccountID, orgID: a.OrgID, hash: a.Hash, disabled: a.Disabled, deleted: a.Deleted}
		if a.Until != 0 {
			e.until = time.Unix(0, a.Until).UTC()
		}
		x.accessKeys[a.Hash], byID[a.ID] = e, e
		if !a.Deleted {
			x.akByID[a.ID] = e
		}
	}
	for _, a := range s.Accounts {
		e := &accountEntry{orgID: a.OrgID, disabled: a.Disabled, primary: a.Primary}
		if a.Previous != "" {
			e.previous = byID[a.Previous]
		}
		x.accounts[a.ID] = e
	}
	for _, m := range s.Members {
		if x.members[m.WorkspaceID] == nil {
			x.members[m.WorkspaceID] = map[string]struct{}{}
		}
		x.members[m.WorkspaceID][m.AccountID] = struct{}{}
	}
	for _, r := range s.Roles {
		e := &roleEntry{users: map[string]struct{}{}, workspaces: map[string]struct{}{}}
		for _, u := range r.Users {
			e.users[u] = struct{}{}
		}
		for _, ws := range r.Workspaces {
			e.workspaces[ws] = struct{}{}
			for _, u := range r.Users {
				x.roles.count[[2]string{ws, u}]++
			}
		}
		x.roles.roles[r.ID] = e
	}
	for _, w := range s.Workspaces {
		x.workspaces[w[0]] = w[1]
	}
	h := x.history
	for _, l := range s.AccessKeyLives {
		h.accessKeys[l.ID] = &accessKeyLife{accountID: l.AccountID, orgID: l.OrgID, alive: flipsOf(l.Alive), enabled: flipsOf(l.Enabled)}
	}
	for _, l := range s.AccountLives {
		h.accounts[l.ID] = &accountLife{orgID: l.OrgID, primary: l.Primary, enabled: flipsOf(l.Enabled)}
	}
	for _, p := range s.MemberFlips {
		h.members[[2]string{p.WorkspaceID, p.AccountID}] = flipsOf(p.Flips)
	}
	for _, p := range s.RoleFlips {
		h.viaRoles[[2]string{p.WorkspaceID, p.AccountID}] = flipsOf(p.Flips)
	}
	for _, p := range s.Previous {
		h.previous[p[0]] = p[1]
	}
	x.lastID = s.PositionID
	x.position.Advance(s.Position)
	return s.Position, nil
}
