// Command keyledger is the credential service and its tools: `dev`, `serve`,
// `migrate`, `bootstrap`, `verify`, `usage send`, `costs reconcile`, `billing`, `audit` and `events`. main stays thin: parse, validate, wire, run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// subcommand is one entry of the table that both dispatches and writes the usage
// text, so the two cannot drift apart.
type subcommand struct {
	name, summary string
	// flags registers on a FlagSet the flags this command reads, and no others.
	flags func(*Config, *flag.FlagSet)
	run   func(context.Context, Config, *slog.Logger) error
}

var subcommands = append([]subcommand{
	{"dev", "embedded NATS + local PostgreSQL, generated secrets, bootstrap, API on :8080", (*Config).devFlags, runDev},
	{"serve", "the API against an external NATS and PostgreSQL", (*Config).serveFlags, runServe},
	{"migrate", "apply the PostgreSQL migrations", (*Config).migrateFlags,
		func(ctx context.Context, cfg Config, _ *slog.Logger) error { return runMigrate(ctx, cfg) }},
	{"bootstrap", "create an organization and print its primary access key secret once", (*Config).bootstrapFlags, runBootstrap},
	{"verify", "ask a running server whether a credential may make a call (exit 0 allowed, 3 refused)", (*Config).verifyFlags,
		func(ctx context.Context, cfg Config, _ *slog.Logger) error { return runVerify(ctx, cfg, os.Stdout) }},
	{"costs reconcile", "recompute the costs from the usage stream and compare them with the views (exit 1 on any difference)",
		(*Config).reconcileFlags, func(ctx context.Context, cfg Config, logger *slog.Logger) error {
			return runReconcile(ctx, cfg, logger, os.Stdout)
		}},
	{"billing export", "deliver usage records and billable events to a billing endpoint as signed webhooks (retries, dead letters)",
		(*Config).billingFlags, runBillingExport},
	{"billing replay-dead-letters", "send the billing dead letters again (exit 1 if the endpoint still refuses one)", (*Config).billingFlags,
		func(ctx context.Context, cfg Config, logger *slog.Logger) error {
			return runReplayDeadLetters(ctx, cfg, logger, os.Stdout)
		}},
	{"usage send", "post usage records (NDJSON, a file or standard input) as a gateway would (exit 3 if any is rejected)", (*Config).usageSendFlags,
		func(ctx context.Context, cfg Config, _ *slog.Logger) error {
			return runUsageSend(ctx, cfg, os.Stdin, os.Stdout, os.Stderr)
		}},
}, auditSubcommands()...)

func usage() string {
	var b strings.Builder
	b.WriteString("usage: keyledger <command> [flags]\n\ncommands:\n")
	for _, sc := range subcommands {
		fmt.Fprintf(&b, "  %-16s %s\n", sc.name, sc.summary)
	}
	b.WriteString("\nRun \"keyledger <command> -h\" for its flags; each flag has a KEYLEDGER_* variable.")
	return b.String()
}

func lookup(name string) (subcommand, bool) {
	for _, sc := range subcommands {
		if sc.name == name {
			return sc, true
		}
	}
	return subcommand{}, false
}

// newFlagSet is the FlagSet of one subcommand, bound to cfg; -h prints to out.
func newFlagSet(sc subcommand, cfg *Config, handling flag.ErrorHandling, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(sc.name, handling)
	fs.SetOutput(out)
	sc.flags(cfg, fs)
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: keyledger %s [flags]\n\n%s\n\nflags:\n", sc.name, sc.summary)
		fs.PrintDefaults()
	}
	return fs
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage())
		os.Exit(2)
	}
	sc, ok := lookup(os.Args[1])
	args := os.Args[2:]
	if !ok && len(args) > 0 { // a command of two words: "usage send"
		sc, ok = lookup(os.Args[1] + " " + args[0])
		args = args[1:]
	}
	if !ok {
		fmt.Fprintln(os.Stderr, usage())
		os.Exit(2)
	}
	var cfg Config
	_ = newFlagSet(sc, &cfg, flag.ExitOnError, os.Stderr).Parse(args)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(logger)

	err := sc.run(ctx, cfg, logger)
	switch {
	case errors.Is(err, errTampered): // the report is printed already
		fmt.Fprintln(os.Stderr, "keyledger:", err)
		stop()
		os.Exit(1)
	case errors.Is(err, errRefused): // the decision is printed already
		stop()
		os.Exit(3)
	case err != nil:
		fmt.Fprintln(os.Stderr, "keyledger:", err)
		stop()
		os.Exit(1)
	}
}
