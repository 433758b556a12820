package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
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

// Presence announces this instance and lists the live ones. Safe for concurrent use.
type Presence struct {
	kv     jetstream.KeyValue
	mu     sync.Mutex
	self   Instance
	recent int
}

// OpenPresence binds the bucket; ttl is how long an entry lives without a new
// announcement (a few heartbeats).
func OpenPresence(ctx context.Context, js jetstream.JetStream, id string, ttl time.Duration, replicas int) (*Presence, error) {
	if replicas == 0 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: PresenceBucket, Description: "live keyledger instances and the log position each has applied",
		History: 1, TTL: ttl, Storage: jetstream.MemoryStorage, Replicas: replicas,
	})
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("presence bucket: %w", err))
	}
	return &Presence{kv: kv, self: Instance{ID: id, StartedAt: time.Now().UTC()}, recent: 64}, nil
}

// Announce publishes this instance's applied position.
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
	p.mu.Unlock()
	if _, err := p.kv.Put(ctx, p.self.ID, b); err != nil {
		return fault.Unavailable(fmt.Errorf("announce: %w", err))
	}
	return nil
}

// Live lists the instances whose announcement has not expired, by id.
func (p *Presence) Live(ctx context.Context) ([]Instance, error) {
	lister, err := p.kv.ListKeys(ctx)
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("list instances: %w", err))
	}
	var out []Instance
	for key := range lister.Keys() {
		e, err := p.kv.Get(ctx, key)
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
	return p.kv.Delete(ctx, p.self.ID)
}
