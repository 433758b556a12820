package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/service"
	"github.com/nats-io/nats.go"
)

// Config is the configuration of every subcommand. Each subcommand registers only the
// flags it reads (see subcommand.flags), each defaulting to its KEYLEDGER_* variable;
// a field whose flag a subcommand does not register stays at its zero value.
type Config struct {
	NATSURL      string
	DatabaseURL  string
	HTTPAddr     string
	MasterKey    string // base64 of 32 bytes
	Pepper       string // base64 of at least 32 bytes
	GatewayToken string // authenticates gateways on /v1/verify
	Replicas     int
	// ReadTimeout and WriteTimeout bound each read and each append on NATS: a
	// stalled NATS answers 503 after them.
	ReadTimeout, WriteTimeout time.Duration
	UsageMaxAge               time.Duration // dev, serve: the oldest call /v1/usage takes
	CacheMB                   int           // dev, serve: the aggregate cache's budget per kind
	IndexSnapshotEvery        time.Duration // dev, serve: how often the credential index's snapshot is saved
	DataDir                   string        // dev (and verify, which reads the dev secrets there)
	NATSPort                  int           // dev only
	OrgName                   string        // bootstrap
	PrimaryName               string        // bootstrap
	Verify                    VerifyConfig
	UsageSend                 UsageSendConfig
	Reconcile                 ReconcileConfig
	Billing                   BillingConfig
	Audit                     AuditCLIConfig

	// envErrs are the problems of the environment met while the flags took their
	// defaults from it (a malformed number, a secret file that cannot be read, ...),
	// one per variable; Validate reports them with the others.
	envErrs []envError
}

// envError is a problem with the variable name (for a secret, the name of its value
// variable, as in KEYLEDGER_PEPPER, even when the problem is with KEYLEDGER_PEPPER_FILE).
type envError struct {
	name string
	err  error
}

const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/keyledger?sslmode=disable"

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// badEnv records a problem of the variable name.
func (c *Config) badEnv(name string, err error) {
	c.envErrs = append(c.envErrs, envError{name, err})
}

// envIsBad tells whether the variable name has a problem recorded, whose message
// then stands for it alone (not also "is required").
func (c *Config) envIsBad(name string) bool {
	for _, e := range c.envErrs {
		if e.name == name {
			return true
		}
	}
	return false
}

// envDuration is the duration in the variable name, def when it is unset or empty. A
// malformed one is recorded, never replaced by the default in silence.
func (c *Config) envDuration(name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		c.badEnv(name, fmt.Errorf("%s=%q is not a duration such as 2s or 500ms", name, v))
		return def
	}
	return d
}

// envInt is the integer in the variable name, def when it is unset or empty. A
// malformed one is recorded, never replaced by the default in silence.
func (c *Config) envInt(name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		c.badEnv(name, fmt.Errorf("%s=%q is not an integer", name, v))
		return def
	}
	return n
}

// envSecret is a secret from its variable name, or from the file that fileName names,
// as Docker and Kubernetes mount secrets: the file's trailing newlines are not part
// of it. An empty variable counts as unset. Both set, a file that cannot be read and
// an empty file are recorded as problems; the secret is then empty.
func (c *Config) envSecret(name, fileName string) string {
	v := os.Getenv(name)
	path := os.Getenv(fileName)
	switch {
	case path == "":
		return v
	case v != "":
		c.badEnv(name, fmt.Errorf("both %s and %s are set: set one of them", name, fileName))
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		c.badEnv(name, fmt.Errorf("%s: cannot read %s: %w", fileName, path, err))
		return ""
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		c.badEnv(name, fmt.Errorf("%s: %s is empty", fileName, path))
	}
	return s
}

// The flags, one registration function each, so that a subcommand lists exactly the
// ones it reads and `keyledger <command> -h` shows nothing it would ignore.

func (c *Config) natsURLFlag(fs *flag.FlagSet) {
	fs.StringVar(&c.NATSURL, "nats-url", env("KEYLEDGER_NATS_URL", ""), "NATS server URL (KEYLEDGER_NATS_URL)")
}

func (c *Config) replicasFlag(fs *flag.FlagSet) {
	fs.IntVar(&c.Replicas, "replicas", c.envInt("KEYLEDGER_REPLICAS", 1), "JetStream replicas of the streams: 1, 3 or 5 (KEYLEDGER_REPLICAS)")
}

// databaseURLFlag: the URL holds the database password, so -h shows no default of
// it, as for the other secrets.
func (c *Config) databaseURLFlag(fs *flag.FlagSet, usage string) {
	fs.Var(secret{&c.DatabaseURL}, "database-url", usage+" (KEYLEDGER_DATABASE_URL or KEYLEDGER_DATABASE_URL_FILE)")
	c.DatabaseURL = c.envSecret("KEYLEDGER_DATABASE_URL", "KEYLEDGER_DATABASE_URL_FILE")
}

func (c *Config) httpAddrFlag(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTPAddr, "http-addr", env("KEYLEDGER_HTTP_ADDR", ":8080"), "HTTP listen address (KEYLEDGER_HTTP_ADDR)")
}

// secret is a string flag whose value, often taken from the environment, -h never
// prints as a default: the dev secrets are exported into developers' shells.
type secret struct{ p *string }

func (s secret) String() string { return "" }

func (s secret) Set(v string) error {
	*s.p = v
	return nil
}

func (c *Config) masterKeyFlag(fs *flag.FlagSet, usage string) {
	fs.Var(secret{&c.MasterKey}, "master-key", usage+" (KEYLEDGER_MASTER_KEY or KEYLEDGER_MASTER_KEY_FILE)")
	c.MasterKey = c.envSecret("KEYLEDGER_MASTER_KEY", "KEYLEDGER_MASTER_KEY_FILE")
}

func (c *Config) pepperFlag(fs *flag.FlagSet, usage string) {
	fs.Var(secret{&c.Pepper}, "pepper", usage+" (KEYLEDGER_PEPPER or KEYLEDGER_PEPPER_FILE)")
	c.Pepper = c.envSecret("KEYLEDGER_PEPPER", "KEYLEDGER_PEPPER_FILE")
}

func (c *Config) gatewayTokenFlag(fs *flag.FlagSet, usage string) {
	fs.Var(secret{&c.GatewayToken}, "gateway-token", usage+" (KEYLEDGER_GATEWAY_TOKEN or KEYLEDGER_GATEWAY_TOKEN_FILE)")
	c.GatewayToken = c.envSecret("KEYLEDGER_GATEWAY_TOKEN", "KEYLEDGER_GATEWAY_TOKEN_FILE")
}

func (c *Config) dataDirFlag(fs *flag.FlagSet, usage string) {
	fs.StringVar(&c.DataDir, "data-dir", env("KEYLEDGER_DATA_DIR", ".keyledger"), usage+" (KEYLEDGER_DATA_DIR)")
}

func (c *Config) timeoutFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.ReadTimeout, "nats-read-timeout", c.envDuration("KEYLEDGER_NATS_READ_TIMEOUT", 2*time.Second),
		"bound of each read on NATS; a stalled NATS answers 503 after it (KEYLEDGER_NATS_READ_TIMEOUT)")
	fs.DurationVar(&c.WriteTimeout, "nats-write-timeout", c.envDuration("KEYLEDGER_NATS_WRITE_TIMEOUT", 5*time.Second),
		"bound of each append on NATS, acknowledgement included (KEYLEDGER_NATS_WRITE_TIMEOUT)")
}

func (c *Config) usageMaxAgeFlag(fs *flag.FlagSet) {
	fs.DurationVar(&c.UsageMaxAge, "usage-max-age", c.envDuration("KEYLEDGER_USAGE_MAX_AGE", 35*24*time.Hour),
		"how old a call may be when a gateway reports its usage (KEYLEDGER_USAGE_MAX_AGE)")
	fs.IntVar(&c.CacheMB, "aggregate-cache-mb", c.envInt("KEYLEDGER_AGGREGATE_CACHE_MB", commands.DefaultCacheBytes>>20),
		"estimated MiB of workspaces, and as much of organizations, an instance keeps in memory (KEYLEDGER_AGGREGATE_CACHE_MB)")
	fs.DurationVar(&c.IndexSnapshotEvery, "index-snapshot-every", c.envDuration("KEYLEDGER_INDEX_SNAPSHOT_EVERY", 5*time.Minute),
		"how often the credential index's snapshot is saved if it moved, besides every 100,000 events (KEYLEDGER_INDEX_SNAPSHOT_EVERY)")
}

func (c *Config) orgFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.OrgName, "org-name", env("KEYLEDGER_ORG_NAME", "default"), "name of the organization created (KEYLEDGER_ORG_NAME)")
	fs.StringVar(&c.PrimaryName, "primary-name", env("KEYLEDGER_PRIMARY_NAME", "admin"), "name of its primary account (KEYLEDGER_PRIMARY_NAME)")
}

func (c *Config) devFlags(fs *flag.FlagSet) {
	c.databaseURLFlag(fs, "PostgreSQL `URL`; default "+defaultDatabaseURL+", created if missing")
	c.httpAddrFlag(fs)
	c.masterKeyFlag(fs, "base64 32-byte `key` wrapping data keys; default: generated, kept in the data dir")
	c.pepperFlag(fs, "base64 `secret` (>= 32 bytes) keying credential HMACs; default: generated, kept in the data dir")
	c.gatewayTokenFlag(fs, "service `token` of gateways calling /v1/verify; default: generated, kept in the data dir")
	c.dataDirFlag(fs, "where the embedded NATS data and the generated secrets (secrets.json) live")
	fs.IntVar(&c.NATSPort, "nats-port", c.envInt("KEYLEDGER_DEV_NATS_PORT", 14222), "port of the embedded NATS server on 127.0.0.1 (KEYLEDGER_DEV_NATS_PORT)")
	c.timeoutFlags(fs)
	c.usageMaxAgeFlag(fs)
	c.orgFlags(fs)
	c.auditSigningFlags(fs, "audit checkpoints' Ed25519 note signing `key`; default: generated, kept in the data dir")
}

func (c *Config) serveFlags(fs *flag.FlagSet) {
	c.natsURLFlag(fs)
	c.databaseURLFlag(fs, "PostgreSQL `URL`, created if missing")
	c.httpAddrFlag(fs)
	c.masterKeyFlag(fs, "base64 32-byte `key` wrapping data keys")
	c.pepperFlag(fs, "base64 `secret` (>= 32 bytes) keying credential HMACs")
	c.gatewayTokenFlag(fs, "service `token` of gateways calling /v1/verify, at least 16 characters")
	c.replicasFlag(fs)
	c.timeoutFlags(fs)
	c.usageMaxAgeFlag(fs)
	c.auditSigningFlags(fs, "audit checkpoints' Ed25519 note signing `key` (keyledger audit keygen)")
}

func (c *Config) migrateFlags(fs *flag.FlagSet) {
	c.databaseURLFlag(fs, "PostgreSQL `URL`, created if missing")
}

func (c *Config) bootstrapFlags(fs *flag.FlagSet) {
	c.natsURLFlag(fs)
	c.pepperFlag(fs, "base64 `secret` (>= 32 bytes) keying credential HMACs: the one the servers use")
	c.replicasFlag(fs)
	c.orgFlags(fs)
}

// need lists what a subcommand requires.
type need struct{ nats, database, secrets, pepper, dev bool }

// Validate joins every problem, so an operator fixes them in one go.
//
// The problems of the environment met while parsing come first: those of the
// variables a subcommand reads, since it registers only their flags. A flag given on
// the command line does not excuse a malformed variable.
func (c *Config) Validate(n need) error {
	var errs []error
	for _, e := range c.envErrs {
		errs = append(errs, e.err)
	}
	if n.nats && c.NATSURL == "" {
		errs = append(errs, errors.New("KEYLEDGER_NATS_URL (--nats-url) is required"))
	}
	if n.database && c.DatabaseURL == "" && !c.envIsBad("KEYLEDGER_DATABASE_URL") {
		errs = append(errs, errors.New("KEYLEDGER_DATABASE_URL or KEYLEDGER_DATABASE_URL_FILE (--database-url) is required"))
	}
	if n.secrets && !c.envIsBad("KEYLEDGER_MASTER_KEY") {
		if _, err := c.masterKey(); err != nil {
			errs = append(errs, err)
		}
	}
	if (n.secrets || n.pepper) && !c.envIsBad("KEYLEDGER_PEPPER") {
		if _, err := c.pepper(); err != nil {
			errs = append(errs, err)
		}
	}
	if n.secrets && len(c.GatewayToken) < service.MinGatewayTokenLen && !c.envIsBad("KEYLEDGER_GATEWAY_TOKEN") {
		errs = append(errs, fmt.Errorf("KEYLEDGER_GATEWAY_TOKEN or KEYLEDGER_GATEWAY_TOKEN_FILE (--gateway-token) is required: at least %d random characters", service.MinGatewayTokenLen))
	}
	// Replicas matter only on a NATS of one's own: dev fixes them at 1, since its
	// one embedded server holds one replica.
	if n.nats && c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("KEYLEDGER_REPLICAS must be 1, 3 or 5, got %d", c.Replicas))
	}
	if !c.envIsBad("KEYLEDGER_AUDIT_SIGNING_KEY") {
		if _, _, err := c.Audit.service().Signer(); err != nil {
			errs = append(errs, fmt.Errorf("KEYLEDGER_AUDIT_SIGNING_KEY or KEYLEDGER_AUDIT_SIGNING_KEY_FILE (--audit-signing-key): %w", err))
		}
	}
	if c.UsageMaxAge < 0 {
		errs = append(errs, errors.New("KEYLEDGER_USAGE_MAX_AGE must not be negative"))
	}
	if c.IndexSnapshotEvery < 0 {
		errs = append(errs, errors.New("KEYLEDGER_INDEX_SNAPSHOT_EVERY must not be negative"))
	}
	if c.CacheMB < 0 {
		errs = append(errs, errors.New("KEYLEDGER_AGGREGATE_CACHE_MB must not be negative"))
	}
	if c.ReadTimeout < 0 || c.WriteTimeout < 0 {
		errs = append(errs, errors.New("KEYLEDGER_NATS_READ_TIMEOUT and KEYLEDGER_NATS_WRITE_TIMEOUT must not be negative"))
	}
	if n.dev {
		// Port 0 would make the embedded nats-server fall back to 4222, the port of
		// any real NATS on the machine.
		if c.NATSPort < 1 || c.NATSPort > 65535 {
			errs = append(errs, fmt.Errorf("KEYLEDGER_DEV_NATS_PORT (--nats-port) must be a port from 1 to 65535, got %d", c.NATSPort))
		}
		if c.DataDir == "" {
			errs = append(errs, errors.New("KEYLEDGER_DATA_DIR (--data-dir) must not be empty"))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) masterKey() ([]byte, error) {
	if c.MasterKey == "" {
		return nil, fmt.Errorf("KEYLEDGER_MASTER_KEY or KEYLEDGER_MASTER_KEY_FILE (--master-key) is required: base64 of %d random bytes", service.MasterKeyLen)
	}
	b, err := base64.StdEncoding.DecodeString(c.MasterKey)
	if err != nil || len(b) != service.MasterKeyLen {
		return nil, fmt.Errorf("KEYLEDGER_MASTER_KEY must be base64 of exactly %d bytes", service.MasterKeyLen)
	}
	return b, nil
}

func (c *Config) pepper() ([]byte, error) {
	if c.Pepper == "" {
		return nil, fmt.Errorf("KEYLEDGER_PEPPER or KEYLEDGER_PEPPER_FILE (--pepper) is required: base64 of at least %d random bytes", service.MinPepperLen)
	}
	b, err := base64.StdEncoding.DecodeString(c.Pepper)
	if err != nil || len(b) < service.MinPepperLen {
		return nil, fmt.Errorf("KEYLEDGER_PEPPER must be base64 of at least %d bytes", service.MinPepperLen)
	}
	return b, nil
}

// openStore dials the NATS of the configuration as name and opens the event store
// on it; closeStore closes the connection.
func (c Config) openStore(ctx context.Context, name string) (store *eventstore.Store, closeStore func(), err error) {
	nc, err := c.connectNATS(name)
	if err != nil {
		return nil, nil, err
	}
	if store, err = eventstore.Open(ctx, nc, eventstore.Config{Replicas: c.Replicas}); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return store, nc.Close, nil
}

// connectNATS dials the NATS of the configuration as name, without reconnect
// buffering (eventstore.ConnectOptions).
func (c Config) connectNATS(name string) (*nats.Conn, error) {
	nc, err := nats.Connect(c.NATSURL, eventstore.ConnectOptions(nats.Name(name))...)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	return nc, nil
}
