package eventstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/fault"
)

// SnapshotBucket keeps the latest snapshot of each aggregate, so a cold instance
// loads it and the events after it instead of the aggregate's whole history. It is
// an object store (a large organization's snapshot exceeds a message), outside the
// log, and derived data: losing it only lengthens a load.
const SnapshotBucket = "KEYLEDGER_SNAPSHOTS"

// Snapshots stores aggregate snapshots. Safe for concurrent use.
type Snapshots struct{ store jetstream.ObjectStore }

// OpenSnapshots creates or binds the bucket.
func OpenSnapshots(ctx context.Context, js jetstream.JetStream, replicas int) (*Snapshots, error) {
	if replicas == 0 {
		replicas = 1
	}
	store, err := Ensure(ctx, func(ctx context.Context) (jetstream.ObjectStore, error) {
		return js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: SnapshotBucket, Description: "keyledger aggregate snapshots (derived from the log)",
			Storage: jetstream.FileStorage, Replicas: replicas, Compression: true,
		})
	})
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("snapshot bucket: %w", err))
	}
	return &Snapshots{store: store}, nil
}

func snapshotName(kind, id string) string { return kind + "." + id }

// Load returns the aggregate's latest snapshot and the log position it was taken
// at; ok is false when there is none.
func (s *Snapshots) Load(ctx context.Context, kind, id string) ([]byte, uint64, bool, error) {
	v, err := s.store.GetBytes(ctx, snapshotName(kind, id))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, fault.Unavailable(fmt.Errorf("load snapshot of %s %s: %w", kind, id, err))
	}
	if len(v) < 8 {
		return nil, 0, false, nil
	}
	return v[8:], binary.BigEndian.Uint64(v[:8]), true, nil
}

// Save stores a snapshot taken at a log position, replacing the previous one.
func (s *Snapshots) Save(ctx context.Context, kind, id string, position uint64, data []byte) error {
	if _, err := s.store.PutBytes(ctx, snapshotName(kind, id), append(binary.BigEndian.AppendUint64(nil, position), data...)); err != nil {
		return fault.Unavailable(fmt.Errorf("save snapshot of %s %s: %w", kind, id, err))
	}
	return nil
}
