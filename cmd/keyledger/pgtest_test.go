package main

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyledger/keyledger/projections/pgtest"
)

// pgtest.Scratch, the variant of pgtest.NewDatabase without a test that programs
// such as the bench use: an empty database that exists until drop.
func TestPgtestScratch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, drop, err := pgtest.Scratch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("the scratch database: %v", err)
	}
	var tables int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("the scratch database is not empty: %d tables, %v", tables, err)
	}
	conn.Close(ctx)

	drop()
	admin, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", cfg.Database).Scan(&exists); err != nil || exists {
		t.Fatalf("%s after drop: exists %v, %v", cfg.Database, exists, err)
	}
}
