package eventstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/fault"
)

// VaultBucket is the KV bucket of wrapped data keys. It is outside the log on
// purpose: purging an entry crypto-shreds the key's sealed plaintext in the log.
const VaultBucket = "KEYLEDGER_DATA_KEYS"

// ErrShredded: the data key was destroyed (the API key was deleted); the sealed
// plaintext can never be opened again. It matches domain.ErrAPIKeyDeleted.
var ErrShredded = fmt.Errorf("vault: data key destroyed: %w", domain.ErrAPIKeyDeleted)

// Vault seals API key plaintexts, each under its own AES-256-GCM data key; data keys
// are stored wrapped by the master key. Safe for concurrent use.
type Vault struct {
	kv     jetstream.KeyValue
	master cipher.AEAD
}

// OpenVault creates or binds the bucket. masterKey must be 32 bytes.
func OpenVault(ctx context.Context, js jetstream.JetStream, masterKey []byte, replicas int) (*Vault, error) {
	master, err := newGCM(masterKey)
	if err != nil {
		return nil, fmt.Errorf("vault master key: %w", err)
	}
	if replicas == 0 {
		replicas = 1
	}
	kv, err := Ensure(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      VaultBucket,
			Description: "keyledger data keys, wrapped by the master key",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
	})
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("vault bucket: %w", err))
	}
	return &Vault{kv: kv, master: master}, nil
}

// SealMany creates a data key for each id and returns the plaintexts sealed under
// them, in order. Data keys are written before the caller appends its events: a
// failed append leaves orphan data keys that seal nothing anyone can reach. An id
// that already has a data key (a retry of a request whose first attempt may be in
// the log) keeps it, so whichever attempt's events are in the log can be opened.
func (v *Vault) SealMany(ctx context.Context, ids []string, plaintexts [][]byte) ([][]byte, error) {
	out := make([][]byte, len(ids))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range ids {
		g.Go(func() error {
			sealed, err := v.seal(ctx, ids[i], plaintexts[i])
			out[i] = sealed
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

func (v *Vault) seal(ctx context.Context, id string, plaintext []byte) ([]byte, error) {
	dk := make([]byte, 32)
	if _, err := rand.Read(dk); err != nil {
		return nil, err
	}
	_, err := v.kv.Create(ctx, id, sealWith(v.master, dk, []byte(id)))
	if errors.Is(err, jetstream.ErrKeyExists) {
		dk, err = v.dataKey(ctx, id)
	}
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("vault store data key %s: %w", id, err))
	}
	g, err := newGCM(dk)
	if err != nil {
		return nil, err
	}
	return sealWith(g, plaintext, []byte(id)), nil
}

// dataKey loads and unwraps the data key of id; ErrShredded once Destroy ran.
func (v *Vault) dataKey(ctx context.Context, id string) ([]byte, error) {
	entry, err := v.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, ErrShredded
	}
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("vault load data key %s: %w", id, err))
	}
	dk, err := openWith(v.master, entry.Value(), []byte(id))
	if err != nil {
		return nil, fmt.Errorf("vault unwrap data key %s: %w", id, err)
	}
	return dk, nil
}

// Open unseals a plaintext sealed for id; ErrShredded once Destroy ran.
func (v *Vault) Open(ctx context.Context, id string, sealed []byte) ([]byte, error) {
	dk, err := v.dataKey(ctx, id)
	if err != nil {
		return nil, err
	}
	g, err := newGCM(dk)
	if err != nil {
		return nil, err
	}
	pt, err := openWith(g, sealed, []byte(id))
	if err != nil {
		return nil, fmt.Errorf("vault open %s: %w", id, err)
	}
	return pt, nil
}

// Destroy purges the data key of id, all its revisions included. Idempotent.
func (v *Vault) Destroy(ctx context.Context, id string) error {
	if err := v.kv.Purge(ctx, id); err != nil {
		return fault.Unavailable(fmt.Errorf("vault destroy %s: %w", id, err))
	}
	return nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("key must be 32 bytes, got %d", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func sealWith(g cipher.AEAD, plaintext, aad []byte) []byte {
	nonce := make([]byte, g.NonceSize(), g.NonceSize()+len(plaintext)+g.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return g.Seal(nonce, nonce, plaintext, aad)
}

func openWith(g cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < g.NonceSize() {
		return nil, errors.New("sealed value too short")
	}
	return g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], aad)
}
