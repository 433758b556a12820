package domain_test

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/domain"
)

// FuzzParseCredential: the parser never panics, accepts only well-formed credentials,
// and what it accepts round-trips.
func FuzzParseCredential(f *testing.F) {
	c, _ := domain.GenerateCredential(bytes.NewReader(bytes.Repeat([]byte{42}, 32)), domain.KindMaaSKey)
	for _, s := range []string{c.String(), "", "klm_", "kls_" + strings.Repeat("0", 49), c.String()[:52] + "Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := domain.ParseCredential(s)
		if err != nil {
			return
		}
		if p.String() != s || len(s) != domain.CredentialLen || !strings.HasPrefix(s, string(p.Kind())) {
			t.Fatalf("accepted %q as %q", s, p.String())
		}
	})
}

// FuzzParseAllowlist: the parser never panics; what it accepts is normalized, has no
// duplicates, and parses again to the same entries.
func FuzzParseAllowlist(f *testing.F) {
	for _, s := range []string{"1.2.3.4, 10.0.0.0/8, 2001:db8::/32", "::ffff:1.2.3.4", "10.1.2.3/8", "fe80::1%eth0", "", "1.2.3.4 1.2.3.4/32"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := domain.ParseAllowlistText(s)
		if err != nil {
			return
		}
		entries := a.Entries()
		seen := map[string]bool{}
		for _, e := range entries {
			if seen[e] {
				t.Fatalf("%q: duplicate %q", s, e)
			}
			seen[e] = true
			if p, err := netip.ParsePrefix(e); err == nil && p.Masked() != p {
				t.Fatalf("%q: %q not normalized", s, e)
			}
		}
		b, err := domain.ParseAllowlist(entries)
		if err != nil || strings.Join(b.Entries(), ",") != strings.Join(entries, ",") {
			t.Fatalf("%q: normalized entries %v do not parse to themselves: %v", s, entries, err)
		}
	})
}
