package credindex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SnapshotBucket is the JetStream Object Store bucket of the credential index's
// snapshots: one object, replaced by each newer snapshot. The store checks each
// object's SHA-256 digest when it is read back.
const SnapshotBucket = "KEYLEDGER_INDEX"

const snapshotObject = "credential-index"

// SnapshotStore saves and loads the index's snapshot. Safe for concurrent use.
type SnapshotStore struct {
	obs    jetstream.ObjectStore
	logger *slog.Logger
	// Refused counts snapshots found but not used (corrupt, of another format, or
	// not readable): the index was rebuilt from the log instead.
	Refused atomic.Uint64
}

// OpenSnapshotStore creates or binds the bucket.
func OpenSnapshotStore(ctx context.Context, js jetstream.JetStream, replicas int, logger *slog.Logger) (*SnapshotStore, error) {
	if replicas == 0 {
		replicas = 1
	}
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: SnapshotBucket, Storage: jetstream.FileStorage,
		Replicas: replicas, Description: "keyledger credential index snapshots (derived data: losing them costs a full replay)"})
	if err != nil {
		return nil, fmt.Errorf("index snapshot bucket: %w", err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &SnapshotStore{obs: obs, logger: logger}, nil
}

// Save writes the index's snapshot, streamed, and returns the position it covers.
// The object records a position the snapshot covers at least, for Keep's check. The
// writer ends with the save, even one still waiting for the index's follower.
func (s *SnapshotStore) Save(ctx context.Context, x *Index) (uint64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	var pos uint64
	written := make(chan struct{})
	go func() {
		defer close(written)
		p, err := x.WriteSnapshot(ctx, pw)
		pos = p
		pw.CloseWithError(err)
	}()
	info, err := s.obs.Put(ctx, jetstream.ObjectMeta{Name: snapshotObject,
		Metadata: map[string]string{"position": strconv.FormatUint(x.position.Load(), 10)}}, pr)
	pr.CloseWithError(err) // stops the writer if Put gave up
	cancel()               // and a writer still waiting for the follower
	<-written
	if err != nil {
		return 0, fmt.Errorf("save index snapshot: %w", err)
	}
	s.logger.Debug("credential index snapshot saved", "position", pos, "bytes", info.Size)
	return pos, nil
}

// Load restores an index that has applied nothing yet from the newest snapshot and
// returns the position it covers; ok is false when there is none or it is refused
// (logged, counted in Refused), and the index is then to be built from the log.
// check tells whether the snapshot is of this log.
func (s *SnapshotStore) Load(ctx context.Context, x *Index, check LogCheck) (pos uint64, ok bool) {
	start := time.Now()
	obj, err := s.obs.Get(ctx, snapshotObject) // streamed: decoded as it arrives
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return 0, false
	}
	if err == nil {
		defer obj.Close()
		pos, err = x.RestoreSnapshot(obj, check) // which reads to the end: the digest is checked there
	}
	if err != nil {
		s.Refused.Add(1)
		s.logger.Warn("credential index snapshot not used; rebuilding the index from the log", "err", err)
		return 0, false
	}
	var size uint64
	if info, err := obj.Info(); err == nil {
		size = info.Size
	}
	s.logger.Info("credential index restored from its snapshot", "position", pos, "bytes", size, "took", time.Since(start).Round(time.Millisecond))
	return pos, true
}

// Lock takes a lock held by one caller at a time across instances, if it is free:
// held is false when another holds it.
type Lock func(ctx context.Context) (release func(), held bool, err error)

// Keep saves a snapshot whenever the index has applied `events` more events than
// the last one covers, or, if it moved at all, every `every`; until ctx ends. Every
// instance keeps the one snapshot: each waits a random part of its period, saves
// only while it holds lock (two saves at once would leave the loser's chunks in
// the bucket), and skips a save when the stored snapshot is already as new.
func (s *SnapshotStore) Keep(ctx context.Context, x *Index, events uint64, every time.Duration, lock Lock) error {
	period := min(every, 10*time.Second)
	var last uint64
	saved := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(period + rand.N(period)):
		}
		pos := x.position.Load()
		if !x.Ready() || pos <= last || pos-last < events && time.Since(saved) < every {
			continue
		}
		p, err := s.saveLocked(ctx, x, pos, lock)
		if err != nil {
			s.logger.Warn("credential index snapshot not saved", "err", err)
			continue
		}
		if p != 0 {
			last, saved = p, time.Now()
		}
	}
}

// saveLocked saves unless another instance is saving or the stored snapshot covers
// pos already. It returns the position the stored snapshot covers, 0 when it
// cannot tell (another instance is saving).
func (s *SnapshotStore) saveLocked(ctx context.Context, x *Index, pos uint64, lock Lock) (uint64, error) {
	release, held, err := lock(ctx)
	if err != nil || !held {
		return 0, err
	}
	defer release()
	if stored, err := s.obs.GetInfo(ctx, snapshotObject); err == nil {
		if p, err := strconv.ParseUint(stored.Metadata["position"], 10, 64); err == nil && p >= pos {
			return p, nil // another instance saved it
		}
	}
	save, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return s.Save(save, x)
}
