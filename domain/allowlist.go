package domain

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go4.org/netipx"
)

// Limits of an allowlist. They keep one key's rules small enough to check on the hot
// path and to show in a console. MaxAllowlistChars counts the raw input in bytes
// (an address is ASCII), separators and blank entries included.
const (
	MaxAllowlistEntries = 100
	MaxAllowlistChars   = 4096
)

// Allowlist is a normalized set of IPv4/IPv6 addresses and ranges. The zero value
// (no entries) allows every source address.
type Allowlist struct {
	entries []allowEntry
}

// allowEntry is one entry: the addresses it covers, and whether it was written as
// a dash range ("10.0.0.1-10.0.0.50"), which keeps that form (a range need not be a
// CIDR block), or as an address or a CIDR block.
type allowEntry struct {
	addrs netipx.IPRange
	dash  bool
}

// ParseAllowlistText parses the text form of an allowlist, "1.2.3.4, 10.0.0.0/8\n
// 2001:db8::/32": it refuses a raw text longer than MaxAllowlistChars before any other
// work (separators count: "1.2.3.4" followed by a hundred thousand commas is too
// long), then splits it on commas, semicolons and any white space, drops the empty
// pieces and parses the rest with ParseAllowlist. The full-width comma "，" and the
// ideographic comma "、" separate too, as a Chinese keyboard types them. Errors name
// a piece by its index among the pieces; the error on the whole text has the field "".
func ParseAllowlistText(raw string) (Allowlist, error) {
	if n := utf8.RuneCountInString(raw); n > MaxAllowlistChars {
		return Allowlist{}, invalid("", "allowlist_too_long",
			fmt.Sprintf("at most %d characters, got %d", MaxAllowlistChars, n))
	}
	return ParseAllowlist(strings.FieldsFunc(raw, func(r rune) bool {
		return r == ',' || r == ';' || r == '，' || r == '、' || unicode.IsSpace(r)
	}))
}

// ParseAllowlist parses addresses ("1.2.3.4", "2001:db8::1"), CIDR ranges
// ("10.0.0.0/8") and dash ranges ("10.0.0.1-10.0.0.50", "2001:db8::1-2001:db8::ff",
// first and last address included, of one family, first <= last). CIDR ranges are
// normalized to their network address, IPv4-mapped IPv6 addresses to IPv4, single
// addresses to /32 or /128, the addresses of a dash range likewise; the same set of
// addresses written twice (even differently: "10.0.0.0/30" and
// "10.0.0.0-10.0.0.3", "1.2.3.4" and "1.2.3.4-1.2.3.4") is an error naming the
// entry it repeats; overlapping but different entries are allowed, and so are an empty or blank entry and an address
// with a zone ("fe80::1%eth0"). Every problem of an entry is reported with its index
// ("[2]"); a list with more than MaxAllowlistEntries entries or more than
// MaxAllowlistChars characters in all (blank entries count for both) is refused as a
// whole, with the field "", before any entry is parsed.
func ParseAllowlist(entries []string) (Allowlist, error) {
	var verr ValidationError
	if len(entries) > MaxAllowlistEntries {
		verr.Add("", "allowlist_too_many", fmt.Sprintf("at most %d entries, got %d", MaxAllowlistEntries, len(entries)))
		return Allowlist{}, &verr
	}
	total := 0
	for _, raw := range entries {
		total += utf8.RuneCountInString(raw)
	}
	if total > MaxAllowlistChars {
		verr.Add("", "allowlist_too_long", fmt.Sprintf("at most %d characters in all, got %d", MaxAllowlistChars, total))
		return Allowlist{}, &verr
	}
	seen := make(map[netipx.IPRange]int, len(entries))
	out := make([]allowEntry, 0, len(entries))
	for i, raw := range entries {
		field := "[" + strconv.Itoa(i) + "]"
		e, err := parseAllowEntry(strings.TrimSpace(raw))
		if err != nil {
			verr.Add(field, "invalid_ip", err.Error())
			continue
		}
		if j, dup := seen[e.addrs]; dup {
			verr.Add(field, "duplicate_entry", fmt.Sprintf("%s covers the same addresses as entry %d", quoteInput(raw), j))
			continue
		}
		seen[e.addrs] = i
		out = append(out, e)
	}
	if err := verr.Err(); err != nil {
		return Allowlist{}, err
	}
	return Allowlist{entries: out}, nil
}

const notAnEntry = "%s is not an IP address, a CIDR range or a dash range (first-last)"

func parseAllowEntry(s string) (allowEntry, error) {
	if s == "" {
		return allowEntry{}, fmt.Errorf("empty entry: give an address or a range, or remove it")
	}
	if strings.Contains(s, "%") {
		return allowEntry{}, fmt.Errorf("%s: zoned addresses are not allowed", quoteInput(s))
	}
	if first, last, ok := strings.Cut(s, "-"); ok {
		from, err1 := parseAddr(strings.TrimSpace(first))
		to, err2 := parseAddr(strings.TrimSpace(last))
		if err1 != nil || err2 != nil {
			return allowEntry{}, fmt.Errorf(notAnEntry, quoteInput(s))
		}
		r := netipx.IPRangeFrom(from, to)
		if !r.IsValid() {
			return allowEntry{}, fmt.Errorf("%s: a dash range goes from a first to a last address of one family, first <= last", quoteInput(s))
		}
		return allowEntry{addrs: r, dash: true}, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return allowEntry{}, fmt.Errorf(notAnEntry, quoteInput(s))
		}
		addr, bits := p.Addr(), p.Bits()
		if addr.Is4In6() && bits >= 96 {
			addr, bits = addr.Unmap(), bits-96
		}
		return allowEntry{addrs: netipx.RangeOfPrefix(netip.PrefixFrom(addr, bits).Masked())}, nil
	}
	a, err := parseAddr(s)
	if err != nil {
		return allowEntry{}, fmt.Errorf(notAnEntry, quoteInput(s))
	}
	return allowEntry{addrs: netipx.IPRangeFrom(a, a)}, nil
}

// ParseSourceIP parses the address a data-plane request comes from (the
// "source_ip" a gateway hands over to verify a credential): one IPv4 or IPv6
// address, not empty, without a zone ("fe80::1%eth0") or a prefix length; an
// IPv4-mapped IPv6 address ("::ffff:1.2.3.4") becomes its IPv4 address, as in
// allowlists, so that it matches IPv4 entries. Errors have the field "source_ip" and
// the code "invalid_ip".
func ParseSourceIP(s string) (netip.Addr, error) {
	const field, code = "source_ip", "invalid_ip"
	if s == "" {
		return netip.Addr{}, invalid(field, code, "must not be empty")
	}
	if strings.Contains(s, "%") {
		return netip.Addr{}, invalid(field, code, fmt.Sprintf("%s: zoned addresses are not allowed", quoteInput(s)))
	}
	a, err := parseAddr(s)
	if err != nil {
		return netip.Addr{}, invalid(field, code, fmt.Sprintf("%s is not an IPv4 or IPv6 address", quoteInput(s)))
	}
	return a, nil
}

// parseAddr parses one address without a zone, IPv4-mapped IPv6 unmapped.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("zoned address")
	}
	return a.Unmap(), nil
}

// Entries returns the normalized entries in input order: single addresses without a
// suffix, CIDR ranges in CIDR notation, dash ranges as "first-last".
func (a Allowlist) Entries() []string {
	out := make([]string, len(a.entries))
	for i, e := range a.entries {
		p, isPrefix := e.addrs.Prefix()
		switch {
		case e.dash:
			out[i] = e.addrs.From().String() + "-" + e.addrs.To().String()
		case isPrefix && p.IsSingleIP():
			out[i] = p.Addr().String()
		default:
			out[i] = p.String()
		}
	}
	return out
}

// Len is the number of entries.
func (a Allowlist) Len() int { return len(a.entries) }

// NoAddressAllowed is an allowlist no address passes: what a key whose stored
// allowlist cannot be read falls back to (fail closed).
func NoAddressAllowed() Allowlist { return Allowlist{entries: []allowEntry{{}}} }

// Allows reports whether addr may call: always when the list is empty. An entry
// covers exactly its addresses, first to last included.
func (a Allowlist) Allows(addr netip.Addr) bool {
	if len(a.entries) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, e := range a.entries {
		if e.addrs.Contains(addr) {
			return true
		}
	}
	return false
}

// quoteInput quotes user input for an error message, cut short: an error never
// carries a whole credential someone pasted into the wrong field.
func quoteInput(s string) string {
	const max = 24
	n := 0
	for i := range s {
		if n == max {
			s = s[:i] + "…"
			break
		}
		n++
	}
	return strconv.Quote(s)
}
