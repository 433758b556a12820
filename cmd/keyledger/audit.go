package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/auditlog"
	"github.com/keyledger/keyledger/service"
)

// AuditCLIConfig is the configuration of the audit log: the servers' signing key,
// and what the auditors' commands read.
type AuditCLIConfig struct {
	SigningKey         string
	PreviousPublicKeys string // comma-separated verifier keys
	Origin             string
	CheckpointEvery    time.Duration
	Retention          time.Duration
	// audit verify
	PublicKeys []string
	In         string
	Partial    bool
	// events export, events tail
	Org          string
	After, Until uint64
}

// service is the service's part of the configuration.
func (a AuditCLIConfig) service() service.AuditConfig {
	var prev []string
	for _, k := range strings.Split(a.PreviousPublicKeys, ",") {
		if k = strings.TrimSpace(k); k != "" {
			prev = append(prev, k)
		}
	}
	return service.AuditConfig{SigningKey: a.SigningKey, PreviousPublicKeys: prev, Origin: a.Origin, CheckpointEvery: a.CheckpointEvery, Retention: a.Retention}
}

func (c *Config) auditSigningFlags(fs *flag.FlagSet, usage string) {
	fs.Var(secret{&c.Audit.SigningKey}, "audit-signing-key", usage+" (KEYLEDGER_AUDIT_SIGNING_KEY or KEYLEDGER_AUDIT_SIGNING_KEY_FILE)")
	c.Audit.SigningKey = c.envSecret("KEYLEDGER_AUDIT_SIGNING_KEY", "KEYLEDGER_AUDIT_SIGNING_KEY_FILE")
	fs.StringVar(&c.Audit.PreviousPublicKeys, "audit-previous-public-keys", env("KEYLEDGER_AUDIT_PREVIOUS_PUBLIC_KEYS", ""),
		"comma-separated verifier `keys` of rotated signing keys, served so that old checkpoints stay verifiable (KEYLEDGER_AUDIT_PREVIOUS_PUBLIC_KEYS)")
	fs.StringVar(&c.Audit.Origin, "audit-origin", env("KEYLEDGER_AUDIT_ORIGIN", auditlog.DefaultOrigin),
		"prefix of the checkpoints' origin, \"<prefix>/<organization id>\": name the deployment (KEYLEDGER_AUDIT_ORIGIN)")
	fs.DurationVar(&c.Audit.CheckpointEvery, "audit-checkpoint-every", c.envDuration("KEYLEDGER_AUDIT_CHECKPOINT_EVERY", time.Minute),
		"how often an organization whose history grew gets a signed checkpoint (KEYLEDGER_AUDIT_CHECKPOINT_EVERY)")
	fs.DurationVar(&c.Audit.Retention, "audit-retention", c.envDuration("KEYLEDGER_AUDIT_RETENTION", 365*24*time.Hour),
		"how long the KEYLEDGER_AUDIT stream keeps refused calls and replayed answers (KEYLEDGER_AUDIT_RETENTION)")
}

func (c *Config) auditVerifyFlags(fs *flag.FlagSet) {
	for _, k := range strings.Split(env("KEYLEDGER_AUDIT_PUBLIC_KEYS", ""), ",") {
		if k = strings.TrimSpace(k); k != "" {
			c.Audit.PublicKeys = append(c.Audit.PublicKeys, k)
		}
	}
	fs.Func("public-key", "a verifier `key` of the checkpoints (GET /v1/audit/public-key); repeat it for rotated keys (KEYLEDGER_AUDIT_PUBLIC_KEYS, comma-separated)",
		func(v string) error {
			c.Audit.PublicKeys = append(c.Audit.PublicKeys, v)
			return nil
		})
	fs.StringVar(&c.Audit.In, "in", "-", "the export to check, NDJSON (GET /v1/events or keyledger events export); - is standard input")
	fs.BoolVar(&c.Audit.Partial, "partial", false, "the export starts after a position (--after): check order, signatures and chaining, not roots")
}

func (c *Config) eventsExportFlags(fs *flag.FlagSet) {
	c.natsURLFlag(fs)
	c.replicasFlag(fs)
	fs.StringVar(&c.Audit.Org, "org", env("KEYLEDGER_ORG", ""), "the organization id (KEYLEDGER_ORG)")
	fs.Uint64Var(&c.Audit.After, "after", 0, "the log position to start after (0: the beginning)")
	fs.Uint64Var(&c.Audit.Until, "until", 0, "the last log position (0: the log's end when the export starts)")
}

func (c *Config) eventsTailFlags(fs *flag.FlagSet) {
	c.natsURLFlag(fs)
	c.replicasFlag(fs)
	fs.StringVar(&c.Audit.Org, "org", env("KEYLEDGER_ORG", ""), "the organization id (KEYLEDGER_ORG)")
	fs.Uint64Var(&c.Audit.After, "after", 0, "the log position to start after (0: the beginning)")
}

func noFlags(*Config, *flag.FlagSet) {}

// runAuditKeygen prints a new signing key and its verifier key.
func runAuditKeygen(out io.Writer) error {
	skey, vkey, err := audit.GenerateKey("keyledger")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "# The signing key is a secret: give it to the servers only.\nexport KEYLEDGER_AUDIT_SIGNING_KEY=%s\n# The public key, for auditors and witnesses:\n# %s\n", skey, vkey)
	return nil
}

// errTampered: the export does not verify; main exits 1 with the breaks printed.
var errTampered = errors.New("the export does not verify")

// runAuditVerify checks an export offline and prints the report as JSON.
func runAuditVerify(cfg Config, stdin io.Reader, out io.Writer) error {
	known, err := audit.Verifiers(cfg.Audit.PublicKeys...)
	if err != nil {
		return fmt.Errorf("--public-key: %w", err)
	}
	in := stdin
	if cfg.Audit.In != "-" {
		f, err := os.Open(cfg.Audit.In)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	verify := audit.Verify
	if cfg.Audit.Partial {
		verify = audit.VerifyPartial
	}
	rep, err := verify(bufio.NewReaderSize(in, 1<<20), known)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("%w: %d breaks, the first: %s", errTampered, len(rep.Breaks), rep.Breaks[0])
	}
	return nil
}

// runEventsExport writes an organization's events as NDJSON, straight from JetStream.
func runEventsExport(ctx context.Context, cfg Config, out io.Writer, follow bool) error {
	if cfg.Audit.Org == "" {
		return errors.New("--org (KEYLEDGER_ORG) is required")
	}
	if err := cfg.Validate(need{nats: true}); err != nil {
		return err
	}
	store, closeStore, err := cfg.openStore(ctx, "keyledger-events")
	if err != nil {
		return err
	}
	defer closeStore()
	w := bufio.NewWriterSize(out, 1<<16)
	enc := json.NewEncoder(w)
	err = auditlog.Export(ctx, store, auditlog.Range{OrganizationID: cfg.Audit.Org, After: cfg.Audit.After, Until: cfg.Audit.Until, Follow: follow},
		func(e audit.Event) error {
			if err := enc.Encode(e); err != nil {
				return err
			}
			if follow {
				return w.Flush()
			}
			return nil
		})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	return err
}

func auditSubcommands() []subcommand {
	return []subcommand{
		{"audit keygen", "make an audit signing key (Ed25519, note format) and print it with its public key", noFlags,
			func(context.Context, Config, *slog.Logger) error { return runAuditKeygen(os.Stdout) }},
		{"audit verify", "check an export of an organization's events offline against the checkpoints' public key (exit 1 on any break)",
			(*Config).auditVerifyFlags, func(_ context.Context, cfg Config, _ *slog.Logger) error {
				return runAuditVerify(cfg, os.Stdin, os.Stdout)
			}},
		{"events export", "write an organization's raw events, with leaf indices and checkpoints, as NDJSON from JetStream", (*Config).eventsExportFlags,
			func(ctx context.Context, cfg Config, _ *slog.Logger) error {
				return runEventsExport(ctx, cfg, os.Stdout, false)
			}},
		{"events tail", "follow an organization's raw events as NDJSON from JetStream", (*Config).eventsTailFlags,
			func(ctx context.Context, cfg Config, _ *slog.Logger) error {
				return runEventsExport(ctx, cfg, os.Stdout, true)
			}},
	}
}
