package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/eventstore/natstest"
	"github.com/keyledger/keyledger/projections"
	"github.com/keyledger/keyledger/service"
)

func runServe(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if err := cfg.Validate(need{nats: true, database: true, secrets: true}); err != nil {
		return err
	}
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("keyledger"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	return serve(ctx, cfg, nc, logger, nil)
}

// serve starts an instance and the API; afterStart runs once everything is up.
func serve(ctx context.Context, cfg Config, nc *nats.Conn, logger *slog.Logger, afterStart func(*service.Service) error) error {
	master, _ := cfg.masterKey()
	pepper, _ := cfg.pepper()
	svc, err := service.Start(ctx, service.Config{NATS: nc, DatabaseURL: cfg.DatabaseURL, MasterKey: master, Pepper: pepper,
		GatewayToken: cfg.GatewayToken, Replicas: cfg.Replicas, Logger: logger})
	if err != nil {
		return err
	}
	defer svc.Close()
	if afterStart != nil {
		if err := afterStart(svc); err != nil {
			return err
		}
	}
	logger.Info("keyledger serving", "addr", cfg.HTTPAddr)
	return svc.API.Serve(ctx, cfg.HTTPAddr)
}

func runMigrate(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(need{database: true}); err != nil {
		return err
	}
	if err := projections.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	return projections.Migrate(ctx, pool)
}

func runBootstrap(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if err := cfg.Validate(need{nats: true, pepper: true}); err != nil {
		return err
	}
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("keyledger-bootstrap"))
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	store, err := eventstore.Open(ctx, nc, eventstore.Config{Replicas: cfg.Replicas})
	if err != nil {
		return err
	}
	pepper, _ := cfg.pepper()
	app := commands.New(commands.Deps{Store: store, Pepper: pepper})
	b, err := app.Bootstrap(ctx, commands.Bootstrap{OrganizationName: cfg.OrgName, PrimaryName: cfg.PrimaryName})
	if err != nil {
		return err
	}
	printBootstrap(b)
	return nil
}

func printBootstrap(b commands.Bootstrapped) {
	fmt.Printf("organization:        %s\nprimary account:     %s\naccess key id:       %s\n", b.OrganizationID, b.AccountID, b.AccessKeyID)
	fmt.Printf("access key secret (shown once, keep it now):\nKEYLEDGER_ACCESS_KEY=%s\n", b.Secret)
}

// devSecrets are generated on the first `keyledger dev` and kept in the data dir.
type devSecrets struct {
	MasterKey    string `json:"master_key"`
	Pepper       string `json:"pepper"`
	GatewayToken string `json:"gateway_token"`
}

func loadDevSecrets(dir string) (devSecrets, error) {
	path := filepath.Join(dir, "secrets.json")
	var s devSecrets
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &s); err != nil {
			return s, err
		}
	case !errors.Is(err, os.ErrNotExist):
		return s, err
	}
	if s.MasterKey != "" && s.Pepper != "" && s.GatewayToken != "" {
		return s, nil
	}
	if s.MasterKey == "" {
		s.MasterKey = randomB64(32)
	}
	if s.Pepper == "" {
		s.Pepper = randomB64(32)
	}
	if s.GatewayToken == "" { // added by a later version: fill it in
		s.GatewayToken = "klg_" + strings.TrimRight(base64.URLEncoding.EncodeToString(randomBytes(32)), "=")
	}
	b, _ = json.MarshalIndent(s, "", "  ")
	return s, os.WriteFile(path, b, 0o600)
}

func randomB64(n int) string { return base64.StdEncoding.EncodeToString(randomBytes(n)) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func runDev(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	secrets, err := loadDevSecrets(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("dev secrets: %w", err)
	}
	if cfg.MasterKey == "" {
		cfg.MasterKey = secrets.MasterKey
	}
	if cfg.Pepper == "" {
		cfg.Pepper = secrets.Pepper
	}
	if cfg.GatewayToken == "" {
		cfg.GatewayToken = secrets.GatewayToken
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = defaultDatabaseURL
	}
	if err := cfg.Validate(need{database: true, secrets: true}); err != nil {
		return err
	}
	ns, err := natstest.Run(filepath.Join(cfg.DataDir, "nats"), cfg.NATSPort)
	if err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	defer ns.Shutdown()
	logger.Info("embedded NATS with JetStream", "url", ns.ClientURL(), "data", filepath.Join(cfg.DataDir, "nats"))
	nc, err := nats.Connect(ns.ClientURL(), nats.Name("keyledger-dev"))
	if err != nil {
		return err
	}
	defer nc.Close()
	return serve(ctx, cfg, nc, logger, func(svc *service.Service) error {
		n, err := svc.Store.CountSubjects(ctx, domain.AggregateOrganization)
		if err != nil {
			return err
		}
		if n > 0 {
			logger.Info("organization exists; not bootstrapping again")
			fmt.Printf("gateway token (also in %s):\nKEYLEDGER_GATEWAY_TOKEN=%s\n", filepath.Join(cfg.DataDir, "secrets.json"), cfg.GatewayToken)
			return nil
		}
		b, err := svc.App.Bootstrap(ctx, commands.Bootstrap{OrganizationName: cfg.OrgName, PrimaryName: cfg.PrimaryName})
		if err != nil {
			return err
		}
		if err := svc.WaitCaughtUp(ctx, 10*time.Second); err != nil {
			return err
		}
		for svc.Index.Position() < b.Version { // so the printed secret works at once
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		printBootstrap(b)
		fmt.Printf("gateway token (also in %s):\nKEYLEDGER_GATEWAY_TOKEN=%s\n", filepath.Join(cfg.DataDir, "secrets.json"), cfg.GatewayToken)
		return nil
	})
}
