// Package service wires keyledger's components into one running instance: event
// store, vault, snapshots, views, idempotency store, data plane, command handlers and
// the HTTP API. It wires; the behaviour lives in the packages it wires. cmd/ and the
// component tests start instances through it.
package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/auditlog"
	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/httpapi"
	"github.com/keyledger/keyledger/idempotency"
	"github.com/keyledger/keyledger/projections"
	"github.com/keyledger/keyledger/projections/credindex"
	"github.com/keyledger/keyledger/streamspec"
	"github.com/keyledger/keyledger/usage"
)

// Config of an instance.
type Config struct {
	NATS        *nats.Conn
	DatabaseURL string
	MasterKey   []byte
	Pepper      []byte
	Replicas    int
	// GatewayToken authenticates gateways on /v1/verify.
	GatewayToken string
	// InstanceID names this instance in KEYLEDGER_INSTANCES (default: random).
	InstanceID string
	// AnnounceEvery is the presence heartbeat (default 1s); entries live 5 of them.
	AnnounceEvery time.Duration
	// ReadTimeout and WriteTimeout bound each read and each append on NATS (defaults
	// 2s and 5s): a stalled server is a 503 soon.
	ReadTimeout, WriteTimeout time.Duration
	// UsageMaxAge is how old a reported call may be (default 35 days).
	UsageMaxAge time.Duration
	// LastUsedEvery is how often the instance writes when its verifications last
	// allowed each API key (default 30s; the times are to the minute).
	LastUsedEvery time.Duration
	// CacheBytes bounds the estimated size of the aggregates kept in memory, per
	// kind (default commands.DefaultCacheBytes, 256 MiB).
	CacheBytes int64
	// IndexSnapshotEvery and IndexSnapshotEvents say when the instance saves its
	// credential index's snapshot: after that many events, or that long if it moved
	// at all (defaults 5m and 100,000). A starting instance restores the newest
	// snapshot and applies only the log after it.
	IndexSnapshotEvery  time.Duration
	IndexSnapshotEvents uint64
	// DataKeyGrace is how long after a key's creation event the data key check
	// looks for its data key (default 1m): longer than any creation lasts.
	DataKeyGrace time.Duration
	Audit        AuditConfig
	HTTP         httpapi.Config
	Logger       *slog.Logger
}

// AuditConfig configures the audit log's checkpoints.
type AuditConfig struct {
	// SigningKey signs the checkpoints: an Ed25519 key in the note signing-key
	// format (PRIVATE+KEY+<name>+<hash>+<key>), as `keyledger audit keygen` and
	// `keyledger dev` make it. Without one the trees and proofs are kept but no
	// checkpoint is signed.
	SigningKey string
	// PreviousPublicKeys are the verifier keys of rotated signing keys, served
	// beside the current one so that old checkpoints stay verifiable.
	PreviousPublicKeys []string
	// Origin prefixes each organization's checkpoint origin (default "keyledger").
	Origin string
	// CheckpointEvery is how often a grown tree gets a checkpoint (default 1m).
	CheckpointEvery time.Duration
	// Retention is how long the audit stream keeps refused calls and replayed
	// answers; unset, 365 days for a new stream, an existing one as it is.
	Retention time.Duration
}

// IndexSnapshotLock names the lock an instance holds while it saves the credential
// index's snapshot: one saver at a time across instances.
const IndexSnapshotLock = "keyledger.index-snapshot"

// Signer reads the signing key and the previous keys: the signer (nil when no
// key is configured: checkpoints are off), and the verifier keys with the current
// one first.
func (c AuditConfig) Signer() (*audit.Signer, []string, error) {
	if c.CheckpointEvery < 0 {
		return nil, nil, errors.New("the audit checkpoint interval must not be negative")
	}
	var s *audit.Signer
	var keys []string
	if c.SigningKey != "" {
		var err error
		if s, err = audit.NewSigner(c.SigningKey); err != nil {
			return nil, nil, err
		}
		keys = append(keys, s.VerifierKey())
	}
	keys = append(keys, c.PreviousPublicKeys...)
	if len(c.PreviousPublicKeys) > 0 {
		if _, err := audit.Verifiers(keys...); err != nil {
			return nil, nil, fmt.Errorf("audit previous public keys: %w", err)
		}
	}
	return s, keys, nil
}

// The rules of the secrets, the one place that states them.
const (
	MasterKeyLen       = 32                  // bytes of the AES-256 key that wraps the data keys
	MinPepperLen       = domain.MinPepperLen // bytes of the key of every credential HMAC, at least
	MinGatewayTokenLen = 16                  // characters of the gateways' service token, at least
)

// ValidateSecrets checks the secrets against their rules, naming every problem.
func ValidateSecrets(masterKey, pepper []byte, gatewayToken string) error {
	var errs []error
	if len(masterKey) != MasterKeyLen {
		errs = append(errs, fmt.Errorf("the master key must be %d bytes, got %d", MasterKeyLen, len(masterKey)))
	}
	if len(pepper) < MinPepperLen {
		errs = append(errs, fmt.Errorf("the pepper must be at least %d bytes, got %d", MinPepperLen, len(pepper)))
	}
	if len(gatewayToken) < MinGatewayTokenLen {
		errs = append(errs, fmt.Errorf("the gateway token must be at least %d characters", MinGatewayTokenLen))
	}
	return errors.Join(errs...)
}

// Validate joins every problem, the components' own included.
func (c Config) Validate() error {
	var errs []error
	if c.NATS == nil {
		errs = append(errs, errors.New("service: no NATS connection"))
	}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("service: no database URL"))
	}
	if c.IndexSnapshotEvery < 0 {
		errs = append(errs, errors.New("service: the index snapshot interval must not be negative"))
	}
	if write := cmp.Or(c.WriteTimeout, eventstore.DefaultWriteTimeout); c.DataKeyGrace < 0 || c.DataKeyGrace != 0 && c.DataKeyGrace < 4*write {
		errs = append(errs, fmt.Errorf("service: the data key grace must be at least four write timeouts (%v): a creation's append and data key writes end within them", 4*write))
	}
	if c.LastUsedEvery < 0 {
		errs = append(errs, errors.New("service: the last-use flush interval must not be negative"))
	}
	errs = append(errs, ValidateSecrets(c.MasterKey, c.Pepper, c.GatewayToken),
		eventstore.Config{Replicas: c.Replicas, ReadTimeout: c.ReadTimeout, WriteTimeout: c.WriteTimeout, AuditMaxAge: c.Audit.Retention}.Validate(),
		credindex.PresenceConfig{Every: c.AnnounceEvery, Replicas: c.Replicas}.Validate(),
		credindex.Config{Pepper: c.Pepper}.Validate(),
		projections.RunnerConfig{Name: "views", MaxLag: c.HTTP.MaxProjectionLag}.Validate(),
		c.HTTP.Validate(),
		usage.Config{MaxAge: c.UsageMaxAge}.Validate())
	if _, _, err := c.Audit.Signer(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Service is a running instance.
type Service struct {
	store  *eventstore.Store
	vault  *eventstore.Vault
	pool   *pgxpool.Pool
	app    *commands.App
	runner *projections.Runner
	costs  *projections.Runner // the cost views, from the usage stream
	audit  *projections.Runner // the audit views and trees
	cps    *auditlog.Checkpointer
	// witness follows the log for the checkpointer's trees, while signing is on.
	witness *auditlog.Witness
	trail   auditlog.Trail
	index   *credindex.Index
	// snapshots keep the index's snapshot for fast start-ups.
	snapshots *credindex.SnapshotStore
	api       *httpapi.Server

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start opens the streams and the database (migrating it), starts the projector, the
// credential index and the presence heartbeat in the background and builds the API.
// Close stops them.
func Start(ctx context.Context, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.LastUsedEvery == 0 {
		cfg.LastUsedEvery = 30 * time.Second
	}
	if cfg.IndexSnapshotEvery == 0 {
		cfg.IndexSnapshotEvery = 5 * time.Minute
	}
	if cfg.IndexSnapshotEvents == 0 {
		cfg.IndexSnapshotEvents = 100_000
	}
	if cfg.DataKeyGrace == 0 {
		cfg.DataKeyGrace = time.Minute
	}
	streams, err := streamspec.AsyncAPI()
	if err != nil {
		return nil, err
	}
	store, err := eventstore.Open(ctx, cfg.NATS, eventstore.Config{Replicas: cfg.Replicas, ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout,
		AuditMaxAge: cfg.Audit.Retention})
	if err != nil {
		return nil, err
	}
	vault, err := eventstore.OpenVault(ctx, store.JetStream(), cfg.MasterKey, cfg.Replicas, cfg.WriteTimeout)
	if err != nil {
		return nil, err
	}
	snapshots, err := eventstore.OpenSnapshots(ctx, store.JetStream(), cfg.Replicas)
	if err != nil {
		return nil, err
	}
	presence, err := credindex.OpenPresence(ctx, store.JetStream(), credindex.PresenceConfig{
		ID: cfg.InstanceID, Every: cfg.AnnounceEvery, Replicas: cfg.Replicas, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	pool, err := openDatabase(ctx, cfg.DatabaseURL, cfg.Logger)
	if err != nil {
		return nil, err
	}
	s := &Service{store: store, vault: vault, pool: pool}
	s.index = credindex.New(store, credindex.Config{Pepper: cfg.Pepper, Logger: cfg.Logger, OnApply: presence.Applied, Lease: presence.Lease()})
	if s.snapshots, err = credindex.OpenSnapshotStore(ctx, store.JetStream(), cfg.Replicas, cfg.Logger); err != nil {
		return nil, err
	}
	s.snapshots.Load(ctx, s.index, func(pos uint64, id string) error { return store.HoldsEvent(ctx, pos, id) })
	s.runner = projections.NewRunner(pool, store, projections.RunnerConfig{Name: "views", Logger: cfg.Logger,
		MaxLag: cfg.HTTP.MaxProjectionLag}, projections.Views()...)
	s.costs = projections.NewRunner(pool, store.Usage(), projections.RunnerConfig{Name: projections.CostsProjector, Logger: cfg.Logger,
		MaxLag: cfg.HTTP.MaxProjectionLag}, projections.CostViews()...)
	s.audit = projections.NewRunner(pool, store, projections.RunnerConfig{Name: "audit", Logger: cfg.Logger,
		MaxLag: cfg.HTTP.MaxProjectionLag}, projections.NewAuditView())
	signer, keys, _ := cfg.Audit.Signer()
	origin := cfg.Audit.Origin
	if origin == "" {
		origin = auditlog.DefaultOrigin
	}
	if s.witness, err = auditlog.NewWitness(store, signer, origin, cfg.Logger); err != nil {
		return nil, err
	}
	s.cps = auditlog.NewCheckpointer(auditlog.CheckpointerConfig{Signer: signer, Origin: origin, Every: cfg.Audit.CheckpointEvery, Logger: cfg.Logger},
		s.witness, store)
	if signer == nil {
		cfg.Logger.Warn("no audit signing key (KEYLEDGER_AUDIT_SIGNING_KEY): the audit log's checkpoints are off")
	}
	s.trail = auditlog.Trail{Views: projections.Audit{Pool: pool}, Runner: s.audit, Log: store, Checkpointer: s.cps, Keys: keys,
		Calls: store.Calls(cfg.Logger)}
	read, write := store.Bounds()
	s.app = commands.New(commands.Deps{
		Store: store, Snapshots: snapshots, Vault: vault, Index: s.index, Idempotency: idempotency.Store{Pool: pool, Timeout: write}, LockWait: read + write, Pepper: cfg.Pepper, CacheBytes: cfg.CacheBytes,
	})
	s.api = httpapi.New(cfg.HTTP, httpapi.Deps{
		App: s.app, Views: projections.Queries{Pool: pool, Runner: s.runner, Log: store}, Verifier: s.index, Cluster: presence,
		Audit:        s.trail,
		Usage:        usage.New(usage.Config{MaxAge: cfg.UsageMaxAge}, s.index, s.app.IndexCurrent, store),
		GatewayToken: cfg.GatewayToken, Logger: cfg.Logger, StreamsDocument: streams,
		Ready: map[string]func(context.Context) error{
			"nats": func(context.Context) error {
				if st := cfg.NATS.Status(); st != nats.CONNECTED {
					return fmt.Errorf("nats %s", st)
				}
				return nil
			},
			"postgres":         func(ctx context.Context) error { return pool.Ping(ctx) },
			"projection":       func(ctx context.Context) error { return s.runner.Lagging(ctx, store) },
			"credential_index": func(context.Context) error { return s.index.Caught() },
			"presence":         presence.Healthy,
		},
		Reported: map[string]func(context.Context) error{
			"costs": func(ctx context.Context) error { return s.costs.Lagging(ctx, store.Usage()) },
			"audit": func(ctx context.Context) error { return s.audit.Lagging(ctx, store) },
		},
	})
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	heartbeat := func(ctx context.Context) error { return presence.Run(ctx, s.index) }
	purge := func(ctx context.Context) error { return idempotency.Store{Pool: pool}.Keep(ctx, time.Hour, cfg.Logger) }
	indexSnapshots := func(ctx context.Context) error {
		return s.snapshots.Keep(ctx, s.index, cfg.IndexSnapshotEvents, cfg.IndexSnapshotEvery, func(ctx context.Context) (func(), bool, error) {
			lock, held, err := projections.TryLock(ctx, pool, IndexSnapshotLock)
			if err != nil || !held {
				return nil, false, err
			}
			return func() { lock.Release(ctx) }, true, nil
		})
	}
	lastUsed := func(ctx context.Context) error {
		return flushLastUsed(ctx, s.index, projections.APIKeys{Pool: pool}, cfg.LastUsedEvery, cfg.Logger)
	}
	dataKeys := func(ctx context.Context) error {
		return checkDataKeys(ctx, pool, store, vault, s.app, cfg.DataKeyGrace, cfg.Logger)
	}
	runs := []func(context.Context) error{s.index.Run, s.runner.Run, s.costs.Run, s.audit.Run, s.cps.Run, heartbeat, purge, lastUsed,
		indexSnapshots, dataKeys}
	if signer != nil {
		runs = append(runs, s.witness.Run)
	}
	for _, run := range runs {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); _ = run(runCtx) }()
	}
	return s, nil
}

// minPoolConns is the fewest connections an instance's pool may have.
const minPoolConns = 16

// openDatabase creates the database if missing, connects, and migrates the views and
// the idempotency store.
func openDatabase(ctx context.Context, url string, logger *slog.Logger) (*pgxpool.Pool, error) {
	if err := projections.EnsureDatabase(ctx, url); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	// Up to five connections hold locks for as long as their holder runs (the three
	// projectors, the data key check, a snapshot's save) and each projector commits
	// on one more: leave requests room.
	if cfg.MaxConns < minPoolConns {
		logger.Info("database pool raised to its least size", "pool_max_conns", cfg.MaxConns, "now", minPoolConns)
		cfg.MaxConns = minPoolConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if err := projections.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	if err := idempotency.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Migrate creates the database if missing and applies every migration.
func Migrate(ctx context.Context, url string) error {
	pool, err := openDatabase(ctx, url, slog.Default())
	if err != nil {
		return err
	}
	pool.Close()
	return nil
}

// Handler is the HTTP API.
func (s *Service) Handler() http.Handler { return s.api.Handler() }

// Serve runs the API on ln until ctx ends, then shuts down gracefully.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error { return s.api.Serve(ctx, ln) }

// App is the command handlers.
func (s *Service) App() *commands.App { return s.app }

// Store is the event store (for tools and tests that read the log).
func (s *Service) Store() *eventstore.Store { return s.store }

// Vault is the secret vault.
func (s *Service) Vault() *eventstore.Vault { return s.vault }

// Pool is the database pool.
func (s *Service) Pool() *pgxpool.Pool { return s.pool }

// Index is the data plane's credential index.
func (s *Service) Index() *credindex.Index { return s.index }

// IndexSnapshots is where the credential index's snapshots are kept.
func (s *Service) IndexSnapshots() *credindex.SnapshotStore { return s.snapshots }

// Bootstrap creates an organization and waits until this instance authenticates
// its primary access key, so the secret it returns works at once here.
func (s *Service) Bootstrap(ctx context.Context, b commands.Bootstrap) (commands.Bootstrapped, error) {
	out, err := s.app.Bootstrap(ctx, b)
	if err != nil {
		return out, err
	}
	return out, s.index.WaitFor(ctx, out.Version)
}

// CostsCaughtUp blocks until the cost views include the usage stream up to its
// current end, or the timeout passes.
func (s *Service) CostsCaughtUp(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	head, err := s.store.Usage().Position(ctx)
	if err != nil {
		return err
	}
	return s.WaitCosts(ctx, head)
}

// WaitCosts blocks until the cost views include usage stream position pos.
func (s *Service) WaitCosts(ctx context.Context, pos uint64) error { return s.costs.WaitFor(ctx, pos) }

// Audit answers the auditors (the API's side of the audit log).
func (s *Service) Audit() auditlog.Trail { return s.trail }

// WaitCaughtUp blocks until the views and the credential index have applied the log
// up to its current end, or the timeout passes.
func (s *Service) WaitCaughtUp(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	head, err := s.store.Position(ctx)
	if err != nil {
		return err
	}
	if err := s.runner.WaitFor(ctx, head); err != nil {
		return err
	}
	return s.index.WaitFor(ctx, head)
}

// Close stops the background work and the database pool.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
	s.pool.Close()
}
