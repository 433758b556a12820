package domain_test

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/domain"
)

func TestParseAllowlistNormalizes(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", []string{}},
		{"1.2.3.4, 10.0.0.0/8, 2001:db8::/32", []string{"1.2.3.4", "10.0.0.0/8", "2001:db8::/32"}},
		{"10.1.2.3/8", []string{"10.0.0.0/8"}},
		{"::ffff:1.2.3.4", []string{"1.2.3.4"}},
		{"::ffff:10.0.0.0/104", []string{"10.0.0.0/8"}},
		{"1.2.3.4/32\n2001:DB8::1", []string{"1.2.3.4", "2001:db8::1"}},
		{"0.0.0.0/0 ::/0", []string{"0.0.0.0/0", "::/0"}},
	}
	for _, c := range cases {
		a, err := domain.ParseAllowlistText(c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if got := a.Entries(); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %v, want %v", c.in, got, c.want)
		}
	}
}

func TestParseAllowlistReportsEveryField(t *testing.T) {
	_, err := domain.ParseAllowlist([]string{"1.2.3.4", "300.1.1.1", "10.0.0.0/8", "10.9.9.9/8", "fe80::1%eth0", "", "1.2.3.4/33"})
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v", err)
	}
	got := map[string]string{}
	for _, f := range ve.Fields {
		got[f.Field] = f.Code
	}
	want := map[string]string{"[1]": "invalid_ip", "[3]": "duplicate_entry", "[4]": "invalid_ip", "[5]": "invalid_ip", "[6]": "invalid_ip"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestParseAllowlistLimits(t *testing.T) {
	many := make([]string, domain.MaxAllowlistEntries+1)
	for i := range many {
		many[i] = fmt.Sprintf("10.0.%d.%d", i/256, i%256)
	}
	if _, err := domain.ParseAllowlist(many); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("too many entries: %v", err)
	}
	if _, err := domain.ParseAllowlistText(strings.Repeat("1.2.3.4 ", 600)); err == nil {
		t.Fatal("too long text must fail")
	}
}

func TestAllowlistAllows(t *testing.T) {
	a, _ := domain.ParseAllowlistText("1.2.3.4, 10.0.0.0/8, 2001:db8::/32")
	for addr, want := range map[string]bool{
		"1.2.3.4": true, "1.2.3.5": false, "10.200.0.1": true, "11.0.0.1": false,
		"2001:db8::42": true, "2001:db9::1": false, "::ffff:10.0.0.1": true,
	} {
		if got := a.Allows(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: got %v, want %v", addr, got, want)
		}
	}
	var empty domain.Allowlist
	if !empty.Allows(netip.MustParseAddr("8.8.8.8")) {
		t.Error("an empty allowlist allows everyone")
	}
}
