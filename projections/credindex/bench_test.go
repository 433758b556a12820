package credindex_test

import (
	"crypto/rand"
	"net/netip"
	"strconv"
	"testing"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/projections/credindex"
)

// BenchmarkVerifyAllowed times the allowed path over 100,000 indexed MaaS keys, the
// calls spread over 1,000 of them (go test -bench VerifyAllowed ./projections/credindex/).
func BenchmarkVerifyAllowed(b *testing.B) {
	x := credindex.New(nil, credindex.Config{Pepper: indexPepper})
	recs := []eventstore.Record{{Sequence: 1, Aggregate: "ws_1", Event: domain.WorkspaceCreated{WorkspaceID: "ws_1", OrganizationID: "org_1"}}}
	var sample []string
	for i := range 100_000 {
		cred, _ := domain.GenerateCredential(rand.Reader, domain.KindMaaSKey)
		if len(sample) < 1000 {
			sample = append(sample, cred.String())
		}
		recs = append(recs, eventstore.Record{Sequence: uint64(i + 2), Aggregate: "ws_1", Event: domain.APIKeyCreated{
			KeyID: "key_" + strconv.Itoa(i), BusinessType: domain.BusinessMaaS, Allowlist: []string{"10.0.0.0/8"},
			SecretHash: domain.HashCredential(indexPepper, cred)}})
	}
	x.Apply(recs...)
	v := credindex.Verification{SourceIP: netip.MustParseAddr("10.1.2.3"), WorkspaceID: "ws_1", Product: domain.BusinessMaaS}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		v.Credential = sample[i%len(sample)]
		if d := x.Verify(v); !d.Allowed {
			b.Fatal(d.Code)
		}
	}
}
