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

func TestParseAllowlistTextLimitsTheRawInput(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string // the entries, or nil for a refusal
		field    string
		code     string
	}{
		{"commas only after an address", "1.2.3.4" + strings.Repeat(",", 100000), nil, "", "allowlist_too_long"},
		{"spaces only", strings.Repeat(" ", domain.MaxAllowlistChars+1), nil, "", "allowlist_too_long"},
		{"at the limit", "1.2.3.4" + strings.Repeat(";", domain.MaxAllowlistChars-7), []string{"1.2.3.4"}, "", ""},
		{"characters, not bytes", "1.2.3.4" + strings.Repeat("、", domain.MaxAllowlistChars-7), []string{"1.2.3.4"}, "", ""},
		{"one character over", "1.2.3.4" + strings.Repeat("、", domain.MaxAllowlistChars-6), nil, "", "allowlist_too_long"},
		{"any whitespace separates", "1.2.3.4\u00a010.0.0.0/8\v2001:db8::1\f::1\u30008.8.8.8", []string{"1.2.3.4", "10.0.0.0/8", "2001:db8::1", "::1", "8.8.8.8"}, "", ""},
		{"semicolons", "1.2.3.4;;5.6.7.8", []string{"1.2.3.4", "5.6.7.8"}, "", ""},
		{"zone", "1.2.3.4, fe80::1%eth0", nil, "[1]", "invalid_ip"},
		{"mapped zone", "::ffff:1.2.3.4%eth0", nil, "[0]", "invalid_ip"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := domain.ParseAllowlistText(c.in)
			if c.want != nil {
				if err != nil || !reflect.DeepEqual(a.Entries(), c.want) {
					t.Fatalf("got %v, %v; want %v", a.Entries(), err, c.want)
				}
				return
			}
			if field, code := fieldCode(t, err); field != c.field || code != c.code {
				t.Fatalf("got %q %q (%v), want %q %q", field, code, err, c.field, c.code)
			}
		})
	}
}

func TestParseAllowlistRefusesZones(t *testing.T) {
	for _, in := range []string{"fe80::1%eth0", "::ffff:1.2.3.4%eth0", "fe80::1%eth0/64", "::ffff:10.0.0.0%1/104", "fe80::1%25eth0", "1.2.3.4%eth0"} {
		_, err := domain.ParseAllowlist([]string{in})
		if field, code := fieldCode(t, err); field != "[0]" || code != "invalid_ip" {
			t.Errorf("%q: got %q %q (%v)", in, field, code, err)
		}
	}
}

func TestParseAllowlistCountsEmptyEntries(t *testing.T) {
	cases := []struct {
		name    string
		entries []string
		want    map[string]string // field → code
	}{
		{"empty entry", []string{"1.2.3.4", ""}, map[string]string{"[1]": "invalid_ip"}},
		{"blank entry", []string{"  ", "1.2.3.4"}, map[string]string{"[0]": "invalid_ip"}},
		{"blank entries count toward the length", []string{"1.2.3.4", strings.Repeat(" ", domain.MaxAllowlistChars)}, map[string]string{"": "allowlist_too_long"}},
		{"empty entries count toward the number", append(make([]string, domain.MaxAllowlistEntries), "1.2.3.4"), map[string]string{"": "allowlist_too_many"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := domain.ParseAllowlist(c.entries)
			var ve *domain.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v", err)
			}
			got := map[string]string{}
			for _, f := range ve.Fields {
				got[f.Field] = f.Code
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestMergePrefixesFieldPaths(t *testing.T) {
	cases := []struct{ prefix, field, want string }{
		{"allowlist", "", "allowlist"},
		{"allowlist", "[2]", "allowlist[2]"},
		{"naming", "prefix", "naming.prefix"},
		{"", "name", "name"},
		{"", "", ""},
	}
	for _, c := range cases {
		var v domain.ValidationError
		in := &domain.ValidationError{}
		in.Add(c.field, "code", "message")
		if err := v.Merge(c.prefix, in); err != nil {
			t.Fatalf("merge returned %v", err)
		}
		if got := v.Fields[0].Field; got != c.want {
			t.Errorf("Merge(%q) of %q: got %q, want %q", c.prefix, c.field, got, c.want)
		}
	}
	_, err := domain.ParseAllowlistText(strings.Repeat(",", domain.MaxAllowlistChars+1))
	var v domain.ValidationError
	v.Merge("allowlist", err)
	if len(v.Fields) != 1 || v.Fields[0].Field != "allowlist" {
		t.Fatalf("got %+v", v.Fields)
	}
}

func TestParseSourceIP(t *testing.T) {
	cases := []struct {
		in   string
		want string // the address, or "" for a refusal
	}{
		{"1.2.3.4", "1.2.3.4"},
		{"::ffff:1.2.3.4", "1.2.3.4"},
		{"::FFFF:10.0.0.1", "10.0.0.1"},
		{"2001:DB8::1", "2001:db8::1"},
		{"::1", "::1"},
		{"", ""},
		{" 1.2.3.4", ""},
		{"1.2.3.4/32", ""},
		{"01.2.3.4", ""},
		{"1.2.3", ""},
		{"fe80::1%eth0", ""},
		{"::ffff:1.2.3.4%eth0", ""},
		{"fe80::1%", ""},
		{"localhost", ""},
	}
	for _, c := range cases {
		a, err := domain.ParseSourceIP(c.in)
		if c.want != "" {
			if err != nil || a.String() != c.want || (a.Is4In6()) {
				t.Errorf("%q: got %v, %v; want %s", c.in, a, err, c.want)
			}
			continue
		}
		if field, code := fieldCode(t, err); field != "source_ip" || code != "invalid_ip" || a.IsValid() {
			t.Errorf("%q: got %v, %q %q (%v)", c.in, a, field, code, err)
		}
	}
}

func TestAllowlistDashRanges(t *testing.T) {
	a, err := domain.ParseAllowlistText("10.0.0.1-10.0.0.50，2001:db8::10-2001:DB8::1f、::ffff:1.2.3.4-::ffff:1.2.3.9, 10.0.0.0/30")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.1-10.0.0.50", "2001:db8::10-2001:db8::1f", "1.2.3.4-1.2.3.9", "10.0.0.0/30"}
	if got := a.Entries(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for addr, allowed := range map[string]bool{
		"10.0.0.1": true, "10.0.0.50": true, "10.0.0.51": false, "10.0.0.0": true, "9.255.255.255": false,
		"2001:db8::10": true, "2001:db8::1f": true, "2001:db8::20": false, "2001:db8::f": false,
		"1.2.3.9": true, "1.2.3.10": false, "::ffff:10.0.0.30": true,
	} {
		if got := a.Allows(netip.MustParseAddr(addr)); got != allowed {
			t.Errorf("%s: allowed %v, want %v", addr, got, allowed)
		}
	}
	_, err = domain.ParseAllowlist([]string{"10.0.0.50-10.0.0.1", "10.0.0.1-2001:db8::1", "10.0.0.1-", "-10.0.0.1", "10.0.0.0-10.0.0.3",
		"10.0.0.0/30", "1.1.1.1", "1.1.1.1-1.1.1.1", "10.0.0.1-10.0.0.2-10.0.0.3", "10.0.0.0/24-10.0.1.0"})
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v", err)
	}
	got := map[string]string{}
	for _, f := range ve.Fields {
		got[f.Field] = f.Code
	}
	wantErr := map[string]string{"[0]": "invalid_ip", "[1]": "invalid_ip", "[2]": "invalid_ip", "[3]": "invalid_ip",
		"[5]": "duplicate_entry", "[7]": "duplicate_entry", "[8]": "invalid_ip", "[9]": "invalid_ip"}
	if !reflect.DeepEqual(got, wantErr) {
		t.Fatalf("got %v, want %v", got, wantErr)
	}
	for _, f := range ve.Fields {
		if f.Field == "[5]" && !strings.Contains(f.Message, "entry 4") {
			t.Errorf("the duplicate names the entry it repeats: %q", f.Message)
		}
	}
}
