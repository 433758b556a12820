package credindex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/fault"
)

// PresenceBucket is the KV bucket of live instances: each announces the log position
// its credential index has applied; an entry expires when its instance stops
// announcing.
const PresenceBucket = "KEYLEDGER_INSTANCES"

// Instance is one live instance's announcement; its JSON is the instance's entry in
// the bucket (the API shows it through a type of its own). Recent lists (position,
// time) checkpoints, oldest first, so "when did this instance apply P" is answerable
// for recent positions.
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

// PresenceConfig configures the presence of this instance.
type PresenceConfig struct {
	// ID names this instance (default: random).
	ID string
	// Every is the heartbeat (default 1s); an entry lives five of them.
	Every time.Duration
	// Replicas of the bucket (default 1).
	Replicas int
	// Clock stamps announcements (default time.Now).
	Clock  func() time.Time
	Logger *slog.Logger
}

// Validate joins every problem.
func (c PresenceConfig) Validate() error {
	var errs []error
	if c.Every < 0 {
		errs = append(errs, errors.New("presence: the heartbeat must not be negative"))
	}
	if c.Replicas != 0 && c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("presence: replicas must be 1, 3 or 5, got %d", c.Replicas))
	}
	return errors.Join(errs...)
}

// Presence announces this instance and lists the live ones. The bucket is in memory
// on the servers (it only says who is alive now): when a NATS restart loses it, the
// next announcement creates it again. Safe for concurrent use.
type Presence struct {
	js      jetstream.JetStream
	config  jetstream.KeyValueConfig
	cfg     PresenceConfig
	applied chan struct{} // the index applied a batch

	mu        sync.Mutex
	kv        jetstream.KeyValue
	self      Instance
	recent    int
	announced time.Time // the last announcement that was stored
}

// OpenPresence binds the bucket.
func OpenPresence(ctx context.Context, js jetstream.JetStream, cfg PresenceConfig) (*Presence, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ID == "" {
		cfg.ID = "kl-" + strings.ToLower(ulid.Make().String())
	}
	if cfg.Every == 0 {
		cfg.Every = time.Second
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Presence{js: js, cfg: cfg, applied: make(chan struct{}, 1), self: Instance{ID: cfg.ID, StartedAt: cfg.Clock().UTC()}, recent: 64,
		config: jetstream.KeyValueConfig{
			Bucket: PresenceBucket, Description: "live keyledger instances and the log position each has applied",
			History: 1, TTL: 5 * cfg.Every, Storage: jetstream.MemoryStorage, Replicas: cfg.Replicas,
		}}
	kv, err := eventstore.Ensure(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, p.config)
	})
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("presence bucket: %w", err))
	}
	p.kv = kv
	return p, nil
}

// Applied tells the heartbeat that the index applied a batch (the index's OnApply).
func (p *Presence) Applied(uint64) {
	select {
	case p.applied <- struct{}{}:
	default:
	}
}

// Run announces the index's applied position after every applied batch (at most one
// announcement per 10 ms: under a stream of writes batches are coalesced) and at
// least every heartbeat, until ctx ends; then it leaves the live set.
func (p *Presence) Run(ctx context.Context, x *Index) error {
	const minGap = 10 * time.Millisecond
	tick := time.NewTicker(p.cfg.Every)
	defer tick.Stop()
	for {
		if err := p.Announce(ctx, x.Position(), x.Ready()); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Warn("presence announce failed", "err", err)
		}
		last := p.cfg.Clock()
		select {
		case <-ctx.Done():
			leave, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = p.Leave(leave)
			return ctx.Err()
		case <-tick.C:
		case <-p.applied:
			if wait := minGap - p.cfg.Clock().Sub(last); wait > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
			}
		}
	}
}

// bucket is the bound bucket, created again when fresh is set. The creation runs
// outside the lock and is bounded by one heartbeat: a stalled NATS holds nobody.
func (p *Presence) bucket(ctx context.Context, fresh bool) (jetstream.KeyValue, error) {
	p.mu.Lock()
	kv := p.kv
	p.mu.Unlock()
	if kv != nil && !fresh {
		return kv, nil
	}
	ctx, cancel := context.WithTimeout(ctx, max(p.cfg.Every, time.Second))
	defer cancel()
	kv, err := eventstore.Ensure(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return p.js.CreateOrUpdateKeyValue(ctx, p.config)
	})
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("presence bucket: %w", err))
	}
	p.mu.Lock()
	p.kv = kv
	p.mu.Unlock()
	return kv, nil
}

// Lease is how long this instance's index may decide without showing that it holds
// the log (the index's Config.Lease): three heartbeats, two fewer than its entry
// lives, so that it has stopped before the other instances stop waiting for it.
func (p *Presence) Lease() time.Duration { return 3 * p.cfg.Every }

// Healthy says whether this instance's presence was stored within three heartbeats:
// without it, other instances and /v1/cluster/applied cannot see this one.
func (p *Presence) Healthy(context.Context) error {
	maxAge := 3 * p.cfg.Every
	p.mu.Lock()
	defer p.mu.Unlock()
	last := p.announced
	if last.IsZero() { // starting: the first announcement is on its way
		last = p.self.StartedAt
	}
	if since := p.cfg.Clock().Sub(last); since > maxAge {
		return fmt.Errorf("presence not announced for %s", since.Round(time.Millisecond))
	}
	return nil
}

// Announce publishes this instance's applied position; when the bucket is gone (a
// restarted NATS lost it), it creates it again and announces once more.
func (p *Presence) Announce(ctx context.Context, position uint64, ready bool) error {
	p.mu.Lock()
	now := p.cfg.Clock().UTC()
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
	p.announced = p.cfg.Clock()
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
