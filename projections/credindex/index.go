// Package credindex is the data plane: every credential and what it may call, held
// in memory and fed by this instance's own follower of the log, the verification
// rules and decision codes, the per-key rate limiters, and the presence of the
// instances (who is live, and how far each has applied the log). Nothing on the
// verification path queries PostgreSQL or the network.
package credindex

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/projections/follow"
)

// Log is what the index needs of the event store: where the log ends, and a
// subscription from a position.
type Log interface {
	follow.Log
	Position(ctx context.Context) (uint64, error)
}

// Code is the stable reason of a verification decision (domain.CallCode, where the
// rules that decide it live).
type Code = domain.CallCode

// The decision codes of POST /v1/verify.
const (
	CodeValid                    = domain.CallValid
	CodeMalformed                = domain.CallMalformed
	CodeNotFound                 = domain.CallNotFound
	CodeDeleted                  = domain.CallDeleted
	CodeDisabled                 = domain.CallDisabled
	CodeIPNotAllowed             = domain.CallIPNotAllowed
	CodeWorkspaceMismatch        = domain.CallWorkspaceMismatch
	CodeProductMismatch          = domain.CallProductMismatch
	CodeRateLimited              = domain.CallRateLimited
	CodeNotAuthorizedOnWorkspace = domain.CallNotAuthorizedOnWorkspace
)

// Verification is one platform call to decide.
type Verification struct {
	Credential  string
	SourceIP    netip.Addr
	WorkspaceID string
	Product     domain.BusinessType
}

// Decision is the answer. When Allowed, BillingSubject says who pays: the workspace
// for an API key, the (sub-)account for an access key.
type Decision struct {
	Allowed        bool
	Code           Code
	WorkspaceID    string
	KeyID          string
	AccessKeyID    string
	AccountID      string
	BillingKind    string // "workspace" or "account"
	BillingID      string
	RetryAfter     time.Duration
	OrganizationID string
}

type keyEntry struct {
	id, workspaceID, orgID string
	hash                   [32]byte
	allow                  *allowed
	limiter                *rate.Limiter // nil: unlimited
	use                    *keyUse       // shared by the entry's copies
	// createdAt and deletedAt (0 while alive), Unix nanoseconds, answer what the
	// key could call at a past instant (usage attribution).
	createdAt, deletedAt int64
	product              product
	deleted              bool
}

// product is a key's business type in a byte, not a string: a million entries
// are 16 MB smaller (an entry fits in 128 bytes).
type product uint8

// products are the business types by their byte (0: one the index does not know).
var products = [...]domain.BusinessType{"", domain.BusinessMaaS, domain.BusinessSearch}

func productOf(b domain.BusinessType) product {
	for i, t := range products {
		if t == b {
			return product(i)
		}
	}
	return 0
}

func (p product) businessType() domain.BusinessType { return products[p] }

// intern gives the one copy of an id the index keeps, however many entries name
// it: a record read from the log brings strings of its own (parts of larger ones),
// and a workspace's million keys would each keep a copy of its id and of its
// organization's. The table holds the workspace, organization and account ids
// (not the keys'): it grows with them, never with keys. Caller holds x.mu.
func (x *Index) intern(id string) string {
	if s, ok := x.names[id]; ok {
		return s
	}
	id = strings.Clone(id)
	x.names[id] = id
	return id
}

// aliveAt: created at or before t, not deleted at or before t.
func (k *keyEntry) aliveAt(t time.Time) bool {
	n := t.UnixNano()
	return k.createdAt <= n && (k.deletedAt == 0 || n < k.deletedAt)
}

// keyUse is the minute (Unix time / 60) a key was last allowed: a verification
// stores it when the minute changes, with no lock and no allocation; the flush
// (LastUsed) reads what changed since it last wrote.
type keyUse struct {
	minute  atomic.Int64
	flushed int64 // the minute last handed out by LastUsed; its caller's only
}

type keyUseRef struct {
	keyID string
	use   *keyUse
}

type accessKeyEntry struct {
	id, accountID, orgID string
	hash                 [32]byte
	disabled, deleted    bool
	// until ends a key a rotation replaced with a grace period: from then on it
	// is deleted (zero: no end).
	until time.Time
}

// endedAt: deleted, or past the end of its grace period.
func (ak *accessKeyEntry) endedAt(now func() time.Time) bool {
	return ak.deleted || !ak.until.IsZero() && !now().Before(ak.until)
}

type accountEntry struct {
	orgID    string
	disabled bool
	primary  bool
	// previous is the access key a rotation replaced, in its grace period.
	previous *accessKeyEntry
}

// Index answers verifications from memory: every credential and what it may
// call, built from the log by this instance's own ordered consumer. The hot path
// takes no lock but a read lock, queries nothing and allocates nothing on an allowed
// call. Safe for concurrent use.
type Index struct {
	log    Log
	logger *slog.Logger
	hasher sync.Pool
	clock  func() time.Time

	mu         sync.RWMutex
	keys       map[[32]byte]*keyEntry
	keysByID   map[string]*keyEntry
	accessKeys map[[32]byte]*accessKeyEntry
	akByID     map[string]*accessKeyEntry
	accounts   map[string]*accountEntry
	members    map[string]map[string]struct{} // workspace → accounts
	roles      roleGrants                     // authorizations through roles
	workspaces map[string]string              // workspace → organization
	names      map[string]string              // the ids entries share (intern)
	// allows are the distinct allowlists the keys share, each parsed once: by their
	// entries, and in the order they came (append-only).
	allows     map[string]*allowed
	allowsList []*allowed
	history    history // what each credential could call, over time

	position follow.Position
	head     atomic.Uint64 // the log's end at start: ready once applied
	minute   atomic.Int64  // the clock's minute (Unix / 60), kept by Run's ticker
	lastID   string        // the id of the last event applied (guarded by mu)
	// remembered are the access keys this instance created, by secret hash, until
	// their event is applied: organization ids for authentication.
	rememberedMu sync.Mutex
	remembered   map[[32]byte]string
	uses         []keyUseRef // every key's use, append-only: LastUsed scans it unlocked
	// snapshots asks the follower for a copy of the state between two batches, so
	// that no writer waits on the copy and no verification waits on a writer.
	snapshots chan chan *indexSnapshot
	running   atomic.Bool
	ready     atomic.Bool
	// owed is a position this instance answered a revocation at without having
	// applied it: the index decides nothing until it has.
	owed    atomic.Uint64
	onApply func(position uint64)
	// The lease: shown is when (since born, monotonic) the index last held the log
	// as it stood; probes are the questions to the log it has not reached yet.
	lease   time.Duration
	born    time.Time
	shown   atomic.Int64
	probeMu sync.Mutex
	probes  []probe // answered, not yet reached
}

// Config configures a Index.
type Config struct {
	Pepper []byte
	Logger *slog.Logger
	// Clock drives the rate limiters (default time.Now); tests inject one.
	Clock func() time.Time
	// OnApply, if set, is called after each applied batch with the new position.
	OnApply func(position uint64)
	// Lease is how long the index keeps deciding after it last showed that it held
	// the log as it stood (default 3s); it asks where the log ends every third of
	// it. An instance cut off from the log, or stuck on it, stops deciding within
	// the lease: the service keeps it shorter than the life of its presence entry,
	// so an instance the cluster no longer waits for has stopped.
	Lease time.Duration
}

// Validate joins every problem.
func (c Config) Validate() error {
	if len(c.Pepper) < domain.MinPepperLen {
		return fmt.Errorf("credential index: the pepper must be at least %d bytes", domain.MinPepperLen)
	}
	return nil
}

// New returns an empty index; Run fills it from the log. The configuration is
// validated by its owner (the service) before.
func New(log Log, cfg Config) *Index {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	pepper := cfg.Pepper
	if cfg.Lease == 0 {
		cfg.Lease = 3 * time.Second
	}
	x := &Index{
		log: log, logger: cfg.Logger, clock: cfg.Clock, onApply: cfg.OnApply, lease: cfg.Lease, born: time.Now(),
		keys: map[[32]byte]*keyEntry{}, keysByID: map[string]*keyEntry{},
		accessKeys: map[[32]byte]*accessKeyEntry{}, akByID: map[string]*accessKeyEntry{},
		accounts: map[string]*accountEntry{}, members: map[string]map[string]struct{}{}, workspaces: map[string]string{}, names: map[string]string{},
		allows: map[string]*allowed{}, roles: newRoleGrants(), history: newHistory(), snapshots: make(chan chan *indexSnapshot), remembered: map[[32]byte]string{},
	}
	x.hasher.New = func() any { return &hmacState{mac: hmac.New(sha256.New, pepper)} }
	x.minute.Store(x.clock().Unix() / 60)
	x.shown.Store(-int64(x.lease) - 1)
	return x
}

// probe is a question the index asked the log: where it ended at a moment.
type probe struct {
	at   time.Duration // since the index was made (monotonic)
	head uint64
}

// pendingProbes bounds the probes kept until the index reaches them: an index
// more than that many heartbeats behind lets its lease lapse.
const pendingProbes = 8

// ask records where the log ended at the moment at, and confirms the lease at once
// when the index already holds it.
func (x *Index) ask(at time.Duration, head uint64) {
	x.probeMu.Lock()
	if len(x.probes) == pendingProbes {
		x.probes = x.probes[1:]
	}
	x.probes = append(x.probes, probe{at: at, head: head})
	x.probeMu.Unlock()
	x.settle()
}

// settle confirms the lease as of the latest probe the index has reached: from the
// moment that probe was sent, the index is known to have been current. The probes
// not reached yet are kept, so an index that lags (but follows) renews its lease
// with an older one.
func (x *Index) settle() {
	pos := x.position.Load()
	x.probeMu.Lock()
	at, reached := time.Duration(0), false
	pending := x.probes[:0]
	for _, p := range x.probes {
		if p.head <= pos {
			at, reached = max(at, p.at), true
		} else {
			pending = append(pending, p)
		}
	}
	x.probes = pending
	x.probeMu.Unlock()
	if !reached {
		return
	}
	for {
		shown := x.shown.Load()
		if int64(at) <= shown || x.shown.CompareAndSwap(shown, int64(at)) {
			return
		}
	}
}

// current says whether the lease holds.
func (x *Index) current() bool { return time.Since(x.born)-time.Duration(x.shown.Load()) <= x.lease }

// renew asks where the log ends every third of the lease, until ctx ends. The
// questions do not wait for each other (up to three in flight): a slow answer
// counts from when it was asked, and does not hold back the next question (the
// log's read bound cuts each at ReadTimeout, 2 s by default).
func (x *Index) renew(ctx context.Context) {
	t := time.NewTicker(x.lease / 3)
	defer t.Stop()
	var inFlight atomic.Int32
	for {
		if inFlight.Add(1) <= 3 {
			go func(at time.Duration) {
				defer inFlight.Add(-1)
				pctx, cancel := context.WithTimeout(ctx, x.lease)
				defer cancel()
				if head, err := x.log.Position(pctx); err == nil {
					x.ask(at, head)
				}
			}(time.Since(x.born))
		} else {
			inFlight.Add(-1)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tick keeps the minute the verifications stamp on the keys they allow: a load
// of one word on the hot path instead of a clock read.
func (x *Index) tick(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			x.minute.Store(x.clock().Unix() / 60)
		}
	}
}

type hmacState struct {
	mac hash.Hash
	buf [domain.CredentialLen]byte
	sum [32]byte
}

// hash is the HMAC of the credential under the pepper, without allocating.
func (x *Index) hash(c string) [32]byte {
	st := x.hasher.Get().(*hmacState)
	st.mac.Reset()
	n := copy(st.buf[:], c)
	st.mac.Write(st.buf[:n])
	st.mac.Sum(st.sum[:0])
	out := st.sum
	x.hasher.Put(st)
	return out
}

// Verify decides one call. A malformed credential is refused before any lookup; an
// unknown one gets NOT_FOUND whatever the reason.
func (x *Index) Verify(v Verification) Decision {
	cred, err := domain.ParseCredential(v.Credential)
	if err != nil {
		return Decision{Code: CodeMalformed}
	}
	h := x.hash(cred.String())
	if cred.Kind() == domain.KindAccessSecret {
		return x.verifyAccessKey(h, v)
	}
	x.mu.RLock()
	k := x.keys[h]
	x.mu.RUnlock()
	if k == nil || subtle.ConstantTimeCompare(k.hash[:], h[:]) != 1 {
		return Decision{Code: CodeNotFound}
	}
	// Fields of an entry change only under the write lock, as new entries.
	d := Decision{WorkspaceID: k.workspaceID, KeyID: k.id, OrganizationID: k.orgID}
	if d.Code = domain.KeyCallCode(k.deleted, k.workspaceID, k.product.businessType(), k.allow.list, v.WorkspaceID, v.Product, v.SourceIP); d.Code == CodeValid {
		if k.limiter != nil {
			// A token due within a microsecond is taken now, as if the call came that
			// much later: the bucket's float arithmetic otherwise refuses an exactly
			// periodic caller one slot too often (7 QPS at 14 calls/s got 5.6).
			now := x.clock()
			if t := k.limiter.TokensAt(now); t < 1 {
				if due := time.Duration((1 - t) / float64(k.limiter.Limit()) * float64(time.Second)); due <= time.Microsecond {
					now = now.Add(due + 1)
				}
			}
			if !k.limiter.AllowN(now, 1) {
				// When the next token will be there.
				missing := 1 - k.limiter.TokensAt(now)
				d.RetryAfter = time.Duration(missing / float64(k.limiter.Limit()) * float64(time.Second))
				d.Code = CodeRateLimited
				return d
			}
		}
		d.Allowed, d.BillingKind, d.BillingID = true, "workspace", k.workspaceID
		if m := x.minute.Load(); k.use.minute.Load() < m {
			k.use.minute.Store(m)
		}
	}
	return d
}

// KeyUse is when an API key was last allowed, to the minute.
type KeyUse struct {
	KeyID string
	At    time.Time
	use   *keyUse
}

// LastUsed lists the keys allowed in a newer minute than the previous call listed
// (all used keys on the first call). It holds the index's lock only to read where
// the append-only list of uses ends, so a scan of a million keys delays neither
// verifications nor the log's application. Calls must not overlap: one flush loop
// makes them.
func (x *Index) LastUsed() []KeyUse {
	x.mu.RLock()
	refs := x.uses
	x.mu.RUnlock()
	var out []KeyUse
	for _, r := range refs {
		if m := r.use.minute.Load(); m > r.use.flushed {
			r.use.flushed = m
			out = append(out, KeyUse{KeyID: r.keyID, At: time.Unix(m*60, 0).UTC(), use: r.use})
		}
	}
	return out
}

// Unflushed hands uses back after a failed write, so the next call lists them
// again. Like LastUsed, its caller's only.
func (x *Index) Unflushed(uses []KeyUse) {
	for _, u := range uses {
		if u.use != nil && u.use.flushed == u.At.Unix()/60 {
			u.use.flushed = 0
		}
	}
}

func (x *Index) verifyAccessKey(h [32]byte, v Verification) Decision {
	x.mu.RLock()
	defer x.mu.RUnlock()
	ak := x.accessKeys[h]
	if ak == nil || subtle.ConstantTimeCompare(ak.hash[:], h[:]) != 1 {
		return Decision{Code: CodeNotFound}
	}
	d := Decision{AccessKeyID: ak.id, AccountID: ak.accountID, OrganizationID: ak.orgID}
	acc := x.accounts[ak.accountID]
	primary := acc != nil && acc.primary
	// A primary account is authorized everywhere in its organization: no lookup.
	member := primary || acc != nil && x.isMember(v.WorkspaceID, ak.accountID)
	if d.Code = domain.AccessKeyCallCode(ak.endedAt(x.clock), ak.disabled || acc == nil || acc.disabled, x.workspaces[v.WorkspaceID] == ak.orgID,
		primary, member); d.Code == CodeValid {
		d.WorkspaceID = v.WorkspaceID
		d.Allowed, d.BillingKind, d.BillingID = true, "account", ak.accountID
	}
	return d
}

// isMember: a direct member, or authorized there through a role.
func (x *Index) isMember(ws, account string) bool {
	_, ok := x.members[ws][account]
	return ok || x.roles.grants(ws, account)
}

// OrganizationOf implements commands.AccessKeyIndex for management authentication.
func (x *Index) OrganizationOf(secretHash string) (string, bool) {
	h, ok := decodeHash(secretHash)
	if !ok {
		return "", false
	}
	x.mu.RLock()
	ak := x.accessKeys[h]
	x.mu.RUnlock()
	if ak != nil {
		return ak.orgID, true
	}
	x.rememberedMu.Lock()
	defer x.rememberedMu.Unlock()
	org, ok := x.remembered[h]
	return org, ok
}

// Remember implements commands.AccessKeyIndex: a key this instance just created
// authenticates here at once, before the consumer delivers its event.
func (x *Index) Remember(secretHash, orgID string) {
	h, ok := decodeHash(secretHash)
	if !ok {
		return
	}
	// Management only, until the event: kept apart from the index's state and its
	// lock, so that it never makes a verification wait.
	x.rememberedMu.Lock()
	x.remembered[h] = orgID
	x.rememberedMu.Unlock()
}

// forget drops what Remember kept once the key's event is applied.
func (x *Index) forget(h [32]byte) {
	x.rememberedMu.Lock()
	delete(x.remembered, h)
	x.rememberedMu.Unlock()
}

func decodeHash(s string) ([32]byte, bool) {
	var h [32]byte
	if len(s) != 64 {
		return h, false
	}
	_, err := hex.Decode(h[:], []byte(s))
	return h, err == nil
}

// Position is the last log position applied.
func (x *Index) Position() uint64 { return x.position.Load() }

// Ready reports whether the index has caught up with the log as it was at start,
// and with every position it owes.
func (x *Index) Ready() bool {
	return x.ready.Load() && x.position.Load() >= x.owed.Load() && x.current()
}

// Owe makes the index unready until it has applied pos: a revocation this instance
// answered but has not applied in time (its consumer stalls) must not be decided
// around.
func (x *Index) Owe(pos uint64) {
	for {
		owed := x.owed.Load()
		if pos <= owed || x.owed.CompareAndSwap(owed, pos) {
			return
		}
	}
}

// Caught is Ready as a readiness check: nil, or how far the index is.
func (x *Index) Caught() error {
	if !x.current() {
		return fmt.Errorf("credential index: not shown to hold the log for %s", (time.Since(x.born) - time.Duration(x.shown.Load())).Round(time.Millisecond))
	}
	if !x.Ready() {
		return fmt.Errorf("credential index catching up (at position %d of %d)", x.Position(), max(x.head.Load(), x.owed.Load()))
	}
	return nil
}

// WaitFor blocks until the index has applied position pos, or ctx ends. The instance
// that accepted a revocation waits for it before answering.
func (x *Index) WaitFor(ctx context.Context, pos uint64) error { return x.position.WaitFor(ctx, pos) }

// Run consumes the whole log from the beginning until ctx ends, resubscribing after
// failures from where it stopped.
func (x *Index) Run(ctx context.Context) error {
	x.running.Store(true)
	defer x.running.Store(false)
	go x.tick(ctx)
	if err := follow.Eventually(ctx, time.Second, x.logger, "credential index: reading the log's end", func(ctx context.Context) error {
		at := time.Since(x.born)
		head, err := x.log.Position(ctx)
		if err != nil {
			return err
		}
		x.head.Store(head)
		x.ready.Store(head <= x.position.Load())
		x.ask(at, head)
		return nil
	}); err != nil {
		return err
	}
	go x.renew(ctx)
	return follow.Retry(ctx, time.Second, x.logger, "credential index", func(ctx context.Context) error {
		return follow.Follower{Log: x.log, Apply: func(_ context.Context, recs []eventstore.Record) error {
			x.Apply(recs...)
			return nil
		}, Between: func(context.Context) error {
			x.answerSnapshot()
			return nil
		}}.Run(ctx, x.position.Load())
	})
}

// Apply folds records into the index, in log order. Exported for benchmarks that
// build an index without a log.
func (x *Index) Apply(recs ...eventstore.Record) {
	now := x.clock()
	x.mu.Lock()
	for _, r := range recs {
		if r.Sequence != 0 && r.Sequence <= x.position.Load() {
			continue
		}
		x.apply(r, now)
		x.history.apply(r)
		x.lastID = r.ID
	}
	// The position moves with the state, under the lock: a snapshot never pairs a
	// batch with the position before it.
	if last := recs[len(recs)-1].Sequence; last > x.position.Load() {
		x.position.Advance(last)
	}
	x.mu.Unlock()
	if h := x.head.Load(); h != 0 && x.position.Load() >= h {
		x.ready.Store(true)
	}
	x.settle()
	if x.onApply != nil {
		x.onApply(x.position.Load())
	}
}

func (x *Index) apply(r eventstore.Record, now time.Time) {
	switch e := r.Event.(type) {
	case domain.OrganizationCreated:
		x.accounts[e.PrimaryAccountID] = &accountEntry{orgID: e.OrganizationID, primary: true}
	case domain.AccountCreated:
		x.accounts[e.AccountID] = &accountEntry{orgID: r.Aggregate}
	case domain.AccountDisabled:
		if a := x.accounts[e.AccountID]; a != nil {
			a.disabled = true
		}
	case domain.AccountEnabled:
		if a := x.accounts[e.AccountID]; a != nil {
			a.disabled = false
		}
	case domain.AccessKeyCreated:
		if h, ok := decodeHash(e.SecretHash); ok {
			x.forget(h)
			ak := &accessKeyEntry{id: e.AccessKeyID, accountID: x.intern(e.AccountID), orgID: x.intern(r.Aggregate), hash: h}
			x.accessKeys[h], x.akByID[e.AccessKeyID] = ak, ak
		}
	case domain.AccessKeyDisabled: // the account's one set of AK: its previous key too
		x.eachKeyOf(e.AccountID, e.AccessKeyID, func(ak *accessKeyEntry) { ak.disabled = true })
	case domain.AccessKeyEnabled:
		x.eachKeyOf(e.AccountID, e.AccessKeyID, func(ak *accessKeyEntry) { ak.disabled = false })
	case domain.AccessKeyDeleted:
		x.eachKeyOf(e.AccountID, e.AccessKeyID, x.end)
		if a := x.accounts[e.AccountID]; a != nil {
			a.previous = nil
		}
	case domain.AccessKeyRotated:
		x.rotate(r.Aggregate, e)
	case domain.RoleCreated, domain.RoleDeleted, domain.RoleUserIncluded, domain.RoleUserExcluded,
		domain.RoleWorkspaceAdded, domain.RoleWorkspaceRemoved:
		x.roles.apply(e, x.history.roleGrantChanged)
	case domain.WorkspaceCreated:
		x.workspaces[e.WorkspaceID] = e.OrganizationID
	case domain.MemberAuthorized:
		m := x.members[r.Aggregate]
		if m == nil {
			m = map[string]struct{}{}
			x.members[r.Aggregate] = m
		}
		m[e.AccountID] = struct{}{}
	case domain.MemberRevoked:
		delete(x.members[r.Aggregate], e.AccountID)
	case domain.APIKeyCreated:
		h, ok := decodeHash(e.SecretHash)
		if !ok {
			return
		}
		k := &keyEntry{id: e.KeyID, workspaceID: x.intern(r.Aggregate), orgID: x.intern(r.Metadata.OrganizationID), hash: h,
			product: productOf(e.BusinessType), allow: x.allowlist(e.Allowlist), use: &keyUse{}, createdAt: e.At.UnixNano()}
		x.uses = append(x.uses, keyUseRef{keyID: e.KeyID, use: k.use})
		if k.orgID == "" {
			k.orgID = x.intern(x.workspaces[r.Aggregate])
		}
		if e.QPSLimit > 0 {
			k.limiter = rate.NewLimiter(rate.Limit(e.QPSLimit), burst(e.QPSLimit))
		}
		x.keys[h], x.keysByID[e.KeyID] = k, k
	case domain.APIKeyUpdated:
		old := x.keysByID[e.KeyID]
		if old == nil {
			return
		}
		// A new entry (readers hold no lock while they use one); the bucket is kept,
		// with its new rate, so what was consumed stays consumed.
		k := *old
		k.allow = x.allowlist(e.Allowlist)
		switch {
		case e.QPSLimit == 0:
			k.limiter = nil
		case old.limiter == nil:
			k.limiter = rate.NewLimiter(rate.Limit(e.QPSLimit), burst(e.QPSLimit))
		default:
			old.limiter.SetLimitAt(now, rate.Limit(e.QPSLimit))
			old.limiter.SetBurstAt(now, burst(e.QPSLimit))
		}
		x.keys[k.hash], x.keysByID[e.KeyID] = &k, &k
	case domain.APIKeyDeleted:
		if old := x.keysByID[e.KeyID]; old != nil {
			k := *old
			k.deleted, k.limiter, k.deletedAt = true, nil, e.At.UnixNano()
			x.keys[k.hash], x.keysByID[e.KeyID] = &k, &k
		}
	}
}

// eachKeyOf runs change on an account's access key and on the previous one a
// rotation left in its grace period.
func (x *Index) eachKeyOf(accountID, accessKeyID string, change func(*accessKeyEntry)) {
	if ak := x.akByID[accessKeyID]; ak != nil {
		change(ak)
	}
	if a := x.accounts[accountID]; a != nil && a.previous != nil {
		change(a.previous)
	}
}

// end deletes an access key; the entry is kept, so a deleted key is told from an
// unknown one.
func (x *Index) end(ak *accessKeyEntry) {
	ak.deleted = true
	delete(x.akByID, ak.id)
}

// rotate replaces an account's access key: the old one ends at once or at the end
// of its grace period (an older one still in its grace ends at once); the new one
// has the account's key status.
func (x *Index) rotate(orgID string, e domain.AccessKeyRotated) {
	a := x.accounts[e.AccountID]
	if a == nil {
		return
	}
	if a.previous != nil {
		x.end(a.previous)
		a.previous = nil
	}
	disabled := false
	if old := x.akByID[e.PreviousAccessKeyID]; old != nil {
		disabled = old.disabled
		if e.HasGrace() {
			old.until, a.previous = e.PreviousUntil, old
		} else {
			x.end(old)
		}
	}
	if h, ok := decodeHash(e.SecretHash); ok {
		x.forget(h)
		ak := &accessKeyEntry{id: e.AccessKeyID, accountID: x.intern(e.AccountID), orgID: x.intern(orgID), hash: h, disabled: disabled}
		x.accessKeys[h], x.akByID[e.AccessKeyID] = ak, ak
	}
}

// burst is a tenth of a second's worth of calls (at least one): short bursts pass,
// and over any second the count stays within a few percent of the limit.
func burst(q domain.QPS) int {
	return max(1, (int(q)+9)/10)
}

// allowed is an allowlist as keys share it: parsed once per distinct list.
type allowed struct {
	list    domain.Allowlist
	entries []string // as the log has them
	n       int      // its place in Index.allowsList
}

// allowlist is the shared allowlist of these entries. Caller holds the write lock.
func (x *Index) allowlist(entries []string) *allowed {
	key := allowKey(entries)
	if a := x.allows[key]; a != nil {
		return a
	}
	a := &allowed{list: allowlistOf(entries), entries: slices.Clone(entries), n: len(x.allowsList)}
	x.allows[key] = a
	x.allowsList = append(x.allowsList, a)
	return a
}

// allowKey is what the shared allowlists are found by: their entries.
func allowKey(entries []string) string { return strings.Join(entries, "\n") }

// allowlistOf parses a key's allowlist as the log has it. Entries were validated
// when decided; should one ever not parse, the key fails closed.
func allowlistOf(entries []string) domain.Allowlist {
	a, err := domain.ParseAllowlist(entries)
	if err != nil {
		return domain.NoAddressAllowed()
	}
	return a
}
