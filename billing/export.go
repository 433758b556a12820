package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmjs "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// The dead-letter stream: messages the endpoint refused through every retry, with
// Watermill's reason_poisoned metadata, until replay-dead-letters sends them again.
// Each export's letters are on a subject of its own (DeadLetterSubjectOf its
// durable): its replay sends them to its endpoint, never another export's.
const (
	DeadLetterStream  = "KEYLEDGER_BILLING_DEAD"
	DeadLetterSubject = "keyledger.billing.dead"
)

// DefaultDurable names the export when no other is given.
const DefaultDurable = "billing"

// DeadLetterSubjectOf is the subject of the dead letters of the export named durable.
func DeadLetterSubjectOf(durable string) string { return DeadLetterSubject + "." + durable }

// Billable are the domain events billing receives besides usage records: those that
// change who is billed for what.
var Billable = map[string]bool{
	domain.TypeWorkspaceCreated:  true,
	domain.TypeMemberAuthorized:  true,
	domain.TypeMemberRevoked:     true,
	domain.TypeAPIKeyCreated:     true,
	domain.TypeAPIKeyDeleted:     true,
	domain.TypeAccountCreated:    true,
	domain.TypeAccountDisabled:   true,
	domain.TypeAccountEnabled:    true,
	domain.TypeAccessKeyCreated:  true,
	domain.TypeAccessKeyDeleted:  true,
	domain.TypeAccessKeyRotated:  true,
	domain.TypeAccessKeyDisabled: true,
	domain.TypeAccessKeyEnabled:  true,
	// Roles authorize their users on workspaces: who may call where.
	domain.TypeRoleDeleted:          true,
	domain.TypeRoleUserIncluded:     true,
	domain.TypeRoleUserExcluded:     true,
	domain.TypeRoleWorkspaceAdded:   true,
	domain.TypeRoleWorkspaceRemoved: true,
	domain.EventTypeUsageRecorded:   true,
}

// Config of an export.
type Config struct {
	// NATSURL is dialled by the export itself: Watermill's subscriber drains the
	// connection it is given when it closes.
	NATSURL  string
	Endpoint string
	Secret   []byte
	// Durable names the export's consumers (<Durable>-usage, <Durable>-events); a
	// restarted export continues where its consumers stand.
	Durable string
	// Replicas of the dead-letter stream, as the log's (default 1).
	Replicas int
	// MaxRetries, InitialInterval and MaxInterval shape the exponential backoff of a
	// delivery; RequestTimeout bounds one attempt.
	MaxRetries      int
	InitialInterval time.Duration
	MaxInterval     time.Duration
	RequestTimeout  time.Duration
	Logger          *slog.Logger
}

// MinSecretLen is the shortest webhook signing secret accepted.
const MinSecretLen = 32

// Validate names every problem of a configuration.
func (c Config) Validate() error {
	var errs []error
	if c.NATSURL == "" || c.Endpoint == "" || c.Durable == "" {
		errs = append(errs, errors.New("billing: NATS URL, endpoint and durable name are required"))
	}
	if len(c.Secret) < MinSecretLen {
		errs = append(errs, fmt.Errorf("billing: the signing secret needs at least %d bytes", MinSecretLen))
	}
	if c.MaxRetries < 0 || c.InitialInterval < 0 || c.MaxInterval < 0 || c.RequestTimeout < 0 || c.Replicas < 0 {
		errs = append(errs, errors.New("billing: retries and intervals cannot be negative"))
	}
	return errors.Join(errs...)
}

func (c *Config) defaults() {
	if c.MaxRetries == 0 {
		c.MaxRetries = 8
	}
	if c.InitialInterval == 0 {
		c.InitialInterval = 500 * time.Millisecond
	}
	if c.MaxInterval == 0 {
		c.MaxInterval = 30 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
}

// budget is the longest one message can take through every retry: the consumers'
// ack wait, so that JetStream does not redeliver a message still being retried.
func (c Config) budget() time.Duration {
	total, wait := time.Duration(0), c.InitialInterval
	for range c.MaxRetries {
		total += min(wait, c.MaxInterval) + c.RequestTimeout
		wait *= 2
	}
	return total + c.RequestTimeout + time.Minute
}

// Export runs until ctx ends: usage records and billable events are delivered to the
// endpoint, each acknowledged on its stream only once the endpoint answered 2xx or it
// went to the dead letters. Delivery is at least once; receivers deduplicate by id.
type Export struct {
	cfg    Config
	router *message.Router
	nc     *nats.Conn
}

// New prepares an export: its connection, its dead-letter stream and its router.
func New(ctx context.Context, cfg Config) (*Export, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	nc, err := nats.Connect(cfg.NATSURL, eventstore.ConnectOptions(nats.Name("keyledger-billing-export"))...)
	if err != nil {
		return nil, fmt.Errorf("billing: nats: %w", err)
	}
	if err := ensureDeadLetters(ctx, nc, cfg.Replicas); err != nil {
		nc.Close()
		return nil, err
	}
	logger := watermill.NewSlogLogger(cfg.Logger)
	sub, err := wmjs.NewSubscriber(wmjs.SubscriberConfig{
		Conn: nc, Logger: logger, AckWaitTimeout: cfg.budget(),
		ResourceInitializer: durable(cfg), Unmarshaler: cloudEvents{},
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	// The dead-letter publisher shares the connection (closed by the subscriber).
	pub, err := wmjs.NewPublisher(wmjs.PublisherConfig{Conn: nc, Logger: logger,
		ConfigureStream: func(subject string) jetstream.StreamConfig { return jetstream.StreamConfig{Name: subject} }})
	if err != nil {
		nc.Close()
		return nil, err
	}
	poison, err := middleware.PoisonQueue(pub, DeadLetterSubjectOf(cfg.Durable))
	if err != nil {
		nc.Close()
		return nil, err
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		nc.Close()
		return nil, err
	}
	router.AddMiddleware(
		poison, // outermost: what failed every retry is dead-lettered and acknowledged
		middleware.Retry{MaxRetries: cfg.MaxRetries, InitialInterval: cfg.InitialInterval, MaxInterval: cfg.MaxInterval,
			Multiplier: 2, RandomizationFactor: 0.2, ResetContextOnRetry: true, Logger: logger}.Middleware,
		middleware.Recoverer, // a panic is an error, retried like one
	)
	send := Sender{Endpoint: cfg.Endpoint, Secret: cfg.Secret, Client: &http.Client{Timeout: cfg.RequestTimeout}, Clock: time.Now}
	handle := func(msg *message.Message) error {
		if !Billable[msg.Metadata.Get(eventstore.HeaderType)] {
			return nil
		}
		return send.Send(msg.Context(), msg)
	}
	router.AddConsumerHandler("billing-usage", eventstore.UsageStream, sub, handle)
	router.AddConsumerHandler("billing-events", eventstore.EventsStream, sub, handle)
	return &Export{cfg: cfg, router: router, nc: nc}, nil
}

// Run delivers until ctx ends.
func (e *Export) Run(ctx context.Context) error {
	defer e.nc.Close()
	return e.router.Run(ctx)
}

// Running is closed once the router delivers.
func (e *Export) Running() chan struct{} { return e.router.Running() }

// durable binds each stream (Watermill's topic) to the export's durable consumer on
// it, created on first use and kept: the export resumes where it stopped.
func durable(cfg Config) wmjs.ResourceInitializer {
	return func(ctx context.Context, js jetstream.JetStream, stream string) (jetstream.Consumer, func(context.Context, watermill.LoggerAdapter), error) {
		name, filter := cfg.Durable+"-usage", eventstore.UsageSubject
		if stream == eventstore.EventsStream {
			name, filter = cfg.Durable+"-events", eventstore.EventsSubject
		}
		c, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
			Durable: name, FilterSubject: filter, AckPolicy: jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverAllPolicy, AckWait: cfg.budget(), MaxDeliver: -1,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("billing: consumer %s on %s: %w", name, stream, err)
		}
		return c, nil, nil
	}
}

func ensureDeadLetters(ctx context.Context, nc *nats.Conn, replicas int) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: DeadLetterStream, Description: "keyledger billing webhooks refused through every retry",
		// The bare subject holds the letters of the versions that kept one for all.
		Subjects: []string{DeadLetterSubject, DeadLetterSubject + ".>"}, Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return fmt.Errorf("billing: stream %s: %w", DeadLetterStream, err)
	}
	return nil
}

// cloudEvents reads a keyledger message into a Watermill message: its id is ce-id,
// its metadata the CloudEvents headers, its stream sequence and its atomic append's
// id under names of keyledger's own, and nothing else (the headers of the write
// that stored it, an expected sequence or an atomic batch's, would make the dead
// letter's publish fail).
type cloudEvents struct{}

func (cloudEvents) Unmarshal(m jetstream.Msg) (*message.Message, error) {
	wm := message.NewMessage(m.Headers().Get(eventstore.HeaderID), m.Data())
	for k, v := range m.Headers() {
		if (strings.HasPrefix(k, "ce-") || k == eventstore.HeaderContentType) && len(v) > 0 {
			wm.Metadata.Set(k, v[0])
		}
	}
	if meta, err := m.Metadata(); err == nil { // a consumer's message always has it
		wm.Metadata.Set(metadataPosition, strconv.FormatUint(meta.Sequence.Stream, 10))
	}
	if batch := m.Headers().Get(jetstreamext.BatchIDHeader); batch != "" {
		wm.Metadata.Set(metadataBatchID, batch)
	}
	return wm, nil
}
