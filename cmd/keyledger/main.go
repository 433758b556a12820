// Command keyledger is the credential service: `dev`, `serve`, `migrate` and
// `bootstrap`. main stays thin: parse, validate, wire, run.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: keyledger <command> [flags]

commands:
  dev        embedded NATS + local PostgreSQL, generated secrets, bootstrap, API on :8080
  serve      the API against an external NATS and PostgreSQL
  migrate    apply the PostgreSQL migrations
  bootstrap  create an organization and print its primary access key secret once
  verify     ask a running server whether a credential may make a call (operators' check)

Run "keyledger <command> -h" for the flags; each flag has a KEYLEDGER_* variable.`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(logger)

	var cfg Config
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	cfg.flags(fs)
	if os.Args[1] == "verify" {
		cfg.verifyFlags(fs)
	}
	_ = fs.Parse(os.Args[2:])

	var err error
	switch os.Args[1] {
	case "dev":
		err = runDev(ctx, cfg, logger)
	case "serve":
		err = runServe(ctx, cfg, logger)
	case "migrate":
		err = runMigrate(ctx, cfg)
	case "bootstrap":
		err = runBootstrap(ctx, cfg, logger)
	case "verify":
		var allowed bool
		allowed, err = runVerify(ctx, cfg, os.Stdout)
		if err == nil && !allowed {
			os.Exit(3)
		}
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyledger:", err)
		os.Exit(1)
	}
}
