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
	v, err := eventstore.OpenVault(ctx, s.JetStream(), master, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"key_1", "key_2"}
	first, firstKeys, err := v.Seal(ids, [][]byte{[]byte("secret-one"), []byte("secret-two")})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(first[0], []byte("secret-one")) {
		t.Fatal("sealed value contains the plaintext")
	}
	if _, err := v.Open(ctx, "key_1", first[0]); !errors.Is(err, eventstore.ErrShredded) {
		t.Fatalf("opened before its data key was stored: %v", err)
	}
	if err := v.Store(ctx, ids, firstKeys)(); err != nil {
		t.Fatal(err)
	}
	pt, err := v.Open(ctx, "key_1", first[0])
	if err != nil || string(pt) != "secret-one" {
		t.Fatalf("open: %q %v", pt, err)
	}
	if _, err := v.Open(ctx, "key_2", first[0]); err == nil {
		t.Fatal("a sealed value opens only under its own key id")
	}
	lost := func(id string, sealed []byte, want bool) {
		t.Helper()
		if got, err := v.Lost(ctx, id, sealed); err != nil || got != want {
			t.Fatalf("lost %s: %v %v, want %v", id, got, err, want)
		}
	}
	lost("key_1", first[0], false)
	// Storing again for the same id (another attempt of the same request) does not
	// overwrite: what the first attempt sealed still opens.
	again, againKeys, err := v.Seal(ids[:1], [][]byte{[]byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Store(ctx, ids[:1], againKeys)(); err == nil {
		t.Fatal("a data key was stored over another")
	}
	lost("key_1", first[0], false)
	lost("key_1", again[0], true)
	// Restoring does (the attempt whose events are in the log).
	if err := v.Restore(ctx, ids[:1], againKeys); err != nil {
		t.Fatal(err)
	}
	if pt, err := v.Open(ctx, "key_1", again[0]); err != nil || string(pt) != "x" {
		t.Fatalf("after restore: %q %v", pt, err)
	}
	lost("key_1", first[0], true)
	if err := v.Destroy(ctx, "key_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Open(ctx, "key_1", again[0]); !errors.Is(err, eventstore.ErrShredded) || !errors.Is(err, domain.ErrAPIKeyDeleted) {
		t.Fatalf("after destroy: %v", err)
	}
	lost("key_1", again[0], true)
	if err := v.Destroy(ctx, "key_1"); err != nil {
		t.Fatalf("destroy is idempotent: %v", err)
	}
	// The canary: absent until planted, planted once, and its loss is seen.
	whole := func(want bool) {
		t.Helper()
		if got, err := v.Whole(ctx); err != nil || got != want {
			t.Fatalf("whole: %v %v, want %v", got, err, want)
		}
	}
	whole(false)
	if err := v.PlantCanary(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.PlantCanary(ctx); err != nil {
		t.Fatalf("planting again: %v", err)
	}
	whole(true)
	if err := v.Destroy(ctx, "canary"); err != nil {
		t.Fatal(err)
	}
	whole(false)
	// Another master key cannot unwrap the data keys, and that says nothing of them.
	other, _ := eventstore.OpenVault(ctx, s.JetStream(), bytes.Repeat([]byte{8}, 32), 1, 0)
	if _, err := other.Open(ctx, "key_2", first[1]); err == nil {
		t.Fatal("wrong master key opened a data key")
	}
	if got, err := other.Lost(ctx, "key_2", first[1]); got || err == nil {
		t.Fatalf("a wrong master key called a data key lost: %v %v", got, err)
	}
}
