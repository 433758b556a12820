package projections

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// Code is the stable reason of a verification decision.
type Code string

// The decision codes of POST /v1/verify. Gateways switch on them: never rename one.
const (
	CodeValid                    Code = "VALID"
	CodeMalformed                Code = "MALFORMED"
	CodeNotFound                 Code = "NOT_FOUND"
	CodeDeleted                  Code = "DELETED"
	CodeDisabled                 Code = "DISABLED"
	CodeIPNotAllowed             Code = "IP_NOT_ALLOWED"
	CodeWorkspaceMismatch        Code = "WORKSPACE_MISMATCH"
	CodeProductMismatch          Code = "PRODUCT_MISMATCH"
	CodeRateLimited              Code = "RATE_LIMITED"
	CodeNotAuthorizedOnWorkspace Code = "NOT_AUTHORIZED_ON_WORKSPACE"
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
	product                domain.BusinessType
	allow                  []netip.Prefix
	deleted                bool
	limiter                *rate.Limiter // nil: unlimited
}

type accessKeyEntry struct {
	id, accountID, orgID string
	hash                 [32]byte
	disabled, deleted    bool
}

type accountEntry struct {
	orgID    string
	disabled bool
	primary  bool
}

// CredentialIndex answers verifications from memory: every credential and what it may
// call, built from the log by this instance's own ordered consumer. The hot path
// takes no lock but a read lock, queries nothing and allocates nothing on an allowed
// call. Safe for concurrent use.
type CredentialIndex struct {
	store  *eventstore.Store
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
	workspaces map[string]string              // workspace → organization

	position atomic.Uint64
	head     atomic.Uint64 // the log's end at start: ready once applied
	ready    atomic.Bool
	moved    chan struct{}
	movedMu  sync.Mutex
	onApply  func(position uint64)
}

// IndexConfig configures a CredentialIndex.
type IndexConfig struct {
	Pepper []byte
	Logger *slog.Logger
	// Clock drives the rate limiters (default time.Now); tests inject one.
	Clock func() time.Time
	// OnApply, if set, is called after each applied batch with the new position.
	OnApply func(position uint64)
}

// NewCredentialIndex returns an empty index; Run fills it from the log.
func NewCredentialIndex(store *eventstore.Store, cfg IndexConfig) *CredentialIndex {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	pepper := cfg.Pepper
	x := &CredentialIndex{
		store: store, logger: cfg.Logger, clock: cfg.Clock, onApply: cfg.OnApply,
		keys: map[[32]byte]*keyEntry{}, keysByID: map[string]*keyEntry{},
		accessKeys: map[[32]byte]*accessKeyEntry{}, akByID: map[string]*accessKeyEntry{},
		accounts: map[string]*accountEntry{}, members: map[string]map[string]struct{}{}, workspaces: map[string]string{},
		moved: make(chan struct{}),
	}
	x.hasher.New = func() any { return &hmacState{mac: hmac.New(sha256.New, pepper)} }
	return x
}

type hmacState struct {
	mac hash.Hash
	buf [domain.CredentialLen]byte
	sum [32]byte
}

// hash is the HMAC of the credential under the pepper, without allocating.
func (x *CredentialIndex) hash(c string) [32]byte {
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
func (x *CredentialIndex) Verify(v Verification) Decision {
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
	switch {
	case k.deleted:
		d.Code = CodeDeleted
	case k.workspaceID != v.WorkspaceID:
		d.Code = CodeWorkspaceMismatch
	case k.product != v.Product:
		d.Code = CodeProductMismatch
	case !allows(k.allow, v.SourceIP):
		d.Code = CodeIPNotAllowed
	default:
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
		d.Allowed, d.Code, d.BillingKind, d.BillingID = true, CodeValid, "workspace", k.workspaceID
	}
	return d
}

func (x *CredentialIndex) verifyAccessKey(h [32]byte, v Verification) Decision {
	x.mu.RLock()
	defer x.mu.RUnlock()
	ak := x.accessKeys[h]
	if ak == nil || subtle.ConstantTimeCompare(ak.hash[:], h[:]) != 1 {
		return Decision{Code: CodeNotFound}
	}
	d := Decision{AccessKeyID: ak.id, AccountID: ak.accountID, OrganizationID: ak.orgID}
	acc := x.accounts[ak.accountID]
	switch {
	case ak.deleted:
		d.Code = CodeDeleted
	case ak.disabled || acc == nil || acc.disabled:
		d.Code = CodeDisabled
	case x.workspaces[v.WorkspaceID] != ak.orgID:
		d.Code = CodeNotAuthorizedOnWorkspace
	case !acc.primary && !x.isMember(v.WorkspaceID, ak.accountID):
		d.Code = CodeNotAuthorizedOnWorkspace
	default:
		d.WorkspaceID = v.WorkspaceID
		d.Allowed, d.Code, d.BillingKind, d.BillingID = true, CodeValid, "account", ak.accountID
	}
	return d
}

func (x *CredentialIndex) isMember(ws, account string) bool {
	_, ok := x.members[ws][account]
	return ok
}

func allows(prefixes []netip.Prefix, ip netip.Addr) bool {
	if len(prefixes) == 0 {
		return true
	}
	ip = ip.Unmap()
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// OrganizationOf implements commands.AccessKeyIndex for management authentication.
func (x *CredentialIndex) OrganizationOf(secretHash string) (string, bool) {
	h, ok := decodeHash(secretHash)
	if !ok {
		return "", false
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	ak := x.accessKeys[h]
	if ak == nil {
		return "", false
	}
	return ak.orgID, true
}

// Remember implements commands.AccessKeyIndex: a key this instance just created
// authenticates here at once, before the consumer delivers its event.
func (x *CredentialIndex) Remember(secretHash, orgID string) {
	h, ok := decodeHash(secretHash)
	if !ok {
		return
	}
	x.mu.Lock()
	if x.accessKeys[h] == nil {
		x.accessKeys[h] = &accessKeyEntry{hash: h, orgID: orgID, deleted: true} // management only, until the event
	}
	x.mu.Unlock()
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
func (x *CredentialIndex) Position() uint64 { return x.position.Load() }

// Ready reports whether the index has caught up with the log as it was at start.
func (x *CredentialIndex) Ready() bool { return x.ready.Load() }

// WaitFor blocks until the index has applied position pos, or ctx ends. The instance
// that accepted a revocation waits for it before answering.
func (x *CredentialIndex) WaitFor(ctx context.Context, pos uint64) error {
	for {
		x.movedMu.Lock()
		moved := x.moved
		x.movedMu.Unlock()
		if x.position.Load() >= pos {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-moved:
		}
	}
}

// Run consumes the whole log from the beginning until ctx ends, resubscribing after
// failures from where it stopped.
func (x *CredentialIndex) Run(ctx context.Context) error {
	for ctx.Err() == nil && !x.ready.Load() {
		head, err := x.store.Position(ctx)
		if err == nil {
			x.head.Store(head)
			x.ready.Store(head <= x.position.Load())
			break
		}
		x.logger.Warn("credential index: reading the log's end", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	for ctx.Err() == nil {
		if err := x.consume(ctx); err != nil && ctx.Err() == nil {
			x.logger.Warn("credential index: resubscribing", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return ctx.Err()
}

func (x *CredentialIndex) consume(ctx context.Context) error {
	sub, err := x.store.Subscribe(ctx, x.position.Load())
	if err != nil {
		return err
	}
	defer sub.Stop()
	for {
		recs, err := sub.Next(ctx, 4096, time.Second)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			continue
		}
		x.Apply(recs...)
	}
}

// Apply folds records into the index, in log order. Exported for benchmarks that
// build an index without a log.
func (x *CredentialIndex) Apply(recs ...eventstore.Record) {
	now := x.clock()
	x.mu.Lock()
	for _, r := range recs {
		if r.Sequence != 0 && r.Sequence <= x.position.Load() {
			continue
		}
		x.apply(r, now)
	}
	x.mu.Unlock()
	if last := recs[len(recs)-1].Sequence; last > x.position.Load() {
		x.position.Store(last)
	}
	if h := x.head.Load(); h != 0 && x.position.Load() >= h {
		x.ready.Store(true)
	}
	x.movedMu.Lock()
	close(x.moved)
	x.moved = make(chan struct{})
	x.movedMu.Unlock()
	if x.onApply != nil {
		x.onApply(x.position.Load())
	}
}

func (x *CredentialIndex) apply(r eventstore.Record, now time.Time) {
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
			ak := &accessKeyEntry{id: e.AccessKeyID, accountID: e.AccountID, orgID: r.Aggregate, hash: h}
			x.accessKeys[h], x.akByID[e.AccessKeyID] = ak, ak
		}
	case domain.AccessKeyDisabled:
		if ak := x.akByID[e.AccessKeyID]; ak != nil {
			ak.disabled = true
		}
	case domain.AccessKeyEnabled:
		if ak := x.akByID[e.AccessKeyID]; ak != nil {
			ak.disabled = false
		}
	case domain.AccessKeyDeleted:
		if ak := x.akByID[e.AccessKeyID]; ak != nil {
			ak.deleted = true // kept, so a deleted key is told from an unknown one
			delete(x.akByID, e.AccessKeyID)
		}
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
		k := &keyEntry{id: e.KeyID, workspaceID: r.Aggregate, orgID: r.Metadata.OrganizationID, hash: h,
			product: e.BusinessType, allow: prefixes(e.Allowlist)}
		if k.orgID == "" {
			k.orgID = x.workspaces[r.Aggregate]
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
		k.allow = prefixes(e.Allowlist)
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
			k.deleted, k.limiter = true, nil
			x.keys[k.hash], x.keysByID[e.KeyID] = &k, &k
		}
	}
}

// burst is a tenth of a second's worth of calls (at least one): short bursts pass,
// and over any second the count stays within a few percent of the limit.
func burst(q domain.QPS) int {
	return max(1, (int(q)+9)/10)
}

func prefixes(entries []string) []netip.Prefix {
	if len(entries) == 0 {
		return nil
	}
	a, err := domain.ParseAllowlist(entries)
	if err != nil {
		// Entries were validated when decided; should one ever not parse, fail
		// closed: an invalid prefix contains no address.
		return []netip.Prefix{{}}
	}
	return a.Prefixes()
}
