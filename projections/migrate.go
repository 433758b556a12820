// Package projections builds keyledger's PostgreSQL views from the log (one
// projector runner, one view per file with its queries). Views can be dropped and
// rebuilt from the log. The data plane's in-memory index is its own package,
// projections/credindex; both follow the log through projections/follow.
package projections

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/keyledger/keyledger/fault"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies the embedded migrations of the views; safe to run on every start.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return MigrateFS(ctx, pool, mustSub(migrations, "migrations"), "goose_db_version")
}

// SchemaAhead is an error when the views' schema holds a migration this version
// does not know: a newer version migrated it, and during a rolling update this
// one's projectors must not write under it (a newer migration may keep what they
// would miss, as a backfill does); the newer instances project.
func SchemaAhead(ctx context.Context, pool *pgxpool.Pool) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, mustSub(migrations, "migrations"))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	applied, err := p.GetDBVersion(ctx)
	if err != nil {
		return fault.Unavailable(fmt.Errorf("schema version: %w", err))
	}
	sources := p.ListSources()
	if known := sources[len(sources)-1].Version; applied > known {
		return fmt.Errorf("the views' schema is at migration %d, newer than this version's %d: standing by for a newer version to project", applied, known)
	}
	return nil
}

// MigrateFS applies a set of goose migrations tracked in versionTable, holding a
// PostgreSQL session lock: instances starting together migrate one at a time.
func MigrateFS(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS, versionTable string) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithTableName(versionTable), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", versionTable, err)
	}
	return nil
}

// EnsureDatabase creates the database named in url if it does not exist, connecting
// to the server's "postgres" database to do so.
func EnsureDatabase(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}
	name := cfg.Database
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fault.Unavailable(fmt.Errorf("connect to postgres: %w", err))
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}
