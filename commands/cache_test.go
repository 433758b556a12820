package commands_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
)

// TestTheAggregateCacheIsBounded: touching many workspaces keeps the cache within
// its budget, least recently used out first; an evicted workspace is loaded again
// with its whole state when next used.
func TestTheAggregateCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	deps := f.deps
	deps.CacheBytes = 16 << 10
	app := commands.New(deps)
	c := admin(t, app)
	name := "crawler"
	var first string
	for i := range 200 {
		ws, err := app.CreateWorkspace(ctx, commands.CreateWorkspace{Caller: c, Name: "ws-" + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := app.CreateAPIKey(ctx, commands.CreateAPIKey{Caller: c, WorkspaceID: ws.WorkspaceID, BusinessType: "search", Name: &name}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = ws.WorkspaceID
		}
	}
	st := app.CacheStats()[domain.AggregateWorkspace]
	if b := st.Bytes.Load(); b > deps.CacheBytes || st.Entries.Load() >= 200 || st.Evictions.Load() == 0 || st.Hits.Load() == 0 || st.Misses.Load() < 200 {
		t.Fatalf("cache: %d bytes of %d, %d entries, %d evictions, %d hits, %d misses", b, deps.CacheBytes, st.Entries.Load(),
			st.Evictions.Load(), st.Hits.Load(), st.Misses.Load())
	}
	misses := st.Misses.Load()
	// The first workspace was evicted: its next use loads it with its key's name taken.
	if _, err := app.CreateAPIKey(ctx, commands.CreateAPIKey{Caller: c, WorkspaceID: first, BusinessType: "search", Name: &name}); !errors.Is(err, domain.ErrKeyNameTaken) {
		t.Fatalf("an evicted workspace forgot its state: %v", err)
	}
	if st.Misses.Load() != misses+1 {
		t.Fatalf("the evicted workspace was not loaded again: %d misses, was %d", st.Misses.Load(), misses)
	}
}
