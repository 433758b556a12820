package domain_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/keyledger/keyledger/domain"
)

// fieldCode is the field and code of the one problem err reports, or "ok".
func fieldCode(t *testing.T, err error) (string, string) {
	t.Helper()
	if err == nil {
		return "", "ok"
	}
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) == 0 {
		t.Fatalf("not a validation error: %v", err)
	}
	return ve.Fields[0].Field, ve.Fields[0].Code
}

func TestParseName(t *testing.T) {
	cases := []struct {
		name, in string
		want     string // the accepted name, or the code of the refusal
	}{
		{"plain", "alice", "alice"},
		{"surrounding spaces", "  prod  ", "prod"},
		{"inner space", "team a", "team a"},
		{"no-break space trimmed", "\u00a0prod\u3000", "prod"},
		{"accents", "Zoë", "Zoë"},
		{"cjk", "日本語", "日本語"},
		{"emoji", "🔑 keys", "🔑 keys"},
		{"replacement char", "a\ufffdb", "a\ufffdb"},
		{"nfc", "e\u0301cole", "\u00e9cole"},
		{"nfc hangul", "\u1100\u1161", "\uac00"},
		{"empty", "", "required"},
		{"blank", "   ", "required"},
		{"newline", "a\nb", "invalid_text"},
		{"trailing newline", "alice\n", "invalid_text"},
		{"tab", "a\tb", "invalid_text"},
		{"carriage return", "a\rb", "invalid_text"},
		{"nul", "a\x00b", "invalid_text"},
		{"del", "a\x7fb", "invalid_text"},
		{"c1 next line", "a\u0085b", "invalid_text"},
		{"escape", "a\x1b[31mb", "invalid_text"},
		{"arabic letter mark", "a\u061cb", "invalid_text"},
		{"lrm", "a\u200eb", "invalid_text"},
		{"rlm", "a\u200fb", "invalid_text"},
		{"lre", "a\u202ab", "invalid_text"},
		{"rle", "a\u202bb", "invalid_text"},
		{"pdf", "a\u202cb", "invalid_text"},
		{"lro", "a\u202db", "invalid_text"},
		{"rlo", "abc\u202egnp.exe", "invalid_text"},
		{"lri", "a\u2066b", "invalid_text"},
		{"rli", "a\u2067b", "invalid_text"},
		{"fsi", "a\u2068b", "invalid_text"},
		{"pdi", "a\u2069b", "invalid_text"},
		{"zero width space", "ali\u200bce", "invalid_text"},
		{"hangul filler alone", "\u3164", "invalid_text"},
		{"halfwidth hangul filler", "a\uffa0b", "invalid_text"},
		{"combining grapheme joiner", "ops\u034f", "invalid_text"},
		{"emoji with its presentation selector", "\u2764\ufe0f team", "\u2764\ufe0f team"},
		{"only zero width space", "\u200b", "invalid_text"},
		{"only a variation selector", "\ufe0f", "invalid_text"},
		{"only combining marks", "\u0301\u0308", "invalid_text"},
		{"a mark on a space", " \u20dd", "invalid_text"},
		{"a symbol alone", "★", "★"},
		{"zwnj", "a\u200cb", "invalid_text"},
		{"zwj", "a\u200db", "invalid_text"},
		{"word joiner", "a\u2060b", "invalid_text"},
		{"invisible times", "a\u2062b", "invalid_text"},
		{"invisible plus", "a\u2064b", "invalid_text"},
		{"bom", "\ufeffalice", "invalid_text"},
		{"soft hyphen", "ali\u00adce", "invalid_text"},
		{"tag character", "a\U000e0041b", "invalid_text"},
		{"line separator", "a\u2028b", "invalid_text"},
		{"paragraph separator", "a\u2029b", "invalid_text"},
		{"invalid utf-8", "a\xffb", "invalid_text"},
		{"truncated utf-8", "caf\xc3", "invalid_text"},
		{"at the limit", strings.Repeat("a", domain.MaxNameLen), strings.Repeat("a", domain.MaxNameLen)},
		{"over the limit", strings.Repeat("a", domain.MaxNameLen+1), "too_long"},
		{"limit counted after nfc", strings.Repeat("e\u0301", domain.MaxNameLen), strings.Repeat("\u00e9", domain.MaxNameLen)},
		{"over the limit after nfc", strings.Repeat("e\u0301", domain.MaxNameLen+1), "too_long"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := domain.ParseName("name", c.in)
			field, code := fieldCode(t, err)
			if err == nil {
				code = got
			} else if field != "name" {
				t.Errorf("%q: field %q, want %q", c.in, field, "name")
			}
			if code != c.want {
				t.Errorf("%q: got %q (%v), want %q", c.in, code, err, c.want)
			}
		})
	}
}

func TestParseText(t *testing.T) {
	cases := []struct {
		name, in string
		want     string // the accepted text, or the code of the refusal
	}{
		{"empty", "", ""},
		{"plain", "main database", "main database"},
		{"newline and tab", "line one\n\tline two", "line one\n\tline two"},
		{"trimmed", "  note \n", "note"},
		{"nfc", "cafe\u0301", "caf\u00e9"},
		{"zwj emoji", "team 👩\u200d💻", "team 👩\u200d💻"},
		{"replacement char", "\ufffd", "\ufffd"},
		{"carriage return", "a\r\nb", "invalid_text"},
		{"nul", "a\x00b", "invalid_text"},
		{"escape", "a\x1bb", "invalid_text"},
		{"c1 next line", "a\u0085b", "invalid_text"},
		{"rlo", "abc\u202egnp.exe", "invalid_text"},
		{"arabic letter mark", "a\u061cb", "invalid_text"},
		{"lrm", "a\u200eb", "invalid_text"},
		{"rlm", "a\u200fb", "invalid_text"},
		{"lre", "a\u202ab", "invalid_text"},
		{"lri", "a\u2066b", "invalid_text"},
		{"pdi", "a\u2069b", "invalid_text"},
		{"line separator", "a\u2028b", "invalid_text"},
		{"paragraph separator", "a\u2029b", "invalid_text"},
		{"invalid utf-8", "a\xffb", "invalid_text"},
		{"over the limit", strings.Repeat("x", 21), "too_long"},
		{"limit counted after nfc", strings.Repeat("o\u0308", 20), strings.Repeat("\u00f6", 20)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := domain.ParseText("note", c.in, 20)
			field, code := fieldCode(t, err)
			if err == nil {
				code = got
			} else if field != "note" {
				t.Errorf("%q: field %q, want %q", c.in, field, "note")
			}
			if code != c.want {
				t.Errorf("%q: got %q (%v), want %q", c.in, code, err, c.want)
			}
		})
	}
}

// FuzzParseName: what ParseName accepts is valid NFC UTF-8 within the limit, holds
// no control, format or separator character, and parses again to itself.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"alice", " e\u0301 ", "abc\u202egnp.exe", "a\u200bb", "\xff", "\u1100\u1161\u11a8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := domain.ParseName("name", s)
		if err != nil {
			return
		}
		if !utf8.ValidString(n) || n == "" || utf8.RuneCountInString(n) > domain.MaxNameLen {
			t.Fatalf("%q: accepted %q", s, n)
		}
		if again, err := domain.ParseName("name", n); err != nil || again != n {
			t.Fatalf("%q: %q parses to %q, %v", s, n, again, err)
		}
		for _, r := range n {
			if r < 0x20 || (r >= 0x7f && r < 0xa0) || r == 0x200b || r == 0x202e || r == 0x2028 || r == 0x2029 || r == 0xfeff {
				t.Fatalf("%q: accepted %q with U+%04X", s, n, r)
			}
		}
	})
}
