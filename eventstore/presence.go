package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/fault"
)

// PresenceBucket is the KV bucket of live instances: each announces the log position
// its credential index has applied; an entry expires when its instance stops
// announcing.
const PresenceBucket = "KEYLEDGER_INSTANCES"

// Instance is one live instance's announcement. Recent lists (position, time)
// checkpoints, oldest first, so "when did this instance apply P" is answerable for
// recent positions.
type Instance struct {
	ID        string       `json:"id"`
	StartedAt time.Time    `json:"started_at"`
	Position  uint64       `json:"applied_position"`
	AppliedAt time.Time    `json:"applied_at"`
	Ready     bool         `json:"ready"`
	Recent    []Checkpoint `json:"recent,omitempty"`
}

// Checkpoint is a position an instance applied, and when.
type Checkpoint struct {
	Position uint64    `json:"position"`
	At       time.Time `json:"at"`
}

// ReachedAt says when the instance applied position p: the time of its earliest
// recent checkpoint at or past p (zero if p is older than what it remembers, or
// not applied yet).
func (i Instance) ReachedAt(p uint64) (time.Time, bool) {
	if i.Position < p {
		return time.Time{}, false
	}
	for _, c := range i.Recent {
		if c.Position >= p {
			return c.At, true
		}
	}
	return time.Time{}, true
}

// Presence announces this instance and lists the live ones. The bucket is in memory
// on the servers (it only says who is alive now): when a NATS restart loses it, the
// next announcement creates it again. Safe for concurrent use.
type Presence struct {
	js     jetstream.JetStream
	config jetstream.KeyValueConfig

	mu        sync.Mutex
	kv        jetstream.KeyValue
	self      Instance
	recent    int
	announced time.Time // the last announcement that was stored
}

// OpenPresence binds the bucket; ttl is how long an entry lives without a new
// announcement (a few heartbeats).
func OpenPresence(ctx context.Context, js jetstream.JetStream, id string, ttl time.Duration, replicas int) (*Presence, error) {
	if replicas == 0 {
		replicas = 1
	}
	p := &Presence{js: js, self: Instance{ID: id, StartedAt: time.Now().UTC()}, recent: 64,
		config: jetstream.KeyValueConfig{
			Bucket: PresenceBucket, Description: "live keyledger instances and the log position each has applied",
			History: 1, TTL: ttl, Storage: jetstream.MemoryStorage, Replicas: replicas,
		}}
	if _, err := p.bucket(ctx, true); err != nil {
		return nil, err
	}
	return p, nil
}

// bucket is the bound bucket, created again when fresh is set.
func (p *Presence) bucket(ctx context.Context, fresh bool) (jetstream.KeyValue, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.kv != nil && !fresh {
		return p.kv, nil
	}
	kv, err := p.js.CreateOrUpdateKeyValue(ctx, p.config)
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("presence bucket: %w", err))
	}
	p.kv = kv
	return kv, nil
}

// Healthy says whether this instance's presence was stored within maxAge: without
// it, other instances and /v1/cluster/applied cannot see this one.
func (p *Presence) Healthy(maxAge time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	last := p.announced
	if last.IsZero() { // starting: the first announcement is on its way
		last = p.self.StartedAt
	}
	if since := time.Since(last); since > maxAge {
		return fmt.Errorf("presence not announced for %s", since.Round(time.Millisecond))
	}
	return nil
}

// Announce publishes this instance's applied position; when the bucket is gone (a
// restarted NATS lost it), it creates it again and announces once more.
func (p *Presence) Announce(ctx context.Context, position uint64, ready bool) error {
	p.mu.Lock()
	now := time.Now().UTC()
	if position > p.self.Position || len(p.self.Recent) == 0 {
		p.self.Position, p.self.AppliedAt = position, now
		p.self.Recent = append(p.self.Recent, Checkpoint{Position: position, At: now})
		if len(p.self.Recent) > p.recent {
			p.self.Recent = p.self.Recent[len(p.self.Recent)-p.recent:]
		}
	}
	p.self.Ready = ready
	b, _ := json.Marshal(p.self)
	id := p.self.ID
	p.mu.Unlock()
	kv, err := p.bucket(ctx, false)
	if err == nil {
		_, err = kv.Put(ctx, id, b)
	}
	if err != nil {
		if kv, err = p.bucket(ctx, true); err == nil {
			_, err = kv.Put(ctx, id, b)
		}
	}
	if err != nil {
		return fault.Unavailable(fmt.Errorf("announce: %w", err))
	}
	p.mu.Lock()
	p.announced = time.Now()
	p.mu.Unlock()
	return nil
}

// Live lists the instances whose announcement has not expired, by id. The keys are
// read from the bucket's stream state, not with a watcher: a watcher listing the
// keys can miss one whose entry is being replaced at that moment.
func (p *Presence) Live(ctx context.Context) ([]Instance, error) {
	kv, err := p.bucket(ctx, false)
	if err != nil {
		return nil, err
	}
	stream, err := p.js.Stream(ctx, "KV_"+PresenceBucket)
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("list instances: %w", err))
	}
	prefix := "$KV." + PresenceBucket + "."
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("list instances: %w", err))
	}
	var out []Instance
	for subject := range info.State.Subjects {
		key := strings.TrimPrefix(subject, prefix)
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err != nil {
			return nil, fault.Unavailable(fmt.Errorf("read instance %s: %w", key, err))
		}
		var i Instance
		if json.Unmarshal(e.Value(), &i) == nil {
			out = append(out, i)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out, nil
}

// Leave removes this instance's entry (on a clean shutdown).
func (p *Presence) Leave(ctx context.Context) error {
	kv, err := p.bucket(ctx, false)
	if err != nil {
		return err
	}
	return kv.Delete(ctx, p.self.ID)
}
