package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/fault"
)

// maxAttempts bounds the optimistic-concurrency retries of one command.
const maxAttempts = 5

// snapshotEvery is how many events an instance applies to an aggregate before it
// stores a new snapshot of it, at least; a large aggregate waits for more, one event
// per snapshotBytesPerEvent bytes of its last snapshot, so that storing snapshots
// costs a bounded share of the writes while a cold load stays short.
const (
	snapshotEvery         = 500
	snapshotBytesPerEvent = 2000
)

type aggregate interface {
	ApplyBy(position uint64, actor string, e domain.Event)
	Snapshot() ([]byte, error)
}

// repository caches aggregates in memory with their version and keeps them current
// from the log. Commands on one aggregate are serialized per instance (one lock per
// aggregate); across instances the expected-sequence check decides. A cold load
// starts from the aggregate's latest snapshot when there is one.
type repository[A aggregate] struct {
	store     EventStore
	snapshots Snapshots // nil: always replay from the start
	kind      string
	empty     func(id string) A
	restore   func([]byte) (A, error)

	mu      sync.Mutex
	entries *cache[A]
	// fresh shares the freshness checks of concurrent reads of an aggregate.
	fresh *freshness
	// lockWait bounds the wait for an entry's lock.
	lockWait time.Duration
}

type entry[A aggregate] struct {
	mu      lock
	agg     A
	version uint64
	loaded  bool
	// unsnapshotted counts the events applied since the last snapshot, which was
	// snapshotSize bytes.
	unsnapshotted, snapshotSize int
	// bytes is the size the cache counts it for (guarded by the repository's mu).
	bytes int64
}

func newRepository[A aggregate](store EventStore, snapshots Snapshots, kind string, empty func(string) A, restore func([]byte) (A, error), cacheBytes int64, lockWait time.Duration) *repository[A] {
	r := &repository[A]{store: store, snapshots: snapshots, kind: kind, empty: empty, restore: restore, entries: newCache[A](cacheBytes), lockWait: lockWait}
	r.fresh = newFreshness(func(ctx context.Context, id string) (uint64, error) { return store.LastSequence(ctx, kind, id) })
	return r
}

// fromSnapshot starts a cold entry from the aggregate's latest snapshot taken at or
// before end. Any failure leaves the entry empty: the log has the whole history.
// Caller holds e.mu.
func (r *repository[A]) fromSnapshot(ctx context.Context, id string, e *entry[A], end uint64) {
	if r.snapshots == nil || e.version != 0 {
		return
	}
	data, pos, ok, err := r.snapshots.Load(ctx, r.kind, id)
	if err != nil || !ok || pos > end {
		return
	}
	if agg, err := r.restore(data); err == nil {
		e.agg, e.version, e.snapshotSize = agg, pos, len(data)
	}
}

// applied counts events applied to an entry and, every snapshotEvery of them,
// stores a snapshot of its state in the background. Caller holds e.mu.
func (r *repository[A]) applied(id string, e *entry[A], n int) {
	e.unsnapshotted += n
	defer r.resize(id, e)
	if r.snapshots == nil || e.unsnapshotted < max(snapshotEvery, e.snapshotSize/snapshotBytesPerEvent) {
		return
	}
	data, err := e.agg.Snapshot()
	if err != nil {
		return
	}
	e.unsnapshotted, e.snapshotSize = 0, len(data)
	go func(version uint64) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.snapshots.Save(ctx, r.kind, id, version, data) // best effort: the next load replays more
	}(e.version)
}

func (r *repository[A]) entry(id string) *entry[A] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.entries.get(id, func() *entry[A] { return &entry[A]{mu: make(lock, 1), agg: r.empty(id)} })
}

// resize counts an entry's new size in the cache, which may evict others. Caller
// holds e.mu.
func (r *repository[A]) resize(id string, e *entry[A]) {
	r.mu.Lock()
	r.entries.resize(id, e)
	r.mu.Unlock()
}

// unlock forgets the entry if its aggregate does not exist, and releases it.
func (r *repository[A]) unlock(id string, e *entry[A]) {
	r.forget(id, e)
	e.mu.release()
}

// forget drops an entry of an aggregate that does not exist, so lookups of random
// ids do not grow the cache. Caller holds e.mu.
func (r *repository[A]) forget(id string, e *entry[A]) {
	if e.version != 0 {
		return
	}
	r.mu.Lock()
	r.entries.drop(id, e)
	r.mu.Unlock()
}

// refresh asks where the aggregate ends, then catches up to there. Caller holds e.mu.
func (r *repository[A]) refresh(ctx context.Context, id string, e *entry[A]) error {
	end, err := r.store.LastSequence(ctx, r.kind, id)
	if err != nil {
		return err
	}
	return r.catchUp(ctx, id, e, end)
}

// catchUp applies the events after the cached version, up to at least end. Caller
// holds e.mu.
func (r *repository[A]) catchUp(ctx context.Context, id string, e *entry[A], end uint64) error {
	r.fromSnapshot(ctx, id, e, end)
	events, last, err := r.store.LoadEvents(ctx, r.kind, id, e.version, end)
	if err != nil {
		return err
	}
	for _, r := range events {
		e.agg.ApplyBy(r.Position, r.Actor, r.Event)
	}
	e.version, e.loaded = last, true
	r.applied(id, e, len(events))
	return nil
}

// update loads the aggregate, runs decide and appends what it decided with the
// expected version, retrying on conflict. It returns the new version (the log position of the last event). view,
// when set, sees the state right after the events are applied, under the lock.
func (r *repository[A]) update(ctx context.Context, id string, meta domain.Metadata, decide func(A) ([]domain.Event, error), view ...func(A)) (uint64, []domain.Event, error) {
	e := r.entry(id)
	if err := e.mu.acquire(ctx, r.lockWait, r.kind, id); err != nil {
		return 0, nil, err
	}
	defer r.unlock(id, e)
	fresh := !e.loaded
	if fresh {
		if err := r.refresh(ctx, id, e); err != nil {
			return 0, nil, err
		}
	}
	for attempt := 1; ; attempt++ {
		events, err := decide(e.agg)
		if (err != nil || len(events) == 0) && !fresh {
			// Neither a refusal nor "nothing to do" is based on a stale cache: another
			// instance may have written what makes this command valid, or what it
			// must undo (an append would have caught that by its expected version).
			fresh = true
			last, lerr := r.store.LastSequence(ctx, r.kind, id)
			if lerr != nil {
				return 0, nil, lerr
			}
			if last > e.version {
				if err := r.catchUp(ctx, id, e, last); err != nil {
					return 0, nil, err
				}
				continue
			}
		}
		if err != nil {
			return 0, nil, err
		}
		if len(events) == 0 {
			for _, v := range view {
				v(e.agg)
			}
			return e.version, nil, nil
		}
		if err := domain.CheckWriteSize(len(events)); err != nil {
			return 0, nil, err
		}
		version, err := r.store.Append(ctx, r.kind, id, e.version, events, meta)
		if err == nil {
			r.appended(id, e, version, events, meta.ActorID)
			for _, v := range view {
				v(e.agg)
			}
			return version, events, nil
		}
		if !errors.Is(err, domain.ErrConflict) {
			r.unknown(id, e)
			return 0, nil, err
		}
		if attempt == maxAttempts {
			return 0, nil, fmt.Errorf("%s %s after %d attempts: %w", r.kind, id, attempt, err)
		}
		if err := r.refresh(ctx, id, e); err != nil {
			return 0, nil, err
		}
		fresh = true
	}
}

// appended applies to an entry the events one append stored, together, one after
// another, up to version. Caller holds e.mu.
func (r *repository[A]) appended(id string, e *entry[A], version uint64, events []domain.Event, actor string) {
	for i, ev := range events {
		e.agg.ApplyBy(version-uint64(len(events)-1-i), actor, ev)
	}
	e.version = version
	r.applied(id, e, len(events))
}

// unknown forgets an entry's state after a failed append, which may have happened
// with its ack lost: it is loaded again next time. Caller holds e.mu.
func (r *repository[A]) unknown(id string, e *entry[A]) {
	e.loaded = false
	e.agg, e.version = r.empty(id), 0
}

// updateMany is update for several aggregates at once: each is loaded current
// (their locks taken in id order), decide runs on each, and what it decided is
// appended as one atomic batch with every aggregate's expected version, all or
// none, retried on conflict. view sees each aggregate after its events. It returns
// the highest version among the aggregates after the write, and the version it
// read of each aggregate it left unchanged: the batch checks only the versions of
// those it writes, so the caller asks writtenBetween whether one of the others
// moved in a way that matters before the position it answers.
func (r *repository[A]) updateMany(ctx context.Context, ids []string, meta domain.Metadata, decide func(id string, a A) ([]domain.Event, error), view func(id string, a A)) (uint64, map[string]uint64, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	entries := make([]*entry[A], len(ids))
	for i, id := range ids {
		e := r.entry(id)
		if err := e.mu.acquire(ctx, r.lockWait, r.kind, id); err != nil {
			return 0, nil, err
		}
		defer r.unlock(id, e)
		entries[i] = e
	}
	for attempt := 1; ; attempt++ {
		changes, total := make([]domain.Change, len(ids)), 0
		for i, id := range ids {
			// Every aggregate is read current: a refusal is never based on a stale
			// cache, and a stale expectation would only cost a retry.
			if err := r.refresh(ctx, id, entries[i]); err != nil {
				return 0, nil, err
			}
			events, err := decide(id, entries[i].agg)
			if err != nil {
				return 0, nil, err
			}
			changes[i] = domain.Change{ID: id, Expected: entries[i].version, Events: events}
			total += len(events)
		}
		if err := domain.CheckWriteSize(total); err != nil {
			return 0, nil, err
		}
		versions, err := r.store.AppendMany(ctx, r.kind, changes, meta)
		if errors.Is(err, domain.ErrConflict) && attempt < maxAttempts {
			continue
		}
		if err != nil {
			for i, id := range ids {
				r.unknown(id, entries[i])
			}
			return 0, nil, err
		}
		var last uint64
		for i, c := range changes {
			e := entries[i]
			if len(c.Events) > 0 {
				r.appended(ids[i], e, versions[i], c.Events, meta.ActorID)
			}
			last = max(last, e.version)
			if view != nil {
				view(ids[i], e.agg)
			}
		}
		unchanged := map[string]uint64{}
		for i, c := range changes {
			if len(c.Events) == 0 {
				unchanged[ids[i]] = c.Expected
			}
		}
		return last, unchanged, nil
	}
}

// writtenBetween tells whether the log holds an event of the aggregate that
// matters after position after and at or before upTo.
func (r *repository[A]) writtenBetween(ctx context.Context, id string, after, upTo uint64, matters func(domain.Event) bool) (bool, error) {
	if after >= upTo {
		return false, nil
	}
	end, err := r.store.LastSequence(ctx, r.kind, id)
	if err != nil || end <= after {
		return false, err
	}
	events, _, err := r.store.LoadEvents(ctx, r.kind, id, after, end)
	if err != nil {
		return false, err
	}
	for _, e := range events {
		if e.Position > upTo {
			break
		}
		if matters(e.Event) {
			return true, nil
		}
	}
	return false, nil
}

// read runs fn on the current state: the cached aggregate, after checking in one
// round trip (made without holding the aggregate's lock, and shared with the
// concurrent reads of the aggregate that came before it was sent) that no other
// instance wrote since.
func (r *repository[A]) read(ctx context.Context, id string, fn func(A, uint64) error) error {
	last, err := r.fresh.last(ctx, id)
	if err != nil {
		return err
	}
	e := r.entry(id)
	if err := e.mu.acquire(ctx, r.lockWait, r.kind, id); err != nil {
		return err
	}
	defer r.unlock(id, e)
	if !e.loaded || last > e.version {
		if err := r.catchUp(ctx, id, e, last); err != nil {
			return err
		}
	}
	return fn(e.agg, e.version)
}

// at rebuilds the aggregate as it stood at an instant: a fresh state with every
// event appended at or before t applied, outside the cache; observe sees each of
// those events, as recorded. ok is false when the aggregate did not exist yet.
func (r *repository[A]) at(ctx context.Context, id string, t time.Time, observe ...func(domain.Recorded)) (agg A, ok bool, err error) {
	end, err := r.store.LastSequence(ctx, r.kind, id)
	if err != nil {
		return agg, false, err
	}
	agg = r.empty(id)
	if end == 0 {
		return agg, false, nil
	}
	events, _, err := r.store.LoadEvents(ctx, r.kind, id, 0, end)
	if err != nil {
		return agg, false, err
	}
	for _, e := range events {
		if e.Time.After(t) {
			break // the log is in append order
		}
		agg.ApplyBy(e.Position, e.Actor, e.Event)
		for _, o := range observe {
			o(e)
		}
		ok = true
	}
	return agg, ok, nil
}

// peek runs fn on the cached state without checking for newer events: for facts
// that never change once written, such as which organization owns a workspace.
func (r *repository[A]) peek(ctx context.Context, id string, fn func(A) error) error {
	e := r.entry(id)
	if err := e.mu.acquire(ctx, r.lockWait, r.kind, id); err != nil {
		return err
	}
	defer r.unlock(id, e)
	if !e.loaded || e.version == 0 { // never cache "does not exist"
		if err := r.refresh(ctx, id, e); err != nil {
			return err
		}
	}
	return fn(e.agg)
}

// lock is an aggregate's mutex, whose wait is bounded: a command holds it for up to
// a read and a write timeout when the log stalls, and those queued behind it give
// up within their own bound (503), not one write timeout after another.
type lock chan struct{}

func (l lock) acquire(ctx context.Context, within time.Duration, kind, id string) error {
	select {
	case l <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fault.Unavailable(fmt.Errorf("%s %s: another command of this instance has held it for %s", kind, id, within))
	}
}

func (l lock) release() { <-l }
