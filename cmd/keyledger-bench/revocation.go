package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyledger/keyledger/service"
)

// benchRevocation: from the 2xx of a DELETE on one instance to a second instance
// refusing the key over HTTP, idle and while a load runs on the first instance; and
// how many first verifications on the second instance, sent the moment the DELETE
// was answered, still said VALID. With X-Keyledger-Consistency: all-instances the
// answer waits for the second instance, so none may.
func benchRevocation(ctx context.Context, second *service.Service, c *client, trials int) error {
	ws, err := c.workspace("revocation")
	if err != nil {
		return err
	}
	url, stop := serveOn(second.Handler())
	defer stop()
	verify := func(secret string) (string, error) {
		body, _ := json.Marshal(map[string]any{"credential": secret, "workspace_id": ws, "product": "maas", "source_ip": "10.1.2.3"})
		req, _ := http.NewRequest("POST", url+"/v1/verify", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+gatewayToken)
		req.Header.Set("Content-Type", "application/json")
		res, err := c.http.Do(req)
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		var d struct{ Code string }
		return d.Code, json.NewDecoder(res.Body).Decode(&d)
	}
	trial := func(consistency bool) (time.Duration, bool, error) {
		st, hdr, body, err := c.do("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"})
		if err != nil || st != 201 {
			return 0, false, fmt.Errorf("key: %d %s %v", st, body, err)
		}
		var k struct{ ID, Secret string }
		_ = json.Unmarshal(body, &k)
		pos, _ := strconv.ParseUint(hdr.Get("X-Keyledger-Position"), 10, 64)
		if err := second.Index().WaitFor(ctx, pos); err != nil {
			return 0, false, err
		}
		var h []string
		if consistency {
			h = []string{"X-Keyledger-Consistency", "all-instances"}
		}
		st, _, body, err = c.do("DELETE", "/v1/workspaces/"+ws+"/api-keys/"+k.ID, nil, h...)
		if err != nil || st != 204 {
			return 0, false, fmt.Errorf("delete: %d %s %v", st, body, err)
		}
		done := time.Now()
		stale := false
		for first := true; ; first = false {
			code, err := verify(k.Secret)
			if err != nil {
				return 0, false, err
			}
			if code == "DELETED" {
				return time.Since(done), stale, nil
			}
			stale = stale || first
			if time.Since(done) > 5*time.Second {
				return 0, false, fmt.Errorf("the second instance never refused a deleted key (%s)", code)
			}
		}
	}
	measure := func(name string, consistency bool) error {
		var lat []time.Duration
		stale := 0
		for range trials {
			d, s, err := trial(consistency)
			if err != nil {
				return err
			}
			lat = append(lat, d)
			if s {
				stale++
			}
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		r := func(d time.Duration) time.Duration { return d.Round(time.Microsecond) }
		table = append(table, row{name: fmt.Sprintf("revocation, DELETE answered → refused by a second instance over HTTP, %s: p50 / p99 / max; first verification still VALID", name),
			value: fmt.Sprintf("%v / %v / %v; %d of %d", r(lat[len(lat)/2]), r(lat[len(lat)*99/100]), r(lat[len(lat)-1]), stale, trials)})
		fmt.Fprintf(os.Stderr, "  %s: p50 %v p99 %v max %v, %d of %d stale\n", name, lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1], stale, trials)
		return nil
	}
	if err := measure("idle", false); err != nil {
		return err
	}
	// Load on the first instance: key creations, as fast as four clients go.
	loadCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var created atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loadCtx.Err() == nil {
				if st, _, _, err := c.do("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "search"}); err == nil && st == 201 {
					created.Add(1)
				}
			}
		}()
	}
	began := time.Now()
	err = measure("under load", false)
	if err == nil {
		err = measure("under load, X-Keyledger-Consistency: all-instances", true)
	}
	cancel()
	wg.Wait()
	fmt.Fprintf(os.Stderr, "  load: %.0f key creations/s\n", float64(created.Load())/time.Since(began).Seconds())
	return err
}
