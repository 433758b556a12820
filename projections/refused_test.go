package projections_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyledger/keyledger/fault"
	"github.com/keyledger/keyledger/projections"
)

// TestInputPostgreSQLRefusesIsNotAnOutage: a value PostgreSQL refuses as data (here
// invalid UTF-8) is the client's input, a 400 upstream, never a 503.
func TestInputPostgreSQLRefusesIsNotAnOutage(t *testing.T) {
	e := setup(t)
	_, err := projections.Workspaces{Pool: e.pool}.Get(context.Background(), "org_\xff\xfe", "ws_x")
	if !errors.Is(err, fault.ErrRefusedInput) || errors.Is(err, fault.ErrUnavailable) {
		t.Fatalf("got %v, want a refused input", err)
	}
}
