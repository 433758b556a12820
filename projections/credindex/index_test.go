package credindex_test

import (
	"bytes"
	"crypto/rand"
	"net/netip"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/projections/credindex"
)

var indexPepper = bytes.Repeat([]byte{3}, 32)

// fakeClock is advanced by the test: rate limits are checked on simulated time.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func indexWithKey(t *testing.T, clock *fakeClock, qps domain.QPS) (*credindex.Index, string) {
	t.Helper()
	x := credindex.New(nil, credindex.Config{Pepper: indexPepper, Clock: clock.Now})
	cred, _ := domain.GenerateCredential(rand.Reader, domain.KindSearchKey)
	x.Apply(
		eventstore.Record{Sequence: 1, Aggregate: "ws_1", Event: domain.WorkspaceCreated{WorkspaceID: "ws_1", OrganizationID: "org_1"}},
		eventstore.Record{Sequence: 2, Aggregate: "ws_1", Event: domain.APIKeyCreated{KeyID: "key_1", BusinessType: domain.BusinessSearch,
			QPSLimit: qps, SecretHash: domain.HashCredential(indexPepper, cred)}},
	)
	return x, cred.String()
}

func call(x *credindex.Index, cred string) credindex.Decision {
	return x.Verify(credindex.Verification{Credential: cred, SourceIP: netip.MustParseAddr("10.0.0.1"), WorkspaceID: "ws_1", Product: domain.BusinessSearch})
}

// Over 5 seconds at twice the QPS, the allowed count is within 5% of the limit.
func TestRateLimitAccuracy(t *testing.T) {
	for _, qps := range []domain.QPS{1, 7, 20, 100, 1000} {
		clock := &fakeClock{now: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)}
		x, cred := indexWithKey(t, clock, qps)
		calls := int(2 * qps * 5)
		step := 5 * time.Second / time.Duration(calls)
		allowed := 0
		for i := 0; i < calls; i++ {
			d := call(x, cred)
			switch {
			case d.Allowed:
				allowed++
			case d.Code != credindex.CodeRateLimited || d.RetryAfter <= 0:
				t.Fatalf("qps %d: %+v", qps, d)
			}
			clock.now = clock.now.Add(step)
		}
		limit := float64(qps) * 5
		if dev := (float64(allowed) - limit) / limit; dev > 0.05 || dev < -0.05 {
			t.Errorf("qps %d: %d allowed in 5 s, limit %.0f (%.1f%% off)", qps, allowed, limit, 100*dev)
		}
	}
}

// Editing the QPS changes the rate without refilling the bucket.
func TestQPSEditKeepsWhatWasConsumed(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)}
	x, cred := indexWithKey(t, clock, 10) // burst 1
	if !call(x, cred).Allowed {
		t.Fatal("first call")
	}
	x.Apply(eventstore.Record{Sequence: 3, Aggregate: "ws_1", Event: domain.APIKeyUpdated{KeyID: "key_1", QPSLimit: 100}})
	if d := call(x, cred); d.Allowed {
		t.Fatal("the edit refilled the bucket")
	}
	clock.now = clock.now.Add(11 * time.Millisecond) // one token at 100 QPS
	if !call(x, cred).Allowed {
		t.Fatal("the new rate is not in force")
	}
	x.Apply(eventstore.Record{Sequence: 4, Aggregate: "ws_1", Event: domain.APIKeyUpdated{KeyID: "key_1"}})
	for i := 0; i < 100; i++ {
		if !call(x, cred).Allowed {
			t.Fatal("an unlimited key was limited")
		}
	}
}
