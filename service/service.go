// Package service wires keyledger's components into one running instance: event
// store, vault, views, access key index, command handlers and the HTTP API. cmd/
// and the component tests start instances through it.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/eventstore"
	httpapi "github.com/keyledger/keyledger/http"
	"github.com/keyledger/keyledger/projections"
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
	HTTP                      httpapi.Config
	Logger                    *slog.Logger
}

// Validate joins every problem.
func (c Config) Validate() error {
	var errs []error
	if c.NATS == nil {
		errs = append(errs, errors.New("service: no NATS connection"))
	}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("service: no database URL"))
	}
	if len(c.MasterKey) != 32 {
		errs = append(errs, errors.New("service: master key must be 32 bytes"))
	}
	if len(c.Pepper) < 32 {
		errs = append(errs, errors.New("service: pepper must be at least 32 bytes"))
	}
	if len(c.GatewayToken) < 16 {
		errs = append(errs, errors.New("service: gateway token must be at least 16 characters"))
	}
	return errors.Join(errs...)
}

// Service is a running instance.
type Service struct {
	Store    *eventstore.Store
	Vault    *eventstore.Vault
	Pool     *pgxpool.Pool
	App      *commands.App
	Runner   *projections.Runner
	Index    *projections.CredentialIndex
	Presence *eventstore.Presence
	API      *httpapi.Server

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	applied chan struct{} // the index applied a batch
}

// announce publishes the index's applied position after every applied batch and at
// least every heartbeat, until ctx ends; then it leaves the live set.
func (s *Service) announce(ctx context.Context, every time.Duration, logger *slog.Logger) error {
	// At most one announcement per minGap: under a stream of writes, batches are
	// coalesced instead of costing a KV write each.
	const minGap = 10 * time.Millisecond
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if err := s.Presence.Announce(ctx, s.Index.Position(), s.Index.Ready()); err != nil && ctx.Err() == nil {
			logger.Warn("presence announce failed", "err", err)
		}
		last := time.Now()
		select {
		case <-ctx.Done():
			leave, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = s.Presence.Leave(leave)
			return ctx.Err()
		case <-tick.C:
		case <-s.applied:
			if wait := minGap - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
			}
		}
	}
}

// Start opens the streams and the database (migrating it), starts the projector and
// the access key index in the background and builds the API. Close stops them.
func Start(ctx context.Context, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	store, err := eventstore.Open(ctx, cfg.NATS, eventstore.Config{Replicas: cfg.Replicas, ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout})
	if err != nil {
		return nil, err
	}
	vault, err := eventstore.OpenVault(ctx, store.JetStream(), cfg.MasterKey, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	if err := projections.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if err := projections.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	if cfg.InstanceID == "" {
		cfg.InstanceID = "kl-" + strings.ToLower(ulid.Make().String())
	}
	if cfg.AnnounceEvery == 0 {
		cfg.AnnounceEvery = time.Second
	}
	snapshots, err := eventstore.OpenSnapshots(ctx, store.JetStream(), cfg.Replicas)
	if err != nil {
		pool.Close()
		return nil, err
	}
	presence, err := eventstore.OpenPresence(ctx, store.JetStream(), cfg.InstanceID, 5*cfg.AnnounceEvery, cfg.Replicas)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s := &Service{Store: store, Vault: vault, Pool: pool, Presence: presence, applied: make(chan struct{}, 1)}
	s.Index = projections.NewCredentialIndex(store, projections.IndexConfig{Pepper: cfg.Pepper, Logger: cfg.Logger,
		OnApply: func(uint64) {
			select {
			case s.applied <- struct{}{}:
			default:
			}
		}})
	s.Runner = projections.NewRunner(pool, store, projections.RunnerConfig{Name: "views", Logger: cfg.Logger}, projections.Views()...)
	s.App = commands.New(commands.Deps{
		Store: store, Snapshots: snapshots, Vault: vault, Index: s.Index, Idempotency: projections.Idempotency{Pool: pool}, Pepper: cfg.Pepper,
	})
	s.API = httpapi.New(cfg.HTTP, httpapi.Deps{
		App: s.App, Runner: s.Runner, Index: s.Index, Presence: presence, GatewayToken: cfg.GatewayToken, Logger: cfg.Logger,
		Workspaces: projections.Workspaces{Pool: pool}, Members: projections.Members{Pool: pool},
		Accounts: projections.Accounts{Pool: pool}, APIKeys: projections.APIKeys{Pool: pool}, Roles: projections.Roles{Pool: pool},
		Ready: map[string]func(context.Context) error{
			"nats": func(context.Context) error {
				if st := cfg.NATS.Status(); st != nats.CONNECTED {
					return fmt.Errorf("nats %s", st)
				}
				return nil
			},
			"postgres": func(ctx context.Context) error { return pool.Ping(ctx) },
			"projection": func(ctx context.Context) error {
				return s.projectionLag(ctx, lagLimit(cfg.HTTP.MaxProjectionLag))
			},
			"presence": func(context.Context) error { return presence.Healthy(3 * cfg.AnnounceEvery) },
			"credential_index": func(context.Context) error {
				if !s.Index.Ready() {
					return fmt.Errorf("credential index catching up (at position %d)", s.Index.Position())
				}
				return nil
			},
		},
	})
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	announce := func(ctx context.Context) error { return s.announce(ctx, cfg.AnnounceEvery, cfg.Logger) }
	for _, run := range []func(context.Context) error{s.Index.Run, s.Runner.Run, announce} {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); _ = run(runCtx) }()
	}
	return s, nil
}

func lagLimit(v uint64) uint64 {
	if v == 0 {
		return 10000
	}
	return v
}

func (s *Service) projectionLag(ctx context.Context, max uint64) error {
	head, err := s.Store.Position(ctx)
	if err != nil {
		return err
	}
	cp, err := s.Runner.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if head > cp && head-cp > max {
		return fmt.Errorf("views are %d events behind the log", head-cp)
	}
	return nil
}

// Handler is the HTTP API.
func (s *Service) Handler() http.Handler { return s.API.Handler() }

// WaitCaughtUp blocks until the views and the access key index have applied the
// log up to its current end, or the timeout passes.
func (s *Service) WaitCaughtUp(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	head, err := s.Store.Position(ctx)
	if err != nil {
		return err
	}
	if err := s.Runner.WaitFor(ctx, head); err != nil {
		return err
	}
	return s.Index.WaitFor(ctx, head)
}

// Close stops the background work and the database pool.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
	s.Pool.Close()
}
