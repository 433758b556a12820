package eventstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/fault"
)

// VaultBucket is the KV bucket of wrapped data keys. It is outside the log on
// purpose: purging an entry crypto-shreds the key's sealed plaintext in the log.
const VaultBucket = "KEYLEDGER_DATA_KEYS"

// errUnopened: a sealed value does not open under its id's data key (another key
// sealed it). A data key the master key does not unwrap is another error: a wrong
// master key says nothing about the keys.
var errUnopened = errors.New("does not open")

// ErrShredded: the data key was destroyed (the API key was deleted); the sealed
// plaintext can never be opened again. It matches domain.ErrAPIKeyDeleted.
var ErrShredded = fmt.Errorf("vault: data key destroyed: %w", domain.ErrAPIKeyDeleted)

// Vault seals API key plaintexts, each under its own AES-256-GCM data key; data keys
// are stored wrapped by the master key. Safe for concurrent use.
type Vault struct {
	leader       nats.JetStreamContext // the legacy API: its message get asks the bucket's leader
	kv           jetstream.KeyValue
	master       cipher.AEAD
	writeTimeout time.Duration
}

// OpenVault creates or binds the bucket. masterKey must be 32 bytes; writeTimeout
// bounds each Store or Restore, all its writes (default DefaultWriteTimeout).
func OpenVault(ctx context.Context, js jetstream.JetStream, masterKey []byte, replicas int, writeTimeout time.Duration) (*Vault, error) {
	master, err := newGCM(masterKey)
	if err != nil {
		return nil, fmt.Errorf("vault master key: %w", err)
	}
	if replicas == 0 {
		replicas = 1
	}
	if writeTimeout == 0 {
		writeTimeout = DefaultWriteTimeout
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
	leader, err := js.Conn().JetStream()
	if err != nil {
		return nil, err
	}
	return &Vault{leader: leader, kv: kv, master: master, writeTimeout: writeTimeout}, nil
}

// Seal seals each plaintext, in memory, under a new data key, and returns the
// sealed values with the data keys wrapped by the master key, as Store writes them.
// The caller stores them (Store) while it appends the events that hold the sealed
// values, and waits for both.
func (v *Vault) Seal(ids []string, plaintexts [][]byte) (sealed, wrapped [][]byte, err error) {
	sealed, wrapped = make([][]byte, len(ids)), make([][]byte, len(ids))
	for i, id := range ids {
		dk := make([]byte, 32)
		if _, err := rand.Read(dk); err != nil {
			return nil, nil, err
		}
		g, err := newGCM(dk)
		if err != nil {
			return nil, nil, err
		}
		wrapped[i], sealed[i] = sealWith(v.master, dk, []byte(id)), sealWith(g, plaintexts[i], []byte(id))
	}
	return sealed, wrapped, nil
}

// Store writes the wrapped data keys, each only where its id has none (an earlier
// attempt of the same request may have written one), and returns at once what waits
// for them: nil once every one is stored. The writes go on, within one write timeout
// for all, whether or not ctx ends (a key appended meanwhile needs its data key). If
// one fails and the caller's events are in the log, the caller restores them.
func (v *Vault) Store(ctx context.Context, ids []string, wrapped [][]byte) (wait func() error) {
	done := make(chan error, 1)
	go func() {
		done <- v.write(ctx, ids, wrapped, "store", func(ctx context.Context, id string, value []byte) error {
			_, err := v.kv.Create(ctx, id, value)
			return err
		})
	}()
	return func() error { return <-done }
}

// Restore writes the wrapped data keys over whatever their ids hold, within one
// write timeout, whether or not ctx ends: the caller's events, which hold the values
// they sealed, are in the log.
func (v *Vault) Restore(ctx context.Context, ids []string, wrapped [][]byte) error {
	return v.write(ctx, ids, wrapped, "restore", func(ctx context.Context, id string, value []byte) error {
		_, err := v.kv.Put(ctx, id, value)
		return err
	})
}

// write puts every value, all within one write timeout; every write is tried, one
// failure does not stop the others.
func (v *Vault) write(ctx context.Context, ids []string, wrapped [][]byte, what string, put func(context.Context, string, []byte) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.writeTimeout)
	defer cancel()
	var g errgroup.Group
	g.SetLimit(16)
	errs := make([]error, len(ids))
	for i, id := range ids {
		g.Go(func() error {
			if err := put(ctx, id, wrapped[i]); err != nil {
				errs[i] = fault.Unavailable(fmt.Errorf("vault %s data key %s: %w", what, id, err))
			}
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

// canary is the vault's own entry beside the data keys: a vault that has lost it
// (its bucket recreated, say) has lost the data keys too, and says nothing about
// any one key. No API key id is "canary".
const canary = "canary"

// PlantCanary writes the canary if it is not there.
func (v *Vault) PlantCanary(ctx context.Context) error {
	if _, err := v.kv.Create(ctx, canary, []byte("keyledger")); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fault.Unavailable(fmt.Errorf("vault canary: %w", err))
	}
	return nil
}

// Whole tells whether the vault still holds its canary.
func (v *Vault) Whole(ctx context.Context) (bool, error) {
	_, err := v.get(ctx, canary)
	if errors.Is(err, nats.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fault.Unavailable(fmt.Errorf("vault canary: %w", err))
	}
	return true, nil
}

// Lost tells whether sealed can no longer be opened: the vault holds no data key
// for id, or one that does not open it. An error: the vault could not tell.
func (v *Vault) Lost(ctx context.Context, id string, sealed []byte) (bool, error) {
	_, err := v.Open(ctx, id, sealed)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, ErrShredded), errors.Is(err, errUnopened):
		return true, nil
	}
	return false, err
}

// get reads the value of a key from the bucket's leader (lastFromLeader: a replica
// that lags would say a data key just written is not there); nats.ErrMsgNotFound when the
// key has none, or was deleted or purged.
func (v *Vault) get(ctx context.Context, key string) ([]byte, error) {
	m, err := lastFromLeader(ctx, v.leader, "KV_"+VaultBucket, "$KV."+VaultBucket+"."+key)
	if err != nil {
		return nil, err
	}
	if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return nil, nats.ErrMsgNotFound
	}
	return m.Data, nil
}

// dataKey loads and unwraps the data key of id; ErrShredded once Destroy ran.
func (v *Vault) dataKey(ctx context.Context, id string) ([]byte, error) {
	wrapped, err := v.get(ctx, id)
	if errors.Is(err, nats.ErrMsgNotFound) {
		return nil, ErrShredded
	}
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("vault load data key %s: %w", id, err))
	}
	dk, err := openWith(v.master, wrapped, []byte(id))
	if err != nil {
		return nil, fmt.Errorf("vault unwrap data key %s (is this the master key that wrapped it?): %w", id, err)
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
		return nil, fmt.Errorf("vault open %s: %w: %w", id, errUnopened, err)
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
