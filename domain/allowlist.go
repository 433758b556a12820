package domain

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Limits of an allowlist. They keep one key's rules small enough to check on the hot
// path and to show in a console.
const (
	MaxAllowlistEntries = 100
	MaxAllowlistChars   = 4096
)

// Allowlist is a normalized set of IPv4/IPv6 addresses and ranges. The zero value
// (no entries) allows every source address.
type Allowlist struct {
	prefixes []netip.Prefix
}

// ParseAllowlistText splits "1.2.3.4, 10.0.0.0/8\n2001:db8::/32" on commas and
// whitespace and parses the entries.
func ParseAllowlistText(s string) (Allowlist, error) {
	if len(s) > MaxAllowlistChars {
		return Allowlist{}, invalid("", "allowlist_too_long", fmt.Sprintf("at most %d characters", MaxAllowlistChars))
	}
	return ParseAllowlist(strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\r' || r == '\t'
	}))
}

// ParseAllowlist parses addresses ("1.2.3.4", "2001:db8::1") and CIDR ranges
// ("10.0.0.0/8"). Ranges are normalized to their network address, IPv4-mapped IPv6
// addresses to IPv4, single addresses to /32 or /128; the same network written twice
// (even differently) is an error. Every problem is reported with its index.
func ParseAllowlist(entries []string) (Allowlist, error) {
	var verr ValidationError
	if len(entries) > MaxAllowlistEntries {
		verr.Add("", "allowlist_too_many", fmt.Sprintf("at most %d entries, got %d", MaxAllowlistEntries, len(entries)))
		return Allowlist{}, &verr
	}
	total := 0
	seen := make(map[netip.Prefix]int, len(entries))
	out := make([]netip.Prefix, 0, len(entries))
	for i, raw := range entries {
		field := fmt.Sprintf("[%d]", i)
		total += len(raw)
		p, err := parseAllowEntry(strings.TrimSpace(raw))
		if err != nil {
			verr.Add(field, "invalid_ip", err.Error())
			continue
		}
		if j, dup := seen[p]; dup {
			verr.Add(field, "duplicate_entry", fmt.Sprintf("%s is the same network as entry %d", quoteInput(raw), j))
			continue
		}
		seen[p] = i
		out = append(out, p)
	}
	if total > MaxAllowlistChars {
		verr.Add("", "allowlist_too_long", fmt.Sprintf("at most %d characters in all", MaxAllowlistChars))
	}
	if err := verr.Err(); err != nil {
		return Allowlist{}, err
	}
	return Allowlist{prefixes: out}, nil
}

func parseAllowEntry(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("empty entry")
	}
	if strings.Contains(s, "%") {
		return netip.Prefix{}, fmt.Errorf("%s: zoned addresses are not allowed", quoteInput(s))
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%s is not an IP address or CIDR range", quoteInput(s))
		}
		addr, bits := p.Addr(), p.Bits()
		if addr.Is4In6() && bits >= 96 {
			addr, bits = addr.Unmap(), bits-96
		}
		return netip.PrefixFrom(addr, bits).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s is not an IP address or CIDR range", quoteInput(s))
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Entries returns the normalized entries: single addresses without a suffix, ranges
// in CIDR notation, in input order.
func (a Allowlist) Entries() []string {
	out := make([]string, len(a.prefixes))
	for i, p := range a.prefixes {
		if p.IsSingleIP() {
			out[i] = p.Addr().String()
		} else {
			out[i] = p.String()
		}
	}
	return out
}

// Len is the number of entries.
func (a Allowlist) Len() int { return len(a.prefixes) }

// Allows reports whether addr may call: always when the list is empty.
func (a Allowlist) Allows(addr netip.Addr) bool {
	if len(a.prefixes) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, p := range a.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// quoteInput quotes user input for an error message, cut short: an error never
// carries a whole credential someone pasted into the wrong field.
func quoteInput(s string) string {
	const max = 24
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return strconv.Quote(s)
}

// Prefixes returns the normalized networks, for matching on the hot path.
func (a Allowlist) Prefixes() []netip.Prefix { return append([]netip.Prefix(nil), a.prefixes...) }
