package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/projections"
	"github.com/keyledger/keyledger/service"
)

// benchUsage: ingestion through HTTP in batches of 1,000 next to raw JetStream async
// publishing of the same records; the aggregation lag at half the measured ingestion
// rate; a month's cost query of a workspace of 10M aggregated records.
func benchUsage(ctx context.Context, svc *service.Service, c *client) error {
	ws, err := c.workspace("usage")
	if err != nil {
		return err
	}
	st, _, b, err := c.do("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"})
	if err != nil || st != 201 {
		return fmt.Errorf("key: %d %.200s %v", st, b, err)
	}
	var key struct{ ID string }
	_ = json.Unmarshal(b, &key)
	if err := svc.WaitCaughtUp(ctx, time.Minute); err != nil {
		return err
	}
	gw := &client{base: c.base, secret: gatewayToken, http: c.http}
	batch := func(prefix string, n int) []map[string]any {
		at := time.Now().UTC().Format(time.RFC3339Nano)
		recs := make([]map[string]any, n)
		for i := range recs {
			recs[i] = map[string]any{"record_id": fmt.Sprintf("%s-%d", prefix, i), "credential_id": key.ID, "workspace_id": ws,
				"product": "maas", "resource": "qwen-max", "units": map[string]int64{"input_tokens": 1200, "output_tokens": 300},
				"cost_micros": 4200, "currency": "CNY", "at": at}
		}
		return recs
	}
	send := func(recs []map[string]any) error {
		st, _, b, err := gw.do("POST", "/v1/usage", map[string]any{"records": recs})
		if err != nil || st != 200 {
			return fmt.Errorf("usage: %d %.200s %v", st, b, err)
		}
		return nil
	}

	// Ingestion: *usageN records, 1,000 per request, four clients.
	batches := *usageN / 1000
	httpRate, err := parallel(4, batches, func(_, i int) error { return send(batch(fmt.Sprintf("in-%d", i), 1000)) })
	if err != nil {
		return err
	}
	httpRate *= 1000
	rawRate, err := rawUsagePublish(ctx, svc.Store().JetStream(), ws, key.ID, batches*1000)
	if err != nil {
		return err
	}
	report("usage ingestion: POST /v1/usage, batches of 1,000, 4 clients (records/s) vs raw JetStream async publish", httpRate, rawRate, "rec/s")

	// Aggregation lag at half that rate: batches of 100, each timed from its 200 until
	// the cost views include it.
	if err := svc.CostsCaughtUp(ctx, 5*time.Minute); err != nil {
		return err
	}
	rate := httpRate / 2
	every := time.Duration(float64(time.Second) * 100 / rate)
	var mu sync.Mutex
	var lags []time.Duration
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	tick := time.NewTicker(every)
	defer tick.Stop()
	end := time.Now().Add(*lagFor)
	for i := 0; time.Now().Before(end); i++ {
		<-tick.C
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := send(batch(fmt.Sprintf("lag-%d", i), 100)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return
			}
			answered := time.Now()
			pos, err := svc.Store().Usage().Position(ctx)
			if err == nil {
				err = svc.WaitCosts(ctx, pos)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return
			}
			mu.Lock()
			lags = append(lags, time.Since(answered))
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(lags) == 0 {
		return fmt.Errorf("aggregation lag: no batch measured")
	}
	slices.Sort(lags)
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	table = append(table, row{name: fmt.Sprintf("aggregation lag at %.0f records/s (half the ingestion rate), 200 → in the cost views: p50 / p99 / max", rate),
		value: fmt.Sprintf("%v / %v / %v", r(lags[len(lags)/2]), r(lags[len(lags)*99/100]), r(lags[len(lags)-1]))})
	fmt.Fprintf(os.Stderr, "  aggregation lag at %.0f rec/s: p50 %v p99 %v max %v (%d batches)\n", rate, lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1], len(lags))
	return benchCostQuery(ctx, svc.Pool(), c, ws)
}

// rawUsagePublish is the ceiling of ingestion: the same records, encoded with the
// same envelope and published asynchronously straight to the usage stream, on the
// store's own JetStream client (512 in flight, as keyledger's intake).
func rawUsagePublish(ctx context.Context, js jetstream.JetStream, ws, key string, n int) (float64, error) {
	at := time.Now().UTC()
	start := time.Now()
	futures := make([]jetstream.PubAckFuture, 0, n)
	for i := range n {
		m, err := eventstore.UsageMessage("bench", domain.UsageRecorded{RecordID: fmt.Sprintf("raw-%d", i), OrganizationID: "org_raw",
			WorkspaceID: ws, CredentialID: key, Product: domain.BusinessMaaS, Resource: "qwen-max",
			Units: map[string]int64{"input_tokens": 1200, "output_tokens": 300}, CostMicros: 4200, Currency: "CNY", At: at,
			BillingKind: "workspace", BillingID: ws}, at)
		if err != nil {
			return 0, err
		}
		// With 512 in flight it waits for room, as keyledger's intake does (which
		// waits as long as its write timeout leaves).
		f, err := js.PublishMsgAsync(m, jetstream.WithStallWait(30*time.Second))
		if err != nil {
			return 0, err
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return 0, err
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// benchCostQuery: a workspace whose cost views hold 10,080,000 records over 30 days
// (20 keys × 25 resources × 720 hours, 28 records per hourly row, and their daily
// sums, written straight into the views: the projector's speed is the lag above),
// queried by day and resource over HTTP, next to the same query on PostgreSQL
// without HTTP.
func benchCostQuery(ctx context.Context, pool *pgxpool.Pool, c *client, ws string) error {
	var org string
	if err := pool.QueryRow(ctx, `SELECT organization_id FROM workspaces WHERE id = $1`, ws).Scan(&org); err != nil {
		return err
	}
	to := time.Now().UTC().Truncate(24 * time.Hour)
	from := to.AddDate(0, 0, -30)
	if _, err := pool.Exec(ctx, `INSERT INTO costs_hourly (organization_id, workspace_id, hour, credential_id, billing_kind, resource, currency, cost_micros, records)
		SELECT $1, $2, $3::timestamptz + h * interval '1 hour', 'key_' || k, 'workspace', 'model-' || r, 'CNY', 28 * 4200 + h, 28
		FROM generate_series(0, 719) h, generate_series(1, 20) k, generate_series(1, 25) r
		ON CONFLICT DO NOTHING`, org, ws, from); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `INSERT INTO costs_daily (organization_id, workspace_id, day, credential_id, billing_kind, resource, currency, cost_micros, records)
		SELECT organization_id, workspace_id, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', credential_id, 'workspace', resource, currency,
			sum(cost_micros), sum(records)
		FROM costs_hourly WHERE workspace_id = $1 AND credential_id LIKE 'key\_%' AND hour >= $2
		GROUP BY 1, 2, 3, 4, 6, 7
		ON CONFLICT DO NOTHING`, ws, from); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `ANALYZE costs_hourly; ANALYZE costs_daily`); err != nil {
		return err
	}
	cq := projections.CostQuery{From: from, To: to, Granularity: "day", GroupBy: "resource"}
	path := fmt.Sprintf("/v1/workspaces/%s/costs?from=%s&to=%s&granularity=day&group_by=resource", ws, from.Format(time.RFC3339), to.Format(time.RFC3339))
	measure := func(q func() error) ([]time.Duration, error) {
		var lat []time.Duration
		for range *queries {
			start := time.Now()
			if err := q(); err != nil {
				return nil, err
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		return lat, nil
	}
	direct, err := measure(func() error {
		rows, err := projections.Costs{Pool: pool}.OfWorkspace(ctx, org, ws, cq)
		if err == nil && len(rows) != 30*25 {
			err = fmt.Errorf("cost query: %d rows", len(rows))
		}
		return err
	})
	if err != nil {
		return err
	}
	viaHTTP, err := measure(func() error {
		st, _, b, err := c.do("GET", path, nil)
		if err == nil && st != 200 {
			err = fmt.Errorf("costs: %d %.200s", st, b)
		}
		return err
	})
	if err != nil {
		return err
	}
	p := func(l []time.Duration, q int) float64 { return float64(l[len(l)*q/100].Microseconds()) / 1000 }
	table = append(table, row{name: "cost query, one workspace, 30 days by day and resource, 10,080,000 records aggregated: p50 / p99 over HTTP; PostgreSQL alone",
		value: fmt.Sprintf("%.1f / %.1f ms", p(viaHTTP, 50), p(viaHTTP, 99)), ceiling: fmt.Sprintf("%.1f / %.1f ms", p(direct, 50), p(direct, 99))})
	fmt.Fprintf(os.Stderr, "  cost query p50/p99: HTTP %.1f/%.1f ms, PostgreSQL %.1f/%.1f ms\n", p(viaHTTP, 50), p(viaHTTP, 99), p(direct, 50), p(direct, 99))
	return nil
}
