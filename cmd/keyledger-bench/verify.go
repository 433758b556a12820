package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/projections/credindex"
	"github.com/keyledger/keyledger/service"
)

var benchPepper = bytes.Repeat([]byte{2}, 32)

// indexOf builds a credential index of n MaaS keys of one workspace without a log
// and returns the workspace and some of its credentials.
func indexOf(n int) (*credindex.Index, string, []string) {
	x := credindex.New(nil, credindex.Config{Pepper: benchPepper, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ws, org := domain.NewWorkspaceID(), domain.NewOrganizationID()
	x.Apply(eventstore.Record{Sequence: 1, Aggregate: ws, Event: domain.WorkspaceCreated{WorkspaceID: ws, OrganizationID: org}})
	var sample []string
	const chunk = 10000
	for i := 0; i < n; i += chunk {
		recs := make([]eventstore.Record, 0, chunk)
		for j := i; j < i+chunk && j < n; j++ {
			cred, _ := domain.GenerateCredential(randReader{}, domain.KindMaaSKey)
			if len(sample) < 1000 {
				sample = append(sample, cred.String())
			}
			// The ids in a record read from the log are strings of its own, as here.
			recs = append(recs, eventstore.Record{Sequence: uint64(j + 2), Aggregate: strings.Clone(ws),
				Metadata: domain.Metadata{OrganizationID: strings.Clone(org)}, Event: domain.APIKeyCreated{
					KeyID: domain.NewAPIKeyID(), BusinessType: domain.BusinessMaaS, Allowlist: []string{"10.0.0.0/8"},
					SecretHash: domain.HashCredential(benchPepper, cred)}})
		}
		x.Apply(recs...)
	}
	return x, ws, sample
}

type randReader struct{}

func (randReader) Read(p []byte) (int, error) { return len(randBytes(len(p))), copyRand(p) }

func copyRand(p []byte) error { copy(p, randBytes(len(p))); return nil }

func benchVerifyInProcess() {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	x, ws, sample := indexOf(1_000_000)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	v := credindex.Verification{SourceIP: netip.MustParseAddr("10.1.2.3"), WorkspaceID: ws, Product: domain.BusinessMaaS}
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			v.Credential = sample[i%len(sample)]
			if d := x.Verify(v); !d.Allowed {
				b.Fatal(d.Code)
			}
		}
	})
	report("verification in process, 1,000,000 keys indexed (ns/op)", float64(res.NsPerOp()), 0, "ns")
	report("verification in process, allowed path (allocs/op)", float64(res.AllocsPerOp()), 0, "allocs")
	report("index memory per 1,000,000 keys (MiB)", float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), 0, "MiB")
	report("index memory per key (bytes)", float64(after.HeapAlloc-before.HeapAlloc)/1_000_000, 0, "B")
	runtime.KeepAlive(x)
}

// benchStartup appends a million key events to a log of its own and times a fresh
// index from start to ready.
// benchStartup adds n key events to the bench's log, then times a new index from
// nothing to ready (the log's other events are read too).
func benchStartup(ctx context.Context, store *eventstore.Store, n int) error {
	fill := time.Now()
	for w := 0; w*1000 < n; w++ {
		ws := domain.NewWorkspaceID()
		events := make([]domain.Event, 1000)
		for i := range events {
			cred, _ := domain.GenerateCredential(randReader{}, domain.KindSearchKey)
			events[i] = domain.APIKeyCreated{KeyID: domain.NewAPIKeyID(), BusinessType: domain.BusinessSearch, Name: "k-" + strconv.Itoa(i),
				QPSLimit: 50, SecretHash: domain.HashCredential(benchPepper, cred), Masked: cred.Masked(), Sealed: randBytes(81)}
		}
		if _, err := store.Append(ctx, domain.AggregateWorkspace, ws, 0, events, domain.Metadata{}); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "  (%d key events appended in %v)\n", n, time.Since(fill).Round(time.Millisecond))
	x := credindex.New(store, credindex.Config{Pepper: benchPepper, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	xctx, stopX := context.WithCancel(ctx)
	defer stopX()
	start := time.Now()
	ran := make(chan struct{})
	go func() { defer close(ran); _ = x.Run(xctx) }()
	for !x.Ready() {
		time.Sleep(time.Millisecond)
	}
	report(fmt.Sprintf("index start-up to ready, %d keys in the log (ms)", n), float64(time.Since(start).Milliseconds()), 0, "ms")
	// The same start from the snapshot a running instance saved.
	snaps, err := credindex.OpenSnapshotStore(ctx, store.JetStream(), 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	saveStart := time.Now()
	if _, err := snaps.Save(ctx, x); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "  (snapshot saved in %v)\n", time.Since(saveStart).Round(time.Millisecond))
	// A starting instance has no other index in memory: the first one goes before
	// the second starts.
	stopX()
	<-ran // its goroutine holds it until it returns
	x = nil
	runtime.GC()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	y := credindex.New(store, credindex.Config{Pepper: benchPepper, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	start = time.Now()
	if _, ok := snaps.Load(ctx, y, func(pos uint64, id string) error { return store.HoldsEvent(ctx, pos, id) }); !ok {
		return fmt.Errorf("the snapshot was not restored")
	}
	go func() { _ = y.Run(rctx) }()
	for !y.Ready() {
		time.Sleep(time.Millisecond)
	}
	report(fmt.Sprintf("index start-up to ready from its snapshot, %d keys (ms)", n), float64(time.Since(start).Milliseconds()), 0, "ms")
	return nil
}

// load sends POST bodies from `workers` clients for d and returns requests per
// second and the p50 and p99 latencies.
func load(url, token string, bodies [][]byte, workers int, d time.Duration) (float64, time.Duration, time.Duration, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := w; time.Now().Before(deadline); i += workers {
				req, _ := http.NewRequest("POST", url, bytes.NewReader(bodies[i%len(bodies)]))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				t := time.Now()
				res, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						err = fmt.Errorf("status %d", res.StatusCode)
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, 0, 0, firstErr
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	return float64(len(lat)) / d.Seconds(), lat[len(lat)/2], lat[len(lat)*99/100], nil
}

func serveOn(h http.Handler) (string, func()) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { _ = srv.Close() }
}

// benchVerifyHTTP compares keyledger's /v1/verify with a bare Echo JSON handler and a
// naive verifier that queries PostgreSQL on every call.
func benchVerifyHTTP(ctx context.Context, svc *service.Service, c *client, pool *pgxpool.Pool, token string) error {
	ws, err := c.workspace("verify")
	if err != nil {
		return err
	}
	var bodies [][]byte
	var hashes []string
	for i := 0; i < 200; i++ {
		st, hdr, b, err := c.do("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas", "allowlist": "10.0.0.0/8"})
		if err != nil || st != 201 {
			return fmt.Errorf("key: %d %s %v", st, b, err)
		}
		var k struct{ Secret string }
		_ = json.Unmarshal(b, &k)
		pos, _ := strconv.ParseUint(hdr.Get("X-Keyledger-Position"), 10, 64)
		if err := svc.Index().WaitFor(ctx, pos); err != nil {
			return err
		}
		body, _ := json.Marshal(map[string]string{"credential": k.Secret, "workspace_id": ws, "product": "maas", "source_ip": "10.1.2.3"})
		bodies = append(bodies, body)
		cred, _ := domain.ParseCredential(k.Secret)
		hashes = append(hashes, domain.HashCredential(benchPepper, cred))
	}
	// The naive verifier's table: what a home-grown service would keep.
	if _, err := pool.Exec(ctx, `CREATE TABLE naive_keys (secret_hash text PRIMARY KEY, workspace_id text, business_type text, allowlist text[], deleted boolean)`); err != nil {
		return err
	}
	for _, h := range hashes {
		if _, err := pool.Exec(ctx, `INSERT INTO naive_keys VALUES ($1, $2, 'maas', '{10.0.0.0/8}', false)`, h, ws); err != nil {
			return err
		}
	}
	naive := echo.New()
	naive.POST("/v1/verify", func(e echo.Context) error {
		var req struct {
			Credential, WorkspaceID, Product, SourceIP string
		}
		if err := json.NewDecoder(e.Request().Body).Decode(&req); err != nil {
			return err
		}
		cred, err := domain.ParseCredential(req.Credential)
		if err != nil {
			return e.JSON(200, map[string]any{"allowed": false, "code": "MALFORMED"})
		}
		var wsID, bt string
		var allow []string
		var deleted bool
		err = pool.QueryRow(e.Request().Context(), `SELECT workspace_id, business_type, allowlist, deleted FROM naive_keys WHERE secret_hash = $1`,
			domain.HashCredential(benchPepper, cred)).Scan(&wsID, &bt, &allow, &deleted)
		if err == pgx.ErrNoRows {
			return e.JSON(200, map[string]any{"allowed": false, "code": "NOT_FOUND"})
		}
		if err != nil {
			return err
		}
		a, _ := domain.ParseAllowlist(allow)
		ok := !deleted && wsID == req.WorkspaceID && bt == req.Product && a.Allows(netip.MustParseAddr(req.SourceIP))
		return e.JSON(200, map[string]any{"allowed": ok, "code": "VALID", "workspace_id": wsID})
	})
	// The ceiling: Echo decoding the same request and writing a fixed answer.
	bare := echo.New()
	answer := []byte(`{"allowed":true,"code":"VALID"}`)
	bare.POST("/v1/verify", func(e echo.Context) error {
		var req struct {
			Credential  string `json:"credential"`
			WorkspaceID string `json:"workspace_id"`
			Product     string `json:"product"`
			SourceIP    string `json:"source_ip"`
		}
		if err := json.NewDecoder(e.Request().Body).Decode(&req); err != nil {
			return err
		}
		return e.Blob(200, echo.MIMEApplicationJSON, answer)
	})
	klURL, stopKL := serveOn(svc.Handler())
	defer stopKL()
	naiveURL, stopNaive := serveOn(naive)
	defer stopNaive()
	bareURL, stopBare := serveOn(bare)
	defer stopBare()

	// Each server is loaded in turns, alternately, and each figure is the median of
	// its turns: none pays alone for the machine's moments or for going first.
	const workers, turns, d = 32, 3, 2 * time.Second
	type figures struct {
		rate     []float64
		p50, p99 []time.Duration
	}
	urls := []string{klURL, bareURL, naiveURL}
	got := make([]figures, len(urls))
	for range turns {
		for i, u := range urls {
			rate, p50, p99, err := load(u+"/v1/verify", token, bodies, workers, d)
			if err != nil {
				return fmt.Errorf("verify load on %s: %w", u, err)
			}
			got[i].rate, got[i].p50, got[i].p99 = append(got[i].rate, rate), append(got[i].p50, p50), append(got[i].p99, p99)
		}
	}
	median := func(f figures) (float64, time.Duration, time.Duration) {
		slices.Sort(f.rate)
		slices.Sort(f.p50)
		slices.Sort(f.p99)
		return f.rate[turns/2], f.p50[turns/2], f.p99[turns/2]
	}
	klRate, klP50, klP99 := median(got[0])
	bareRate, bareP50, bareP99 := median(got[1])
	naiveRate, naiveP50, naiveP99 := median(got[2])
	report(fmt.Sprintf("HTTP verify, %d clients (req/s) vs bare Echo JSON handler", workers), klRate, bareRate, "/s")
	report(fmt.Sprintf("HTTP verify, %d clients (req/s) vs naive PostgreSQL lookup", workers), klRate, naiveRate, "/s")
	table = append(table, row{name: "HTTP verify latency p50 / p99: keyledger | bare Echo | naive PostgreSQL",
		value: fmt.Sprintf("%v / %v", klP50.Round(time.Microsecond), klP99.Round(time.Microsecond)),
		ceiling: fmt.Sprintf("%v / %v | %v / %v", bareP50.Round(time.Microsecond), bareP99.Round(time.Microsecond),
			naiveP50.Round(time.Microsecond), naiveP99.Round(time.Microsecond))})
	fmt.Fprintf(os.Stderr, "  latency p50/p99: keyledger %v/%v, bare %v/%v, naive %v/%v\n", klP50, klP99, bareP50, bareP99, naiveP50, naiveP99)
	return nil
}
