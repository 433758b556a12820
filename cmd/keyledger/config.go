package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
)

// Config is the configuration of every subcommand; each flag defaults to its
// KEYLEDGER_* environment variable.
type Config struct {
	NATSURL      string
	DatabaseURL  string
	HTTPAddr     string
	MasterKey    string // base64 of 32 bytes
	Pepper       string // base64 of at least 32 bytes
	GatewayToken string // authenticates gateways on /v1/verify
	Replicas     int
	DataDir      string // dev only
	NATSPort     int    // dev only
	OrgName      string // bootstrap
	PrimaryName  string // bootstrap
}

const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/keyledger?sslmode=disable"

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
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

func (c *Config) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.NATSURL, "nats-url", env("KEYLEDGER_NATS_URL", ""), "NATS server URL (KEYLEDGER_NATS_URL)")
	fs.StringVar(&c.DatabaseURL, "database-url", env("KEYLEDGER_DATABASE_URL", ""), "PostgreSQL URL (KEYLEDGER_DATABASE_URL)")
	fs.StringVar(&c.HTTPAddr, "http-addr", env("KEYLEDGER_HTTP_ADDR", ":8080"), "HTTP listen address (KEYLEDGER_HTTP_ADDR)")
	fs.StringVar(&c.MasterKey, "master-key", env("KEYLEDGER_MASTER_KEY", ""), "base64 32-byte key wrapping data keys (KEYLEDGER_MASTER_KEY)")
	fs.StringVar(&c.Pepper, "pepper", env("KEYLEDGER_PEPPER", ""), "base64 secret (>= 32 bytes) keying credential HMACs (KEYLEDGER_PEPPER)")
	fs.StringVar(&c.GatewayToken, "gateway-token", env("KEYLEDGER_GATEWAY_TOKEN", ""), "service token of gateways calling /v1/verify, at least 16 characters (KEYLEDGER_GATEWAY_TOKEN)")
	fs.IntVar(&c.Replicas, "replicas", envInt("KEYLEDGER_REPLICAS", 1), "JetStream replicas of the streams (KEYLEDGER_REPLICAS)")
	fs.StringVar(&c.DataDir, "data-dir", env("KEYLEDGER_DATA_DIR", ".keyledger"), "dev: where NATS data and generated secrets live (KEYLEDGER_DATA_DIR)")
	fs.IntVar(&c.NATSPort, "nats-port", envInt("KEYLEDGER_DEV_NATS_PORT", 14222), "dev: port of the embedded NATS server (KEYLEDGER_DEV_NATS_PORT)")
	fs.StringVar(&c.OrgName, "org-name", env("KEYLEDGER_ORG_NAME", "default"), "bootstrap: organization name")
	fs.StringVar(&c.PrimaryName, "primary-name", env("KEYLEDGER_PRIMARY_NAME", "admin"), "bootstrap: primary account name")
}

// need lists what a subcommand requires.
type need struct{ nats, database, secrets, pepper bool }

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
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("KEYLEDGER_REPLICAS must be 1, 3 or 5, got %d", c.Replicas))
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
