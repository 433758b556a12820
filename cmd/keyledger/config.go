package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"
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
	DataDir                   string // dev (and verify, which reads the dev secrets there)
	NATSPort                  int    // dev only
	OrgName                   string // bootstrap
	PrimaryName               string // bootstrap
	Verify                    VerifyConfig
}

const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/keyledger?sslmode=disable"

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// The flags, one registration function each, so that a subcommand lists exactly the
// ones it reads and `keyledger <command> -h` shows nothing it would ignore.

func (c *Config) natsURLFlag(fs *flag.FlagSet) {
	fs.StringVar(&c.NATSURL, "nats-url", env("KEYLEDGER_NATS_URL", ""), "NATS server URL (KEYLEDGER_NATS_URL)")
}

func (c *Config) replicasFlag(fs *flag.FlagSet) {
	fs.IntVar(&c.Replicas, "replicas", envInt("KEYLEDGER_REPLICAS", 1), "JetStream replicas of the streams: 1, 3 or 5 (KEYLEDGER_REPLICAS)")
}

func (c *Config) databaseURLFlag(fs *flag.FlagSet, usage string) {
	fs.StringVar(&c.DatabaseURL, "database-url", env("KEYLEDGER_DATABASE_URL", ""), usage+" (KEYLEDGER_DATABASE_URL)")
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
	fs.Var(secret{&c.MasterKey}, "master-key", usage+" (KEYLEDGER_MASTER_KEY)")
	c.MasterKey = env("KEYLEDGER_MASTER_KEY", "")
}

func (c *Config) pepperFlag(fs *flag.FlagSet, usage string) {
	fs.Var(secret{&c.Pepper}, "pepper", usage+" (KEYLEDGER_PEPPER)")
	c.Pepper = env("KEYLEDGER_PEPPER", "")
}

func (c *Config) gatewayTokenFlag(fs *flag.FlagSet, usage string) {
	fs.Var(secret{&c.GatewayToken}, "gateway-token", usage+" (KEYLEDGER_GATEWAY_TOKEN)")
	c.GatewayToken = env("KEYLEDGER_GATEWAY_TOKEN", "")
}

func (c *Config) dataDirFlag(fs *flag.FlagSet, usage string) {
	fs.StringVar(&c.DataDir, "data-dir", env("KEYLEDGER_DATA_DIR", ".keyledger"), usage+" (KEYLEDGER_DATA_DIR)")
}

func (c *Config) timeoutFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.ReadTimeout, "nats-read-timeout", envDuration("KEYLEDGER_NATS_READ_TIMEOUT", 2*time.Second),
		"bound of each read on NATS; a stalled NATS answers 503 after it (KEYLEDGER_NATS_READ_TIMEOUT)")
	fs.DurationVar(&c.WriteTimeout, "nats-write-timeout", envDuration("KEYLEDGER_NATS_WRITE_TIMEOUT", 5*time.Second),
		"bound of each append on NATS, acknowledgement included (KEYLEDGER_NATS_WRITE_TIMEOUT)")
}

func (c *Config) orgFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.OrgName, "org-name", env("KEYLEDGER_ORG_NAME", "default"), "name of the organization created (KEYLEDGER_ORG_NAME)")
	fs.StringVar(&c.PrimaryName, "primary-name", env("KEYLEDGER_PRIMARY_NAME", "admin"), "name of its primary account (KEYLEDGER_PRIMARY_NAME)")
}

func (c *Config) devFlags(fs *flag.FlagSet) {
	c.databaseURLFlag(fs, "PostgreSQL URL; default "+defaultDatabaseURL+", created if missing")
	c.httpAddrFlag(fs)
	c.masterKeyFlag(fs, "base64 32-byte `key` wrapping data keys; default: generated, kept in the data dir")
	c.pepperFlag(fs, "base64 `secret` (>= 32 bytes) keying credential HMACs; default: generated, kept in the data dir")
	c.gatewayTokenFlag(fs, "service `token` of gateways calling /v1/verify; default: generated, kept in the data dir")
	c.dataDirFlag(fs, "where the embedded NATS data and the generated secrets (secrets.json) live")
	fs.IntVar(&c.NATSPort, "nats-port", envInt("KEYLEDGER_DEV_NATS_PORT", 14222), "port of the embedded NATS server on 127.0.0.1 (KEYLEDGER_DEV_NATS_PORT)")
	c.timeoutFlags(fs)
	c.orgFlags(fs)
}

func (c *Config) serveFlags(fs *flag.FlagSet) {
	c.natsURLFlag(fs)
	c.databaseURLFlag(fs, "PostgreSQL URL, created if missing")
	c.httpAddrFlag(fs)
	c.masterKeyFlag(fs, "base64 32-byte `key` wrapping data keys")
	c.pepperFlag(fs, "base64 `secret` (>= 32 bytes) keying credential HMACs")
	c.gatewayTokenFlag(fs, "service `token` of gateways calling /v1/verify, at least 16 characters")
	c.replicasFlag(fs)
	c.timeoutFlags(fs)
}

func (c *Config) migrateFlags(fs *flag.FlagSet) {
	c.databaseURLFlag(fs, "PostgreSQL URL, created if missing")
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
func (c *Config) Validate(n need) error {
	var errs []error
	if n.nats && c.NATSURL == "" {
		errs = append(errs, errors.New("KEYLEDGER_NATS_URL (--nats-url) is required"))
	}
	if n.database && c.DatabaseURL == "" {
		errs = append(errs, errors.New("KEYLEDGER_DATABASE_URL (--database-url) is required"))
	}
	if n.secrets {
		if _, err := c.masterKey(); err != nil {
			errs = append(errs, err)
		}
	}
	if n.secrets || n.pepper {
		if _, err := c.pepper(); err != nil {
			errs = append(errs, err)
		}
	}
	if n.secrets && len(c.GatewayToken) < 16 {
		errs = append(errs, errors.New("KEYLEDGER_GATEWAY_TOKEN (--gateway-token) is required: at least 16 random characters"))
	}
	// Replicas matter only on a NATS of one's own: dev fixes them at 1, since its
	// one embedded server holds one replica.
	if n.nats && c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("KEYLEDGER_REPLICAS must be 1, 3 or 5, got %d", c.Replicas))
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
		return nil, errors.New("KEYLEDGER_MASTER_KEY (--master-key) is required: base64 of 32 random bytes")
	}
	b, err := base64.StdEncoding.DecodeString(c.MasterKey)
	if err != nil || len(b) != 32 {
		return nil, errors.New("KEYLEDGER_MASTER_KEY must be base64 of exactly 32 bytes")
	}
	return b, nil
}

func (c *Config) pepper() ([]byte, error) {
	if c.Pepper == "" {
		return nil, errors.New("KEYLEDGER_PEPPER (--pepper) is required: base64 of at least 32 random bytes")
	}
	b, err := base64.StdEncoding.DecodeString(c.Pepper)
	if err != nil || len(b) < 32 {
		return nil, errors.New("KEYLEDGER_PEPPER must be base64 of at least 32 bytes")
	}
	return b, nil
}
