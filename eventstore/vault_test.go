package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

func TestVaultSealOpenDestroy(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	master := bytes.Repeat([]byte{7}, 32)
	v, err := eventstore.OpenVault(ctx, s.JetStream(), master, 1)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := v.SealMany(ctx, []string{"key_1", "key_2"}, [][]byte{[]byte("secret-one"), []byte("secret-two")})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed[0], []byte("secret-one")) {
		t.Fatal("sealed value contains the plaintext")
	}
	pt, err := v.Open(ctx, "key_1", sealed[0])
	if err != nil || string(pt) != "secret-one" {
		t.Fatalf("open: %q %v", pt, err)
	}
	if _, err := v.Open(ctx, "key_2", sealed[0]); err == nil {
		t.Fatal("a sealed value opens only under its own key id")
	}
	// Sealing again for the same id (a retry of the same request) keeps its data key:
	// what the first attempt sealed still opens.
	again, err := v.SealMany(ctx, []string{"key_1"}, [][]byte{[]byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	for want, s := range map[string][]byte{"secret-one": sealed[0], "x": again[0]} {
		if pt, err := v.Open(ctx, "key_1", s); err != nil || string(pt) != want {
			t.Fatalf("a data key was overwritten: %q %v", pt, err)
		}
	}
	if err := v.Destroy(ctx, "key_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Open(ctx, "key_1", sealed[0]); !errors.Is(err, eventstore.ErrShredded) || !errors.Is(err, domain.ErrAPIKeyDeleted) {
		t.Fatalf("after destroy: %v", err)
	}
	if err := v.Destroy(ctx, "key_1"); err != nil {
		t.Fatalf("destroy is idempotent: %v", err)
	}
	// Another master key cannot unwrap the data keys.
	other, _ := eventstore.OpenVault(ctx, s.JetStream(), bytes.Repeat([]byte{8}, 32), 1)
	if _, err := other.Open(ctx, "key_2", sealed[1]); err == nil {
		t.Fatal("wrong master key opened a data key")
	}
}
