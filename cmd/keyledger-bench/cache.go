package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// benchCache touches n workspaces through the command side (a creation each, no
// HTTP) with a small budget and with the default one, and reports the heap each
// instance holds afterwards beside what its cache counts.
func benchCache(ctx context.Context, store *eventstore.Store, n int) error {
	for _, budget := range []int64{8 << 20, commands.DefaultCacheBytes} {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		app := commands.New(commands.Deps{Store: store, Pepper: benchPepper, CacheBytes: budget})
		boot, err := app.Bootstrap(ctx, commands.Bootstrap{OrganizationName: "cache-" + strconv.FormatInt(budget, 10), PrimaryName: "admin"})
		if err != nil {
			return err
		}
		c := commands.Caller{OrganizationID: boot.OrganizationID, AccountID: boot.AccountID, AccessKeyID: boot.AccessKeyID, Primary: true}
		rate, err := parallel(*clients, n, func(_, i int) error {
			_, err := app.CreateWorkspace(ctx, commands.CreateWorkspace{Caller: c, Name: "ws-" + strconv.Itoa(i)})
			return err
		})
		if err != nil {
			return err
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		st := app.CacheStats()[domain.AggregateWorkspace]
		heap := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)
		report(fmt.Sprintf("instance heap after touching %d workspaces, cache budget %d MiB (MiB)", n, budget>>20), heap, 0, "MiB")
		fmt.Fprintf(os.Stderr, "    %.0f workspaces/s; cache: %d entries, %.1f MiB counted, %d evictions, %d misses\n",
			rate, st.Entries.Load(), float64(st.Bytes.Load())/(1<<20), st.Evictions.Load(), st.Misses.Load())
		runtime.KeepAlive(app)
	}
	return nil
}
