// Command keyledger-bench measures keyledger on this machine and prints each figure
// next to its ceiling measured in the same run (`make bench`). Nothing is asserted.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/eventstore/natstest"
	"github.com/keyledger/keyledger/projections"
	"github.com/keyledger/keyledger/projections/pgtest"
	"github.com/keyledger/keyledger/service"
)

var (
	adminURL    = flag.String("database-admin-url", envOr("KEYLEDGER_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "PostgreSQL server to create scratch databases on")
	seqN        = flag.Int("sequential", 1000, "keys created one after another")
	concN       = flag.Int("concurrent", 4000, "keys created by the concurrent clients in all")
	clients     = flag.Int("clients", 16, "concurrent clients")
	catchupN    = flag.Int("catchup", 200000, "events for the projector catch-up")
	logFilePath = flag.String("log", "", "where the service logs go (default: discarded)")
	trials      = flag.Int("trials", 200, "revocation trials (each idle, under load, and with all-instances consistency)")
	startupN    = flag.Int("startup", 1_000_000, "key events in the log for the start-up measurement")
	coldN       = flag.Int("cold", 100_000, "events of the organization a cold instance loads")
	cpuProfile  = flag.String("cpuprofile", "", "write a CPU profile of the whole run")
	usageN      = flag.Int("usage", 100_000, "usage records ingested (in batches of 1,000)")
	lagFor      = flag.Duration("lag-for", 10*time.Second, "how long the aggregation lag is measured")
	queries     = flag.Int("queries", 200, "cost queries timed")
	cacheN      = flag.Int("cache-workspaces", 100_000, "workspaces touched to measure the aggregate cache's memory")
)

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

type row struct{ name, value, ceiling, ratio string }

var table []row

func report(name string, value, ceiling float64, unit string) {
	r := row{name: name, value: fmt.Sprintf("%.0f %s", value, unit)}
	if ceiling > 0 {
		r.ceiling = fmt.Sprintf("%.0f %s", ceiling, unit)
		r.ratio = fmt.Sprintf("%.0f%%", 100*value/ceiling)
	}
	table = append(table, r)
	fmt.Fprintf(os.Stderr, "  %-62s %-12s %-12s %s\n", name, r.value, r.ceiling, r.ratio)
}

func main() {
	flag.Parse()
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	fmt.Printf("\n| measurement | keyledger | ceiling (same run) | ratio |\n|---|---|---|---|\n")
	for _, r := range table {
		fmt.Printf("| %s | %s | %s | %s |\n", r.name, r.value, r.ceiling, r.ratio)
	}
}

func run(ctx context.Context) error {
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *only == "index" {
		fmt.Fprintln(os.Stderr, "verification in process:")
		benchVerifyInProcess()
		return nil
	}
	if *only == "audit" {
		fmt.Fprintf(os.Stderr, "audit history of %d events:\n", *auditN)
		return benchAudit(ctx)
	}
	nc, stopNATS, err := startNATS()
	if err != nil {
		return err
	}
	defer stopNATS()
	// The bench's one NATS: the catch-up runs first on its empty log, the instances
	// start after it, and the start-up runs last, once they are stopped.
	store, err := eventstore.Open(ctx, nc, eventstore.Config{})
	if err != nil {
		return err
	}
	if *only == "catchup" {
		return benchCatchUp(ctx, store)
	}
	if *only == "startup" {
		return benchStartup(ctx, store, *startupN)
	}
	if *only == "cache" {
		fmt.Fprintf(os.Stderr, "aggregate cache:\n")
		return benchCache(ctx, store, *cacheN)
	}
	if *only != "keys" && *only != "verify" && *only != "usage" {
		fmt.Fprintf(os.Stderr, "projector catch-up over %d events:\n", *catchupN)
		if err := benchCatchUp(ctx, store); err != nil {
			return err
		}
	}
	dbURL, drop, err := scratchDatabase(ctx)
	if err != nil {
		return err
	}
	defer drop()
	logOut := io.Discard
	if *logFilePath != "" {
		f, err := os.Create(*logFilePath)
		if err != nil {
			return err
		}
		defer f.Close()
		logOut = f
	}
	svc, err := service.Start(ctx, service.Config{NATS: nc, DatabaseURL: dbURL, MasterKey: bytes.Repeat([]byte{1}, 32),
		Pepper: bytes.Repeat([]byte{2}, 32), GatewayToken: gatewayToken, Logger: slog.New(slog.NewTextHandler(logOut, nil))})
	if err != nil {
		return err
	}
	defer svc.Close()
	if err := svc.WaitCaughtUp(ctx, 5*time.Minute); err != nil {
		return err
	}
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	boot, err := svc.Bootstrap(ctx, commands.Bootstrap{OrganizationName: "bench", PrimaryName: "admin"})
	if err != nil {
		return err
	}
	c := &client{base: srv.URL, secret: boot.Secret, http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}

	if *only == "usage" {
		fmt.Fprintln(os.Stderr, "usage and costs:")
		return benchUsage(ctx, svc, c)
	}
	if *only == "verify" {
		fmt.Fprintln(os.Stderr, "verification over HTTP:")
		return benchVerifyHTTP(ctx, svc, c, svc.Pool(), gatewayToken)
	}
	fmt.Fprintln(os.Stderr, "key creation through HTTP vs raw JetStream appends with the expected-sequence check:")
	if err := benchKeyCreation(ctx, c, svc.Store().JetStream()); err != nil {
		return err
	}
	if *only == "keys" {
		return nil
	}
	fmt.Fprintln(os.Stderr, "one batch of 1,000 Search keys, end to end:")
	if err := benchBatch(ctx, c, svc.Pool()); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "verification:")
	benchVerifyInProcess()
	if err := benchVerifyHTTP(ctx, svc, c, svc.Pool(), gatewayToken); err != nil {
		return err
	}
	second, err := service.Start(ctx, service.Config{NATS: nc, DatabaseURL: dbURL, MasterKey: bytes.Repeat([]byte{1}, 32),
		Pepper: benchPepper, GatewayToken: gatewayToken, Logger: slog.New(slog.NewTextHandler(logOut, nil))})
	if err != nil {
		return err
	}
	defer second.Close()
	if err := benchRevocation(ctx, second, c, *trials); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "usage and costs:")
	if err := benchUsage(ctx, svc, c); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "cold load of an organization of %d events:\n", *coldN)
	if err := benchColdLoad(ctx, svc, *coldN); err != nil {
		return err
	}
	second.Close()
	svc.Close()
	fmt.Fprintf(os.Stderr, "aggregate cache (the instances stopped):\n")
	if err := benchCache(ctx, store, *cacheN); err != nil {
		return err
	}
	if err := benchStartup(ctx, store, *startupN); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "audit history of %d events:\n", *auditN)
	return benchAudit(ctx)
}

const gatewayToken = "klg_bench-gateway-token"

type client struct {
	base, secret string
	http         *http.Client
}

func (c *client) do(method, path string, body any, hdr ...string) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.secret)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b, err
}

func (c *client) workspace(name string) (string, error) {
	st, _, b, err := c.do("POST", "/v1/workspaces", map[string]any{"name": name})
	if err != nil || st != 201 {
		return "", fmt.Errorf("create workspace: %d %s %v", st, b, err)
	}
	var w struct{ ID string }
	return w.ID, json.Unmarshal(b, &w)
}

// parallel runs n operations spread over k workers (worker i gets its own index)
// and returns operations per second.
func parallel(k, n int, op func(worker, i int) error) (float64, error) {
	var wg sync.WaitGroup
	errc := make(chan error, k)
	start := time.Now()
	for w := 0; w < k; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += k {
				if err := op(w, i); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	select {
	case err := <-errc:
		return 0, err
	default:
	}
	return float64(n) / el.Seconds(), nil
}

// keyCreator makes a workspace per client (named prefix-N) and returns what creates
// one MaaS key in client w's workspace over HTTP, for parallel.
func keyCreator(c *client, prefix string) (func(w, _ int) error, error) {
	wss := make([]string, *clients)
	for i := range wss {
		ws, err := c.workspace(prefix + "-" + strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		wss[i] = ws
	}
	return func(w, _ int) error {
		st, _, b, err := c.do("POST", "/v1/workspaces/"+wss[w]+"/api-keys", map[string]any{"business_type": "maas", "allowlist": "10.0.0.0/8", "note": "bench"})
		if err != nil || st != 201 {
			return fmt.Errorf("create key: %d %s %v", st, b, err)
		}
		return nil
	}, nil
}

func benchKeyCreation(ctx context.Context, c *client, js jetstream.JetStream) error {
	create, err := keyCreator(c, "bench")
	if err != nil {
		return err
	}
	// Raw ceiling: the same number of appends of an event of the same size, each with
	// the expected last subject sequence, one subject per client, into a stream
	// configured like the log (not the log itself: these are not events).
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH_RAW", Subjects: []string{"bench.raw.>"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute, DenyDelete: true, DenyPurge: true, AllowAtomicPublish: true}); err != nil {
		return err
	}
	payload := bytes.Repeat([]byte("x"), 420)
	last := make([]uint64, *clients)
	raw := func(w, _ int) error {
		m := nats.NewMsg("bench.raw." + strconv.Itoa(w))
		m.Header.Set(jetstream.MsgIDHeader, domain.NewAPIKeyID())
		m.Data = payload
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last[w], 10))
		ack, err := js.PublishMsg(ctx, m)
		if err != nil {
			return err
		}
		last[w] = ack.Sequence
		return nil
	}
	// The second ceiling holds the work a key needs besides: its data key written to
	// a KV bucket configured like the vault's, both writes in flight together.
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "BENCH_DATA_KEYS", Storage: jetstream.FileStorage})
	if err != nil {
		return err
	}
	dataKey := bytes.Repeat([]byte("k"), 60)
	rawWithKey := func(w, i int) error {
		kvDone := make(chan error, 1)
		go func() { _, err := kv.Create(ctx, domain.NewAPIKeyID(), dataKey); kvDone <- err }()
		return errors.Join(raw(w, i), <-kvDone)
	}
	seqHTTP, err := parallel(1, *seqN, create)
	if err != nil {
		return err
	}
	seqRaw, err := parallel(1, *seqN, raw)
	if err != nil {
		return err
	}
	seqPair, err := parallel(1, *seqN, rawWithKey)
	if err != nil {
		return err
	}
	report("key creation via HTTP, sequential (keys/s)", seqHTTP, seqRaw, "/s")
	report("key creation via HTTP, sequential, vs raw append + data-key write pipelined (keys/s)", seqHTTP, seqPair, "/s")
	concHTTP, err := parallel(*clients, *concN, create)
	if err != nil {
		return err
	}
	concRaw, err := parallel(*clients, *concN, raw)
	if err != nil {
		return err
	}
	concPair, err := parallel(*clients, *concN, rawWithKey)
	if err != nil {
		return err
	}
	report(fmt.Sprintf("key creation via HTTP, %d clients (keys/s)", *clients), concHTTP, concRaw, "/s")
	report(fmt.Sprintf("key creation via HTTP, %d clients, vs raw append + data-key write pipelined (keys/s)", *clients), concHTTP, concPair, "/s")
	return nil
}

func benchBatch(ctx context.Context, c *client, pool *pgxpool.Pool) error {
	ws, err := c.workspace("batch")
	if err != nil {
		return err
	}
	start := time.Now()
	st, hdr, b, err := c.do("POST", "/v1/workspaces/"+ws+"/api-keys/batch", map[string]any{"count": 1000, "naming": map[string]any{"prefix": "k"},
		"allowlist": []string{"10.0.0.0/8"}, "rate_limit": map[string]any{"mode": "uniform", "qps": 50}})
	if err != nil || st != 201 {
		return fmt.Errorf("batch: %d %.200s %v", st, b, err)
	}
	appended := time.Since(start)
	st, _, b, err = c.do("GET", "/v1/workspaces/"+ws+"/api-keys?limit=500&business_type=search", nil, "X-Keyledger-Position", hdr.Get("X-Keyledger-Position"))
	if err != nil || st != 200 {
		return fmt.Errorf("list: %d %.200s %v", st, b, err)
	}
	visible := time.Since(start)
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE workspace_id = $1`, ws).Scan(&n); err != nil || n != 1000 {
		return fmt.Errorf("batch visible with %d keys: %v", n, err)
	}
	report("1,000-key Search batch: 201 received (ms)", float64(appended.Milliseconds()), 0, "ms")
	report("1,000-key Search batch: until the list view shows it (ms)", float64(visible.Milliseconds()), 0, "ms")
	return nil
}

// benchCatchUp runs first, on the bench's one NATS, before any instance starts: the
// log then holds exactly catchupN events, and no other projector competes.
func benchCatchUp(ctx context.Context, store *eventstore.Store) error {
	const perWorkspace = 1000
	at := time.Now().UTC().Truncate(time.Microsecond)
	var rows [][]any
	fill := time.Now()
	for w := 0; w*perWorkspace < *catchupN; w++ {
		ws := domain.NewWorkspaceID()
		events := make([]domain.Event, 0, perWorkspace)
		for i := 0; i < perWorkspace && w*perWorkspace+i < *catchupN; i++ {
			id := domain.NewAPIKeyID()
			e := domain.APIKeyCreated{KeyID: id, BusinessType: domain.BusinessSearch, Name: "k-" + strconv.Itoa(i), Allowlist: []string{"10.0.0.0/8"},
				QPSLimit: 50, SecretHash: hex.EncodeToString(randBytes(32)), Masked: "kls_abcd…wxyz", Sealed: randBytes(81), At: at}
			events = append(events, e)
			rows = append(rows, []any{id, ws, "search", e.Name, e.Allowlist, "", int32(50), e.Masked, nil, at, at, int64(w*perWorkspace + i + 1), "", ""})
		}
		if _, err := store.Append(ctx, domain.AggregateWorkspace, ws, 0, events, domain.Metadata{}); err != nil {
			return err
		}
	}
	head, err := store.Position(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "  (%d events appended in %v)\n", head, time.Since(fill).Round(time.Millisecond))

	// Ceiling 1: the raw ordered-consume rate of the same log.
	consumeRate, err := rawConsume(ctx, store.JetStream(), head)
	if err != nil {
		return err
	}

	// Ceiling 2: PostgreSQL COPY of the same rows into an empty view table.
	copyURL, dropCopy, err := scratchDatabase(ctx)
	if err != nil {
		return err
	}
	defer dropCopy()
	copyPool, err := pgxpool.New(ctx, copyURL)
	if err != nil {
		return err
	}
	defer copyPool.Close()
	if err := projections.Migrate(ctx, copyPool); err != nil {
		return err
	}
	start := time.Now()
	if _, err := copyPool.CopyFrom(ctx, pgx.Identifier{"api_keys"}, []string{"id", "workspace_id", "business_type", "name", "allowlist", "note", "qps_limit",
		"masked_secret", "batch_id", "created_at", "updated_at", "version", "created_by", "updated_by"}, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	copyRate := float64(len(rows)) / time.Since(start).Seconds()
	rows = nil
	runtime.GC() // the projector does not pay for the bench's own garbage

	// keyledger: a projector from an empty database to the head of the log.
	viewURL, dropView, err := scratchDatabase(ctx)
	if err != nil {
		return err
	}
	defer dropView()
	pool, err := pgxpool.New(ctx, viewURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := projections.Migrate(ctx, pool); err != nil {
		return err
	}
	runner := projections.NewRunner(pool, store, projections.RunnerConfig{Name: "views", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, projections.Views()...)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start = time.Now()
	go func() { _ = runner.Run(rctx) }()
	if err := runner.WaitFor(ctx, head); err != nil {
		return err
	}
	projRate := float64(head) / time.Since(start).Seconds()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM api_keys`).Scan(&n); err != nil || n != *catchupN {
		return fmt.Errorf("projected %d keys: %v", n, err)
	}
	report("projector catch-up (events/s) vs raw ordered consume", projRate, consumeRate, "/s")
	report("projector catch-up (events/s) vs PostgreSQL COPY of the rows", projRate, copyRate, "/s")
	return nil
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// startNATS runs a nats-server of the bench's own, its data in a temporary
// directory, and connects to it; stop undoes all that.
func startNATS() (nc *nats.Conn, stop func(), err error) {
	dir, err := os.MkdirTemp("", "keyledger-bench-")
	if err != nil {
		return nil, nil, err
	}
	ns, err := natstest.Run(dir, -1)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	if nc, err = nats.Connect(ns.ClientURL(), eventstore.ConnectOptions()...); err != nil {
		ns.Shutdown()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return nc, func() { nc.Close(); ns.Shutdown(); os.RemoveAll(dir) }, nil
}

// scratchDatabase is a fresh database on the bench's server, dropped by the returned
// func: the tests' own helper.
func scratchDatabase(ctx context.Context) (string, func(), error) {
	return pgtest.ScratchOn(ctx, *adminURL)
}
