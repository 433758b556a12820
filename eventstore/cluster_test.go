package eventstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/eventstore/natstest"
)

// TestInstancesStartTogetherOnAFreshCluster: two instances that open the log, the
// vault and the snapshots at the same moment on a three-node cluster without them
// both start (a clustered server times one concurrent creation out while the new
// stream elects its leader; that is retried, not fatal).
func TestInstancesStartTogetherOnAFreshCluster(t *testing.T) {
	cluster := natstest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		nc := cluster.Connect(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			store, err := eventstore.Open(ctx, nc, eventstore.Config{Replicas: 3})
			if err == nil {
				_, err = eventstore.OpenVault(ctx, store.JetStream(), make([]byte, 32), 3, 0)
			}
			if err == nil {
				_, err = eventstore.OpenSnapshots(ctx, store.JetStream(), 3)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
}
