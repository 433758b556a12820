// Package projections builds keyledger's PostgreSQL views from the log (one
// projector runner, one view per file with its queries). Views can be dropped and
// rebuilt from the log. The data plane's in-memory index is its own package,
// projections/credindex; both follow the log through projections/follow.
package projections

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/keyledger/keyledger/fault"
)

//go:embed migrations/*.sql
var migrations embed.FS

// versionTable is where goose records the views' migrations.
const versionTable = "goose_db_version"

// Migrate applies the embedded migrations of the views; safe to run on every start.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return MigrateFS(ctx, pool, mustSub(migrations, "migrations"), versionTable)
}

// knownMigration is the newest migration this version embeds.
var knownMigration = sync.OnceValue(func() int64 {
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	var newest int64
	for _, n := range names {
		v, err := goose.NumericComponent(n)
		if err != nil {
			panic("migration " + n + ": " + err.Error()) // embedded: a build's mistake
		}
		newest = max(newest, v)
	}
	return newest
})

// ErrSchemaAhead: the views' schema holds a migration this version does not know.
var ErrSchemaAhead = errors.New("the views' schema is newer than this version")

// SchemaAhead is ErrSchemaAhead when a newer version migrated the views' schema:
// during a rolling update this one's projectors must not write under it (a newer
// migration may keep what they would miss, as a backfill does); the newer
// instances project. A version counts as applied as goose counts it: by its last
// record.
func SchemaAhead(ctx context.Context, pool *pgxpool.Pool) error {
	var applied int64
	err := pool.QueryRow(ctx, `SELECT COALESCE(max(version_id), 0) FROM (
		SELECT DISTINCT ON (version_id) version_id, is_applied FROM `+versionTable+` ORDER BY version_id, id DESC) v WHERE is_applied`).Scan(&applied)
	if err != nil {
		return fault.Unavailable(fmt.Errorf("schema version: %w", err))
	}
	if known := knownMigration(); applied > known {
		return fmt.Errorf("%w: migration %d, this version knows up to %d", ErrSchemaAhead, applied, known)
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
