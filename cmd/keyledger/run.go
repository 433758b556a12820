package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/service"
)

func runServe(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if err := cfg.Validate(need{nats: true, database: true, secrets: true}); err != nil {
		return err
	}
	nc, err := cfg.connectNATS("keyledger")
	if err != nil {
		return err
	}
	defer nc.Close()
	return serve(ctx, cfg, nc, logger, nil)
}

// serve starts an instance and the API; afterStart runs once everything is up.
func serve(ctx context.Context, cfg Config, nc *nats.Conn, logger *slog.Logger, afterStart func(*service.Service) error) error {
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return addrInUse(cfg.HTTPAddr, "--http-addr", "KEYLEDGER_HTTP_ADDR")
	}
	if err != nil {
		return err
	}
	defer ln.Close()
	master, _ := cfg.masterKey()
	pepper, _ := cfg.pepper()
	svc, err := service.Start(ctx, service.Config{NATS: nc, DatabaseURL: cfg.DatabaseURL, MasterKey: master, Pepper: pepper,
		GatewayToken: cfg.GatewayToken, Replicas: cfg.Replicas, ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout,
		UsageMaxAge: cfg.UsageMaxAge, CacheBytes: int64(cfg.CacheMB) << 20, IndexSnapshotEvery: cfg.IndexSnapshotEvery, Audit: cfg.Audit.service(), Logger: logger})
	if err != nil {
		return err
	}
	defer svc.Close()
	if afterStart != nil {
		if err := afterStart(svc); err != nil {
			return err
		}
	}
	logger.Info("keyledger serving", "addr", ln.Addr().String())
	return svc.Serve(ctx, ln)
}

func runMigrate(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(need{database: true}); err != nil {
		return err
	}
	return service.Migrate(ctx, cfg.DatabaseURL)
}

func runBootstrap(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if err := cfg.Validate(need{nats: true, pepper: true}); err != nil {
		return err
	}
	store, closeStore, err := cfg.openStore(ctx, "keyledger-bootstrap")
	if err != nil {
		return err
	}
	defer closeStore()
	pepper, _ := cfg.pepper()
	app := commands.New(commands.Deps{Store: store, Pepper: pepper})
	b, err := app.Bootstrap(ctx, commands.Bootstrap{OrganizationName: cfg.OrgName, PrimaryName: cfg.PrimaryName})
	if err != nil {
		return err
	}
	printBootstrap(os.Stdout, b)
	return nil
}

// printBootstrap prints the new organization as shell lines: comments, and an
// export a newcomer can paste (or eval) into the shell that calls the API.
func printBootstrap(w io.Writer, b commands.Bootstrapped) {
	fmt.Fprintf(w, "# organization:    %s\n# primary account: %s\n# access key id:   %s\n", b.OrganizationID, b.AccountID, b.AccessKeyID)
	fmt.Fprintf(w, "# The access key secret below is shown once: keep it now.\nexport KEYLEDGER_ACCESS_KEY=%s\n", b.Secret)
}

// printGatewayToken prints the dev gateway token as a shell line; it is shown on
// every start since it is kept in the data dir anyway.
func printGatewayToken(w io.Writer, dataDir, token string) {
	fmt.Fprintf(w, "# The gateway token, for POST /v1/verify (also in %s):\nexport KEYLEDGER_GATEWAY_TOKEN=%s\n",
		filepath.Join(dataDir, "secrets.json"), token)
}

// devSecrets are generated on the first `keyledger dev` and kept in the data dir.
type devSecrets struct {
	MasterKey    string `json:"master_key"`
	Pepper       string `json:"pepper"`
	GatewayToken string `json:"gateway_token"`
	// AuditSigningKey signs the audit checkpoints (note format).
	AuditSigningKey string `json:"audit_signing_key"`
}

// readDevSecrets reads the secrets of a dev data dir; an error wraps os.ErrNotExist
// when there are none yet.
func readDevSecrets(dir string) (devSecrets, error) {
	var s devSecrets
	b, err := os.ReadFile(filepath.Join(dir, "secrets.json"))
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

// loadDevSecrets reads the dev secrets, generating and saving the missing ones.
func loadDevSecrets(dir string) (devSecrets, error) {
	path := filepath.Join(dir, "secrets.json")
	s, err := readDevSecrets(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return s, err
	}
	if s.MasterKey != "" && s.Pepper != "" && s.GatewayToken != "" && s.AuditSigningKey != "" {
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
	if s.AuditSigningKey == "" {
		if s.AuditSigningKey, _, err = audit.GenerateKey("keyledger-dev"); err != nil {
			return s, err
		}
	}
	b, _ := json.MarshalIndent(s, "", "  ")
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
	if cfg.Audit.SigningKey == "" {
		cfg.Audit.SigningKey = secrets.AuditSigningKey
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = defaultDatabaseURL
	}
	cfg.Replicas = 1 // one embedded server holds one replica
	if err := cfg.Validate(need{database: true, secrets: true, dev: true}); err != nil {
		return err
	}
	// Both ports are checked before anything starts: a taken NATS port otherwise
	// shows as "not ready in time" after ten seconds, a taken HTTP port only after
	// the whole start-up.
	if err := devPortsFree(cfg); err != nil {
		return err
	}
	ns, err := eventstore.RunEmbedded(filepath.Join(cfg.DataDir, "nats"), cfg.NATSPort)
	if err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	defer ns.Shutdown()
	logger.Info("embedded NATS with JetStream", "url", ns.ClientURL(), "data", filepath.Join(cfg.DataDir, "nats"))
	nc, err := nats.Connect(ns.ClientURL(), eventstore.ConnectOptions(nats.Name("keyledger-dev"))...)
	if err != nil {
		return err
	}
	defer nc.Close()
	return serve(ctx, cfg, nc, logger, func(svc *service.Service) error {
		n, err := svc.Store().CountSubjects(ctx, domain.AggregateOrganization)
		if err != nil {
			return err
		}
		if n > 0 {
			logger.Info("organization exists; not bootstrapping again")
			fmt.Println("# Existing data: no new access key; the one printed on the first start still works.")
			printGatewayToken(os.Stdout, cfg.DataDir, cfg.GatewayToken)
			return nil
		}
		b, err := svc.Bootstrap(ctx, commands.Bootstrap{OrganizationName: cfg.OrgName, PrimaryName: cfg.PrimaryName})
		if err != nil {
			return err
		}
		if err := svc.WaitCaughtUp(ctx, 10*time.Second); err != nil {
			return err
		}
		printBootstrap(os.Stdout, b)
		printGatewayToken(os.Stdout, cfg.DataDir, cfg.GatewayToken)
		return nil
	})
}
