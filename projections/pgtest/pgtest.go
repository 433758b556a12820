// Package pgtest gives each test a fresh PostgreSQL database, dropped at its end.
//
// The server is chosen once per process (AdminURL):
//   - KEYLEDGER_TEST_DATABASE_URL when it is set;
//   - else a PostgreSQL container (testcontainers-go) when a Docker engine answers,
//     removed by testcontainers' reaper when the process exits;
//   - else the local server on 127.0.0.1:5432 (trust auth, user postgres), which
//     `make test` starts.
//
// The choice is printed once to stderr (go test shows it with -v or on a failure).
// Without a Docker engine the check costs a few milliseconds.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// LocalURL is the local server's administrative URL.
const LocalURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// image is the PostgreSQL of the container: the major version deployments/compose.yaml runs.
const image = "postgres:15-alpine"

var (
	chooseOnce sync.Once
	adminURL   string
)

// AdminURL is the server tests create databases on: KEYLEDGER_TEST_DATABASE_URL, else
// a container when Docker answers, else the local server. The first call chooses,
// and may start the container.
func AdminURL() string {
	chooseOnce.Do(func() {
		var why string
		adminURL, why = choose(context.Background())
		fmt.Fprintf(os.Stderr, "pgtest: %s\n", why)
	})
	return adminURL
}

// choose returns the admin URL and, for the log, why.
func choose(ctx context.Context) (string, string) {
	if u := os.Getenv("KEYLEDGER_TEST_DATABASE_URL"); u != "" {
		return u, "PostgreSQL from KEYLEDGER_TEST_DATABASE_URL"
	}
	start := time.Now()
	if err := dockerAvailable(ctx); err != nil {
		return LocalURL, fmt.Sprintf("no Docker engine (checked in %v: %v): the local PostgreSQL at 127.0.0.1:5432",
			time.Since(start).Round(time.Microsecond), oneLine(err))
	}
	u, err := startContainer(ctx)
	if err != nil {
		return LocalURL, fmt.Sprintf("a Docker engine answers but the %s container did not start (%v): the local PostgreSQL at 127.0.0.1:5432", image, oneLine(err))
	}
	return u, fmt.Sprintf("PostgreSQL in a %s container (testcontainers-go)", image)
}

// dockerCheckTimeout bounds the check when a socket exists but nothing answers on it.
const dockerCheckTimeout = 2 * time.Second

// dockerAvailable is testcontainers' own check: it finds the Docker host the way
// testcontainers does (DOCKER_HOST, docker context, the usual sockets, its
// properties file) and asks it for its info. Without any socket it fails at once.
func dockerAvailable(ctx context.Context) (err error) {
	ctx, cancel := context.WithTimeout(ctx, dockerCheckTimeout)
	defer cancel()
	defer func() { // testcontainers panics on some paths without a Docker host
		if r := recover(); r != nil {
			err = fmt.Errorf("testcontainers: %v", r)
		}
	}()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.Ping(ctx, client.PingOptions{})
	return err
}

// containerStartTimeout allows for pulling the image on the first run.
const containerStartTimeout = 3 * time.Minute

func startContainer(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, containerStartTimeout)
	defer cancel()
	c, err := tcpostgres.Run(ctx, image, tcpostgres.BasicWaitStrategies())
	if err != nil {
		if c != nil {
			_ = c.Terminate(context.Background())
		}
		return "", err
	}
	// The container's database "postgres" as its superuser "postgres".
	return c.ConnectionString(ctx, "sslmode=disable")
}

func oneLine(err error) string {
	s := err.Error()
	for i, r := range s {
		if r == '\n' {
			return s[:i] + " …"
		}
	}
	return s
}

// NewDatabase creates an empty database and returns its URL. It fails the test (never
// skips it) when no server is reachable: `make test` starts one beforehand.
func NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, drop, err := create(ctx, AdminURL(), "keyledger_test_")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return u
}

// Scratch is NewDatabase without a test, for programs such as the bench: a new empty
// database on AdminURL's server, and the function that drops it (printing to stderr
// what it could not do).
func Scratch(ctx context.Context) (url string, drop func(), err error) {
	return ScratchOn(ctx, AdminURL())
}

// ScratchOn is Scratch on the server of the given administrative URL (a program's
// own flag, say), with no choice of server.
func ScratchOn(ctx context.Context, admin string) (url string, drop func(), err error) {
	u, dropErr, err := create(ctx, admin, "keyledger_scratch_")
	if err != nil {
		return "", nil, err
	}
	return u, func() {
		if err := dropErr(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		}
	}, nil
}

// create makes a database named prefix + random on the server of admin, and returns
// its URL and the function that drops it (connecting anew, so that no connection is
// held meanwhile).
func create(ctx context.Context, admin, prefix string) (string, func() error, error) {
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		return "", nil, err
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", nil, fmt.Errorf("no PostgreSQL at %s (run `make test`, which starts it): %w", u.Redacted(), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return fmt.Errorf("drop %s: %w", name, err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop %s: %w", name, err)
		}
		return nil
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}
