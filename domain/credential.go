package domain

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"math/big"
	"strings"
)

// CredentialKind is the closed set of credential types, told apart by their prefix.
type CredentialKind string

// The credential kinds and their wire prefixes. A prefix is part of every issued
// secret: changing one invalidates all credentials of that kind.
const (
	KindMaaSKey      CredentialKind = "klm_"
	KindSearchKey    CredentialKind = "kls_"
	KindAccessSecret CredentialKind = "kla_"
)

const (
	base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	// secretBytes of entropy: 256 bits from the caller's random source.
	secretBytes = 32
	// bodyLen is the base62 width of 256 bits (62^43 > 2^256).
	bodyLen = 43
	// checksumLen is the base62 width of a CRC-32 (62^6 > 2^32).
	checksumLen = 6
	// CredentialLen is the length of every credential: prefix, body, checksum.
	CredentialLen = 4 + bodyLen + checksumLen
)

// MinPepperLen is the least length, in bytes, of the pepper that keys every
// credential's HMAC.
const MinPepperLen = 32

// Credential is a parsed, checksum-verified secret. Its String is the secret itself:
// never log it; Masked is the form safe to show.
type Credential struct {
	kind  CredentialKind
	value string
}

// Kind is the credential's type.
func (c Credential) Kind() CredentialKind { return c.kind }

// String returns the plaintext secret.
func (c Credential) String() string { return c.value }

// Masked shows the prefix, the first four and the last four characters.
func (c Credential) Masked() string {
	return c.value[:8] + "…" + c.value[len(c.value)-4:]
}

// GenerateCredential draws 256 bits from random (crypto/rand in production) and
// returns a credential of the given kind.
func GenerateCredential(random io.Reader, kind CredentialKind) (Credential, error) {
	if !kind.valid() {
		return Credential{}, fmt.Errorf("credential: unknown kind %q", kind)
	}
	var b [secretBytes]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return Credential{}, fmt.Errorf("credential: read random: %w", err)
	}
	body := encodeBase62(new(big.Int).SetBytes(b[:]), bodyLen)
	head := string(kind) + body
	return Credential{kind: kind, value: head + checksum(head)}, nil
}

// ParseCredential checks the prefix, the length, the alphabet and the checksum.
func ParseCredential(s string) (Credential, error) {
	if len(s) != CredentialLen {
		return Credential{}, ErrMalformedCredential
	}
	kind := CredentialKind(s[:4])
	if !kind.valid() {
		return Credential{}, ErrMalformedCredential
	}
	for i := 4; i < len(s); i++ {
		if strings.IndexByte(base62Alphabet, s[i]) < 0 {
			return Credential{}, ErrMalformedCredential
		}
	}
	head := s[:len(s)-checksumLen]
	var sum [checksumLen]byte
	putChecksum(&sum, head)
	if subtle.ConstantTimeCompare(sum[:], []byte(s[len(head):])) != 1 {
		return Credential{}, ErrMalformedCredential
	}
	return Credential{kind: kind, value: s}, nil
}

// HashCredential is the lookup key of a credential: HMAC-SHA256 under the server
// pepper, hex-encoded. It is what the log and the views keep instead of the secret.
func HashCredential(pepper []byte, c Credential) string {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte(c.value))
	return hex.EncodeToString(m.Sum(nil))
}

func (k CredentialKind) valid() bool {
	return k == KindMaaSKey || k == KindSearchKey || k == KindAccessSecret
}

func checksum(head string) string {
	var sum [checksumLen]byte
	putChecksum(&sum, head)
	return string(sum[:])
}

// putChecksum writes the base62 CRC-32 of head without allocating: it runs on every
// verification.
func putChecksum(dst *[checksumLen]byte, head string) {
	// crc32.ChecksumIEEE, byte by byte over the string: the library's fast paths
	// take a []byte that escapes, which would cost an allocation.
	crc := ^uint32(0)
	for i := 0; i < len(head); i++ {
		crc = crc32.IEEETable[byte(crc)^head[i]] ^ (crc >> 8)
	}
	v := uint64(^crc)
	for i := checksumLen - 1; i >= 0; i-- {
		dst[i] = base62Alphabet[v%62]
		v /= 62
	}
}

func encodeBase62(n *big.Int, width int) string {
	out := make([]byte, width)
	base := big.NewInt(62)
	mod := new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.DivMod(n, base, mod)
		out[i] = base62Alphabet[mod.Int64()]
	}
	return string(out)
}
