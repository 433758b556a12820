package domain_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/domain"
)

func TestGenerateAndParseCredential(t *testing.T) {
	for _, kind := range []domain.CredentialKind{domain.KindMaaSKey, domain.KindSearchKey, domain.KindAccessSecret} {
		c, err := domain.GenerateCredential(rand.Reader, kind)
		if err != nil {
			t.Fatal(err)
		}
		s := c.String()
		if !strings.HasPrefix(s, string(kind)) || len(s) != domain.CredentialLen {
			t.Fatalf("%s: got %q (len %d)", kind, s, len(s))
		}
		p, err := domain.ParseCredential(s)
		if err != nil || p.Kind() != kind || p.String() != s {
			t.Fatalf("parse %q: %v %v", s, p, err)
		}
		if strings.Contains(c.Masked(), s[8:len(s)-4]) {
			t.Fatalf("masked form %q shows the secret", c.Masked())
		}
	}
}

func TestParseCredentialRejectsWithoutLookup(t *testing.T) {
	c, _ := domain.GenerateCredential(rand.Reader, domain.KindMaaSKey)
	s := c.String()
	typo := []byte(s)
	typo[10] = map[bool]byte{true: 'B', false: 'A'}[typo[10] == 'A']
	cases := map[string]string{
		"empty":          "",
		"short":          s[:len(s)-1],
		"long":           s + "0",
		"unknown prefix": "klx_" + s[4:],
		"bad alphabet":   s[:20] + "-" + s[21:],
		"one char typo":  string(typo),
		"swapped chars":  s[:20] + s[21:22] + s[20:21] + s[22:],
	}
	for name, in := range cases {
		if in == s {
			continue // the swap happened to be of equal characters
		}
		if _, err := domain.ParseCredential(in); !errors.Is(err, domain.ErrMalformedCredential) {
			t.Errorf("%s: got %v, want ErrMalformedCredential", name, err)
		}
	}
}

func TestGenerateCredentialUsesAllEntropy(t *testing.T) {
	zero := bytes.NewReader(make([]byte, 32))
	ones := bytes.NewReader(bytes.Repeat([]byte{0xff}, 32))
	a, _ := domain.GenerateCredential(zero, domain.KindSearchKey)
	b, _ := domain.GenerateCredential(ones, domain.KindSearchKey)
	if a.String() == b.String() {
		t.Fatal("different randomness gave the same credential")
	}
	if _, err := domain.GenerateCredential(bytes.NewReader(nil), domain.KindSearchKey); err == nil {
		t.Fatal("short randomness must fail")
	}
}

func TestHashCredentialDependsOnPepper(t *testing.T) {
	c, _ := domain.GenerateCredential(rand.Reader, domain.KindAccessSecret)
	h1 := domain.HashCredential([]byte("pepper-one-pepper-one-pepper-one"), c)
	h2 := domain.HashCredential([]byte("pepper-two-pepper-two-pepper-two"), c)
	if h1 == h2 || len(h1) != 64 || strings.Contains(h1, c.String()) {
		t.Fatalf("hashes %q %q", h1, h2)
	}
}
