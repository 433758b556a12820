package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/keyledger/keyledger/billing"
)

// BillingConfig is `keyledger billing export` and `billing replay-dead-letters`.
type BillingConfig struct {
	Endpoint string
	Secret   string // signs every webhook (HMAC-SHA256)
	Durable  string
}

func (c *Config) billingFlags(fs *flag.FlagSet) {
	c.natsURLFlag(fs)
	c.replicasFlag(fs)
	fs.StringVar(&c.Billing.Endpoint, "endpoint", env("KEYLEDGER_BILLING_ENDPOINT", ""), "the billing webhook URL (KEYLEDGER_BILLING_ENDPOINT)")
	fs.Var(secret{&c.Billing.Secret}, "secret", fmt.Sprintf("webhook signing secret, at least %d bytes (KEYLEDGER_BILLING_SECRET or KEYLEDGER_BILLING_SECRET_FILE)", billing.MinSecretLen))
	c.Billing.Secret = c.envSecret("KEYLEDGER_BILLING_SECRET", "KEYLEDGER_BILLING_SECRET_FILE")
	fs.StringVar(&c.Billing.Durable, "durable", env("KEYLEDGER_BILLING_DURABLE", billing.DefaultDurable),
		"name of the export: its durable consumers (<name>-usage, <name>-events; a restart resumes them) and its dead letters (KEYLEDGER_BILLING_DURABLE)")
}

func (c Config) billingConfig(logger *slog.Logger) (billing.Config, error) {
	if err := c.Validate(need{nats: true}); err != nil {
		return billing.Config{}, err
	}
	durable := c.Billing.Durable
	if durable == "" {
		durable = billing.DefaultDurable
	}
	bc := billing.Config{NATSURL: c.NATSURL, Endpoint: c.Billing.Endpoint, Secret: []byte(c.Billing.Secret), Durable: durable, Replicas: c.Replicas, Logger: logger}
	return bc, bc.Validate()
}

// runBillingExport delivers usage records and billable events to the endpoint as
// signed webhooks until interrupted.
func runBillingExport(ctx context.Context, cfg Config, logger *slog.Logger) error {
	bc, err := cfg.billingConfig(logger)
	if err != nil {
		return err
	}
	exp, err := billing.New(ctx, bc)
	if err != nil {
		return err
	}
	logger.Info("billing export running", "endpoint", bc.Endpoint, "durable", bc.Durable)
	if err := exp.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// runReplayDeadLetters sends the dead letters again; exit 1 if the endpoint still
// refuses one (it stays for the next replay).
func runReplayDeadLetters(ctx context.Context, cfg Config, logger *slog.Logger, out io.Writer) error {
	bc, err := cfg.billingConfig(logger)
	if err != nil {
		return err
	}
	nc, err := cfg.connectNATS("keyledger-billing-replay")
	if err != nil {
		return err
	}
	defer nc.Close()
	sent, err := billing.ReplayDeadLetters(ctx, nc, bc)
	fmt.Fprintf(out, "%d dead letters delivered\n", sent)
	return err
}
