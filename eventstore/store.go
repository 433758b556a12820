// Package eventstore keeps keyledger's event log in NATS JetStream: stream setup,
// optimistic appends (atomic for multi-event commands), aggregate loads, ordered
// subscriptions, the CloudEvents envelope and the secret vault.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/fault"
)

// Names of the streams and subjects (DESIGN §4).
const (
	EventsStream  = "KEYLEDGER_EVENTS"
	EventsSubject = "keyledger.events.>"
	UsageStream   = "KEYLEDGER_USAGE"
	UsageSubject  = "keyledger.usage.>"
	// AuditStream keeps what auditors need that is not a state change: refused
	// calls and replayed answers, for a retention (not the log, which is forever).
	AuditStream   = "KEYLEDGER_AUDIT"
	AuditSubject  = "keyledger.audit.>"
	subjectPrefix = "keyledger.events."
)

// MaxBatch is the largest atomic append: the server's atomic-batch limit, which
// the domain refuses to exceed in one write.
const MaxBatch = domain.MaxEventsPerWrite

// Config of the event store. The zero value is completed by defaults.
type Config struct {
	// Replicas of the streams and the vault bucket: 1 in dev, 3 in production.
	Replicas int
	// DuplicateWindow is how long JetStream remembers Nats-Msg-Id (default 2 min).
	DuplicateWindow time.Duration
	// UsageMaxAge is the retention of the usage stream (default 90 days).
	UsageMaxAge time.Duration
	// AuditMaxAge is the retention of the audit stream. Unset, a new stream keeps
	// 365 days and an existing one stays as the servers set it (a CLI command must
	// not change it).
	AuditMaxAge time.Duration
	// Source is the ce-source of events this process writes (default "keyledger").
	Source string
	// Clock stamps ce-time (default time.Now).
	Clock func() time.Time
	// ReadTimeout bounds each read round trip (a batch of an aggregate's events, its
	// last sequence, the log's end) when the caller's context allows longer
	// (default 2s): a stalled server is an error soon, not a held request.
	ReadTimeout time.Duration
	// WriteTimeout bounds an append, acknowledgement included (default 5s); when it
	// passes the outcome is unknown: the events may be in the log.
	WriteTimeout time.Duration
}

// Validate joins every problem.
func (c Config) Validate() error {
	var errs []error
	if c.Replicas != 0 && c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("eventstore: replicas must be 1, 3 or 5, got %d", c.Replicas))
	}
	if c.DuplicateWindow < 0 || c.UsageMaxAge < 0 || c.AuditMaxAge < 0 || c.ReadTimeout < 0 || c.WriteTimeout < 0 {
		errs = append(errs, errors.New("eventstore: durations must not be negative"))
	}
	return errors.Join(errs...)
}

func (c *Config) defaults() {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 2 * time.Minute
	}
	if c.AuditMaxAge == 0 {
		c.AuditMaxAge = 365 * 24 * time.Hour
	}
	if c.UsageMaxAge == 0 {
		c.UsageMaxAge = 90 * 24 * time.Hour
	}
	if c.Source == "" {
		c.Source = "keyledger"
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 2 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
}

// DefaultWriteTimeout bounds a write to NATS when no other is configured.
const DefaultWriteTimeout = 5 * time.Second

// Bounds are the store's read and write timeouts, defaults resolved.
func (s *Store) Bounds() (read, write time.Duration) { return s.cfg.ReadTimeout, s.cfg.WriteTimeout }

// read bounds one read round trip by ReadTimeout.
func (s *Store) read(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.ReadTimeout)
}

// Store appends and reads domain events. Safe for concurrent use.
type Store struct {
	js     jetstream.JetStream
	leader nats.JetStreamContext // the legacy API: its message get asks the stream's leader
	stream jetstream.Stream
	cfg    Config
}

// Subject is the log subject of one aggregate.
func Subject(kind, id string) string { return subjectPrefix + kind + "." + id }

// ConnectOptions are the options of every NATS connection the store is opened on,
// with the caller's own after them: reconnect forever, and never buffer a publish
// while disconnected. A buffered append is answered as failed (503) yet lands later
// when the buffer is flushed on reconnection: a write reported failed must not be.
func ConnectOptions(more ...nats.Option) []nats.Option {
	return append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond), nats.ReconnectBufSize(-1)}, more...)
}

// ErrBufferingConnection: the connection would buffer publishes while disconnected.
var ErrBufferingConnection = errors.New("eventstore: the NATS connection buffers publishes while disconnected; connect with eventstore.ConnectOptions()")

// MinServerVersion is the oldest nats-server keyledger runs on: atomic batch
// publish (a command's events all or none) came with 2.12.
const MinServerVersion = "2.12.0"

// ErrRefused: the NATS server cannot keep what keyledger promises (too old, or a
// stream configured otherwise); nothing was written.
var ErrRefused = errors.New("eventstore: refusing this NATS server")

// Open creates the streams when they are missing, checks them when they exist, and
// returns a Store. It refuses, before writing anything, a server older than
// MinServerVersion, a log stream whose stored configuration differs from what the
// log's guarantees need (atomic publish, no delete or purge, the duplicate window,
// the replicas), and a connection that buffers publishes while disconnected.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if nc.Opts.ReconnectBufSize >= 0 {
		return nil, ErrBufferingConnection
	}
	keepAudit := cfg.AuditMaxAge == 0
	cfg.defaults()
	if v := nc.ConnectedServerVersion(); !atLeast(v, MinServerVersion) {
		return nil, fmt.Errorf("%w: nats-server %s is too old, keyledger needs %s or newer (atomic batch publish)", ErrRefused, v, MinServerVersion)
	}
	// An asynchronous publish whose acknowledgement never comes gives up after the
	// write timeout: until then it holds one of the in-flight slots, and without a
	// timeout only a reconnection would free it.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(maxUsageInFlight), jetstream.WithPublishAsyncTimeout(cfg.WriteTimeout))
	if err != nil {
		return nil, err
	}
	createOrOpen := func(ctx context.Context, sc jetstream.StreamConfig) (jetstream.Stream, error) {
		st, err := js.CreateStream(ctx, sc)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return js.Stream(ctx, sc.Name)
		}
		return st, err
	}
	stream, err := Ensure(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return createOrOpen(ctx, jetstream.StreamConfig{
			Name:               EventsStream,
			Description:        "keyledger domain events: the source of truth, append-only",
			Subjects:           []string{EventsSubject},
			Storage:            jetstream.FileStorage,
			Replicas:           cfg.Replicas,
			Duplicates:         cfg.DuplicateWindow,
			DenyDelete:         true,
			DenyPurge:          true,
			AllowAtomicPublish: true,
			AllowDirect:        true,
		})
	})
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("create stream %s: %w", EventsStream, err))
	}
	if err := checkLog(stream.CachedInfo().Config, cfg); err != nil {
		return nil, err
	}
	// The streams beside the log: retained for a while, not forever.
	for _, sc := range []jetstream.StreamConfig{
		{Name: UsageStream, Description: "keyledger usage records reported by gateways", Subjects: []string{UsageSubject},
			Duplicates: cfg.DuplicateWindow, MaxAge: cfg.UsageMaxAge},
		{Name: AuditStream, Description: "keyledger refused calls and replayed answers, for auditors", Subjects: []string{AuditSubject},
			MaxAge: cfg.AuditMaxAge},
	} {
		sc.Storage, sc.Replicas, sc.AllowDirect = jetstream.FileStorage, cfg.Replicas, true
		ensure := js.CreateOrUpdateStream
		if sc.Name == AuditStream && keepAudit {
			ensure = createOrOpen
		}
		if _, err := Ensure(ctx, func(ctx context.Context) (jetstream.Stream, error) { return ensure(ctx, sc) }); err != nil {
			return nil, fault.Unavailable(fmt.Errorf("create stream %s: %w", sc.Name, err))
		}
	}
	leader, err := nc.JetStream()
	if err != nil {
		return nil, err
	}
	return &Store{js: js, leader: leader, stream: stream, cfg: cfg}, nil
}

// checkLog compares the log stream as the server stores it with what keyledger's
// guarantees need, naming every difference. An older server drops the settings it
// does not know, which this catches too.
func checkLog(got jetstream.StreamConfig, cfg Config) error {
	var diffs []string
	check := func(ok bool, what string) {
		if !ok {
			diffs = append(diffs, what)
		}
	}
	check(got.AllowAtomicPublish, "allow_atomic is false (a command's events would not be all or none)")
	check(got.DenyDelete, "deny_delete is false (the log must be append-only)")
	check(got.DenyPurge, "deny_purge is false (the log must be append-only)")
	check(got.AllowDirect, "allow_direct is false (aggregates are loaded with direct gets)")
	check(got.Storage == jetstream.FileStorage, "storage is not file")
	check(got.Duplicates == cfg.DuplicateWindow, fmt.Sprintf("duplicate window %s, configured %s", got.Duplicates, cfg.DuplicateWindow))
	check(got.Replicas == cfg.Replicas, fmt.Sprintf("%d replicas, configured %d", got.Replicas, cfg.Replicas))
	if len(diffs) > 0 {
		return fmt.Errorf("%w: stream %s is configured otherwise than keyledger needs: %s", ErrRefused, EventsStream, strings.Join(diffs, "; "))
	}
	return nil
}

// atLeast compares dotted versions ("2.12.0", "2.15.3-beta"): is v at least min?
func atLeast(v, min string) bool {
	parse := func(s string) [3]int {
		var out [3]int
		s, _, _ = strings.Cut(s, "-")
		for i, part := range strings.SplitN(s, ".", 3) {
			out[i], _ = strconv.Atoi(part)
		}
		return out
	}
	a, b := parse(v), parse(min)
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return true
}

// JetStream exposes the client for the vault and for benchmarks.
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// Append writes events of one aggregate if its last sequence is still expected (0
// for a new aggregate). Several events are one atomic batch: all or none. It returns
// the stream sequence of the last event, the aggregate's new version. A concurrent
// writer yields domain.ErrConflict; a NATS outage fault.ErrUnavailable.
func (s *Store) Append(ctx context.Context, kind, id string, expected uint64, events []domain.Event, meta domain.Metadata) (uint64, error) {
	if len(events) == 0 {
		return expected, nil
	}
	if len(events) > MaxBatch {
		return 0, fmt.Errorf("append %s/%s: %d events exceed the atomic batch limit %d", kind, id, len(events), MaxBatch)
	}
	subject := Subject(kind, id)
	at := s.cfg.Clock()
	msgs := make([]*nats.Msg, len(events))
	for i, e := range events {
		eventID := ""
		if meta.EventID != nil {
			eventID = meta.EventID(i)
		}
		m, err := encode(subject, id, s.cfg.Source, eventID, e, meta, at)
		if err != nil {
			return 0, err
		}
		msgs[i] = m
	}
	msgs[0].Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expected, 10))
	return s.publish(ctx, msgs)
}

// publish appends msgs (each carrying the expected sequence its aggregate's first
// one needs) within the write timeout, and returns the last one's position: one
// message plainly, more as one atomic batch (a batch of one would carry a batch id
// for nothing, which billing's webhooks show).
func (s *Store) publish(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	subject := msgs[0].Subject
	if len(msgs) == 1 {
		ack, err := s.js.PublishMsg(ctx, msgs[0])
		if err != nil {
			return 0, classify(subject, err)
		}
		if ack.Duplicate { // an earlier attempt of the same request is in the log
			return 0, fmt.Errorf("append %s: event %s is already in the log: %w", subject, msgs[0].Header.Get(HeaderID), domain.ErrConflict)
		}
		return ack.Sequence, nil
	}
	// The first message's acknowledgement is awaited within the write timeout too
	// (the library's default is the NATS client's own, 5 s, whatever ctx says).
	deadline, _ := ctx.Deadline()
	ack, err := jetstreamext.PublishMsgBatch(ctx, s.js, msgs,
		jetstreamext.BatchFlowControl{AckFirst: true, AckTimeout: max(time.Until(deadline), time.Millisecond)})
	if err != nil {
		return 0, classify(subject, err)
	}
	return ack.Sequence, nil
}

// AppendMany writes the events of several aggregates of one kind as one atomic
// batch: all or none, each aggregate's expected sequence checked (a stale one
// refuses the whole batch with domain.ErrConflict). meta is each event's, with the
// workspace id set to the aggregate's for workspaces. It returns each aggregate's
// new version, in the order of changes (unchanged for an empty change).
func (s *Store) AppendMany(ctx context.Context, kind string, changes []domain.Change, meta domain.Metadata) ([]uint64, error) {
	total := 0
	for _, c := range changes {
		total += len(c.Events)
	}
	versions := make([]uint64, len(changes))
	if total == 0 {
		for i, c := range changes {
			versions[i] = c.Expected
		}
		return versions, nil
	}
	if total > MaxBatch {
		return nil, fmt.Errorf("append %d %s aggregates: %d events exceed the atomic batch limit %d", len(changes), kind, total, MaxBatch)
	}
	at := s.cfg.Clock()
	msgs := make([]*nats.Msg, 0, total)
	for _, c := range changes {
		subject := Subject(kind, c.ID)
		m := meta
		if kind == domain.AggregateWorkspace {
			m.WorkspaceID = c.ID
		}
		for j, e := range c.Events {
			eventID := ""
			if meta.EventID != nil {
				eventID = meta.EventID(len(msgs))
			}
			msg, err := encode(subject, c.ID, s.cfg.Source, eventID, e, m, at)
			if err != nil {
				return nil, err
			}
			if j == 0 {
				msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(c.Expected, 10))
			}
			msgs = append(msgs, msg)
		}
	}
	end, err := s.publish(ctx, msgs)
	if err != nil {
		return nil, err
	}
	// The batch is stored as one run of sequences ending at the last one's.
	last := end - uint64(total)
	for i, c := range changes {
		versions[i] = c.Expected
		if len(c.Events) > 0 {
			last += uint64(len(c.Events))
			versions[i] = last
		}
	}
	return versions, nil
}

func classify(subject string, err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10071, 10164: // someone wrote first
			return fmt.Errorf("append %s: %w", subject, domain.ErrConflict)
		case 10201: // the batch holds an event id already in the log: an earlier attempt's
			return fmt.Errorf("append %s: %w", subject, domain.ErrConflict)
		}
		if apiErr.Code >= 500 || apiErr.Code == 429 || apiErr.Code == 503 {
			return fault.Unavailable(fmt.Errorf("append %s: %w", subject, err))
		}
		return fmt.Errorf("append %s: %w", subject, err)
	}
	return fault.Unavailable(fmt.Errorf("append %s: %w", subject, err))
}

// Load returns the events of one aggregate after sequence `after` (0 for all), and
// the sequence of the last one (`after` when there are none). It first asks where the
// aggregate ends, then reads up to there: a read that stops short (a stalled or
// restarting server ends a batch get without an error) is fault.ErrUnavailable,
// never a shorter aggregate.
func (s *Store) Load(ctx context.Context, kind, id string, after uint64) ([]Record, uint64, error) {
	end, err := s.LastSequence(ctx, kind, id)
	if err != nil {
		return nil, 0, err
	}
	return s.LoadUpTo(ctx, kind, id, after, end)
}

// LoadUpTo is Load when the caller already knows the aggregate's last sequence
// `end`, read in the same request: events after `end` may come too.
func (s *Store) LoadUpTo(ctx context.Context, kind, id string, after, end uint64) ([]Record, uint64, error) {
	subject := Subject(kind, id)
	var out []Record
	last := after
	for last < end {
		got, err := s.loadBatch(ctx, subject, last+1, func(r Record) {
			out = append(out, r)
			last = r.Sequence
		})
		if err != nil {
			return nil, 0, err
		}
		if got == 0 {
			return nil, 0, fault.Unavailable(fmt.Errorf("load %s: the log answered nothing after %d, before the aggregate's end %d", subject, last, end))
		}
	}
	return out, last, nil
}

// loadBatch reads one batch of a subject's events from seq, in one bounded round
// trip, and says how many came.
func (s *Store) loadBatch(ctx context.Context, subject string, seq uint64, add func(Record)) (int, error) {
	ctx, cancel := s.read(ctx)
	defer cancel()
	it, err := jetstreamext.GetBatch(ctx, s.js, EventsStream, 1000,
		jetstreamext.GetBatchSubject(subject), jetstreamext.GetBatchSeq(seq))
	if err != nil {
		return 0, fault.Unavailable(fmt.Errorf("load %s: %w", subject, err))
	}
	n := 0
	for m, err := range it {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break
		}
		if err != nil {
			return 0, fault.Unavailable(fmt.Errorf("load %s: %w", subject, err))
		}
		r, err := decode(m.Sequence, m.Subject, m.Header, m.Data)
		if err != nil {
			return 0, err
		}
		add(r)
		n++
	}
	return n, nil
}

// LastSequence is the sequence of the aggregate's last event (0 if it has none):
// one round trip, for checking a cached aggregate is current, to the stream's
// leader (lastFromLeader).
func (s *Store) LastSequence(ctx context.Context, kind, id string) (uint64, error) {
	ctx, cancel := s.read(ctx)
	defer cancel()
	m, err := lastFromLeader(ctx, s.leader, EventsStream, Subject(kind, id))
	if errors.Is(err, nats.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fault.Unavailable(fmt.Errorf("last sequence of %s: %w", Subject(kind, id), err))
	}
	return m.Sequence, nil
}

// Position is the sequence of the last event in the log (0 when empty).
func (s *Store) Position(ctx context.Context) (uint64, error) {
	ctx, cancel := s.read(ctx)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fault.Unavailable(fmt.Errorf("stream info: %w", err))
	}
	return info.State.LastSeq, nil
}

// HoldsEvent checks that the log holds the event with this id (ce-id) at this
// position: with the position, the id tells this log from another one that has
// grown as long (a snapshot of derived state names both).
func (s *Store) HoldsEvent(ctx context.Context, seq uint64, id string) error {
	ctx, cancel := s.read(ctx)
	defer cancel()
	m, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		return fmt.Errorf("event at %d: %w", seq, err)
	}
	if got := m.Header.Get(HeaderID); got != id {
		return fmt.Errorf("the log holds event %s at %d, not %s", got, seq, id)
	}
	return nil
}

// LastOfEach is the last event of each aggregate of one kind, as stored (no
// decoded Event: its reader decodes what it can), in log order, read through a
// consumer of its own (every organization's latest checkpoint). It reads them all
// or fails.
func (s *Store) LastOfEach(ctx context.Context, kind string) ([]Record, error) {
	ctx, cancel := s.read(ctx)
	defer cancel()
	cons, err := s.js.CreateConsumer(ctx, EventsStream, jetstream.ConsumerConfig{FilterSubject: Subject(kind, "*"),
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy, AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true,
		InactiveThreshold: time.Minute})
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("last of each %s: %w", kind, err))
	}
	info := cons.CachedInfo()
	defer func() { _ = s.js.DeleteConsumer(context.WithoutCancel(ctx), EventsStream, info.Name) }()
	out := make([]Record, 0, info.NumPending) // the last of each, at creation
	for uint64(len(out)) < info.NumPending {
		batch, err := cons.Fetch(int(min(info.NumPending-uint64(len(out)), 1000)), jetstream.FetchContext(ctx))
		if err != nil {
			return nil, fault.Unavailable(fmt.Errorf("last of each %s: %w", kind, err))
		}
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("message metadata: %w", err)
			}
			out = append(out, decodeRaw(md.Sequence.Stream, m.Subject(), m.Headers(), m.Data()))
		}
		if err := batch.Error(); err != nil {
			return nil, fault.Unavailable(fmt.Errorf("last of each %s: %d of %d read: %w", kind, len(out), info.NumPending, err))
		}
	}
	return out, nil
}

// CountSubjects is the number of aggregates of one kind in the log.
func (s *Store) CountSubjects(ctx context.Context, kind string) (int, error) {
	ids, err := s.Aggregates(ctx, kind)
	return len(ids), err
}

// Aggregates are the ids of the aggregates of one kind in the log.
func (s *Store) Aggregates(ctx context.Context, kind string) ([]string, error) {
	prefix := subjectPrefix + kind + "."
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("stream info: %w", err))
	}
	ids := make([]string, 0, len(info.State.Subjects))
	for subject := range info.State.Subjects {
		ids = append(ids, strings.TrimPrefix(subject, prefix))
	}
	return ids, nil
}

// FirstSequence is the sequence of the aggregate's first event (0 if it has none).
func (s *Store) FirstSequence(ctx context.Context, kind, id string) (uint64, error) {
	ctx, cancel := s.read(ctx)
	defer cancel()
	m, err := s.stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(Subject(kind, id)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fault.Unavailable(fmt.Errorf("first event of %s: %w", Subject(kind, id), err))
	}
	return m.Sequence, nil
}

// LoadEvents is LoadUpTo without envelopes, for rebuilding aggregates.
func (s *Store) LoadEvents(ctx context.Context, kind, id string, after, end uint64) ([]domain.Recorded, uint64, error) {
	recs, last, err := s.LoadUpTo(ctx, kind, id, after, end)
	if err != nil {
		return nil, 0, err
	}
	events := make([]domain.Recorded, len(recs))
	for i, r := range recs {
		events[i] = domain.Recorded{Position: r.Sequence, Event: r.Event, Time: r.Time, Actor: r.Metadata.ActorID}
	}
	return events, last, nil
}
