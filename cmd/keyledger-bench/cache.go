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
// command side holds afterwards beside what its cache counts.
func benchCache(ctx context.Context, store *eventstore.Store, n int) error {
	for _, budget := range []int64{8 << 20, commands.DefaultCacheBytes} {
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
		st := app.CacheStats()[domain.AggregateWorkspace]
		entries, counted, evictions, misses := st.Entries.Load(), float64(st.Bytes.Load())/(1<<20), st.Evictions.Load(), st.Misses.Load()
		st = nil
		// What the command side holds: the heap with it, less the heap once it is
		// dropped (whatever else the process frees meanwhile cancels out).
		runtime.GC()
		var with, without runtime.MemStats
		runtime.ReadMemStats(&with)
		runtime.KeepAlive(app)
		app = nil
		runtime.GC()
		runtime.ReadMemStats(&without)
		heap := float64(int64(with.HeapAlloc)-int64(without.HeapAlloc)) / (1 << 20)
		report(fmt.Sprintf("heap the command side holds after touching %d workspaces, cache budget %d MiB (MiB)", n, budget>>20), heap, 0, "MiB")
		fmt.Fprintf(os.Stderr, "    %.0f workspaces/s; cache: %d entries, %.1f MiB counted, %d evictions, %d misses\n",
			rate, entries, counted, evictions, misses)
	}
	return nil
}
