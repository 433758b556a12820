package billing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReplayDeadLetters sends every dead letter of the export cfg.Durable names to the
// endpoint again, in order, each acknowledged once the endpoint answered 2xx. It
// stops at the first refusal (the letter stays, for the next replay) and says how
// many were delivered. Its durable consumer (billing-replay-<durable>) remembers
// what it delivered: a later replay does not send it again. The default export's
// replay (DefaultDurable) also sends the letters kept before each export had a subject
// of its own (keyledger.billing.dead, through the consumer those replays used).
func ReplayDeadLetters(ctx context.Context, nc *nats.Conn, cfg Config) (int, error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	cfg.defaults()
	if err := ensureDeadLetters(ctx, nc, cfg.Replicas); err != nil {
		return 0, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	send := Sender{Endpoint: cfg.Endpoint, Secret: cfg.Secret, Client: &http.Client{Timeout: cfg.RequestTimeout}, Clock: time.Now}
	from := [][2]string{{"billing-replay-" + cfg.Durable, DeadLetterSubjectOf(cfg.Durable)}}
	if cfg.Durable == DefaultDurable {
		from = append(from, [2]string{"billing-replay", DeadLetterSubject})
	}
	sent := 0
	for _, f := range from {
		n, err := replay(ctx, js, f[0], f[1], cfg, send)
		sent += n
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// replay sends the letters of one subject through the durable consumer of that name.
func replay(ctx context.Context, js jetstream.JetStream, consumer, subject string, cfg Config, send Sender) (int, error) {
	cons, err := js.CreateOrUpdateConsumer(ctx, DeadLetterStream, jetstream.ConsumerConfig{
		Durable: consumer, FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute + cfg.RequestTimeout,
	})
	if err != nil {
		return 0, fmt.Errorf("billing: dead letters: %w", err)
	}
	sent := 0
	for {
		batch, err := cons.FetchNoWait(1) // one at a time: a refusal leaves no letter held
		if err != nil {
			return sent, fmt.Errorf("billing: dead letters: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			msg, err := (&wmnats.NATSMarshaler{}).Unmarshal(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			if err != nil {
				return sent, err
			}
			if err := send.Send(ctx, msg); err != nil {
				_ = m.Nak()
				return sent, err
			}
			if err := m.DoubleAck(ctx); err != nil {
				return sent, fmt.Errorf("billing: acknowledge dead letter %s: %w", msg.UUID, err)
			}
			sent++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return sent, fmt.Errorf("billing: dead letters: %w", err)
		}
		if n == 0 {
			return sent, nil
		}
	}
}
