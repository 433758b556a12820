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
// derived data, outside the log: losing it only lengthens a load.
const SnapshotBucket = "KEYLEDGER_SNAPSHOTS"

// Snapshots stores aggregate snapshots. Safe for concurrent use.
type Snapshots struct{ kv jetstream.KeyValue }

// OpenSnapshots creates or binds the bucket.
func OpenSnapshots(ctx context.Context, js jetstream.JetStream, replicas int) (*Snapshots, error) {
	if replicas == 0 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: SnapshotBucket, Description: "keyledger aggregate snapshots (derived from the log)",
		History: 1, Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("snapshot bucket: %w", err))
	}
	return &Snapshots{kv: kv}, nil
}

func snapshotKey(kind, id string) string { return kind + "." + id }

// Load returns the aggregate's latest snapshot and the log position it was taken
// at; ok is false when there is none.
func (s *Snapshots) Load(ctx context.Context, kind, id string) ([]byte, uint64, bool, error) {
	e, err := s.kv.Get(ctx, snapshotKey(kind, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, fault.Unavailable(fmt.Errorf("load snapshot of %s %s: %w", kind, id, err))
	}
	v := e.Value()
	if len(v) < 8 {
		return nil, 0, false, nil
	}
	return v[8:], binary.BigEndian.Uint64(v[:8]), true, nil
}

// Save stores a snapshot taken at a log position.
func (s *Snapshots) Save(ctx context.Context, kind, id string, position uint64, data []byte) error {
	if _, err := s.kv.Put(ctx, snapshotKey(kind, id), append(binary.BigEndian.AppendUint64(nil, position), data...)); err != nil {
		return fault.Unavailable(fmt.Errorf("save snapshot of %s %s: %w", kind, id, err))
	}
	return nil
}
