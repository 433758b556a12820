//go:build !race

// The race detector makes sync.Pool drop objects at random, so allocation counts are
// only meaningful without it; `make test` runs this file in a pass without -race.

package credindex_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections/credindex"
)

// The allowed path allocates nothing.
func TestVerifyAllocatesNothingWhenAllowed(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	x, cred := indexWithKey(t, clock, 0)
	v := credindex.Verification{Credential: cred, SourceIP: netip.MustParseAddr("10.0.0.1"), WorkspaceID: "ws_1", Product: domain.BusinessSearch}
	if d := x.Verify(v); !d.Allowed {
		t.Fatalf("%+v", d)
	}
	if n := testing.AllocsPerRun(1000, func() { x.Verify(v) }); n != 0 {
		t.Fatalf("%.1f allocations per allowed verification", n)
	}
}
