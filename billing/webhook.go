// Package billing delivers what downstream billing needs (usage records and the
// domain events that change what is billable) to a billing endpoint as signed
// webhooks: a Watermill router on durable JetStream consumers, with retries,
// panic recovery and a dead-letter stream.
package billing

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/keyledger/keyledger/eventstore"
)

// Webhook headers. The signature is Stripe's scheme: t=<unix seconds>,v1=<hex of
// HMAC-SHA256(secret, "<t>.<body>")>; a receiver recomputes it, compares in constant
// time and refuses a timestamp too far from its clock (replays).
const (
	HeaderSignature = "Keyledger-Signature"
	HeaderEventID   = "Keyledger-Event-Id"
	ContentType     = "application/cloudevents+json"
)

// Sign is the signature header of a body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature: the signature header is missing, malformed, wrong or too old.
var ErrBadSignature = errors.New("billing: bad webhook signature")

// VerifySignature checks a webhook's signature header, as a receiver must: the
// HMAC over the timestamp and the body, and a timestamp within tolerance of now.
func VerifySignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %s outside %s", ErrBadSignature, ts, tolerance)
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, ts, body))) {
		return ErrBadSignature
	}
	return nil
}

// Envelope is a webhook's body: the CloudEvent in structured mode, its data the
// event's payload without secret material.
type Envelope struct {
	SpecVersion     string `json:"specversion"`
	ID              string `json:"id"`
	Source          string `json:"source"`
	Type            string `json:"type"`
	Time            string `json:"time"`
	Subject         string `json:"subject"`
	DataContentType string `json:"datacontenttype"`
	OrgID           string `json:"orgid,omitempty"`
	WorkspaceID     string `json:"workspaceid,omitempty"`
	// Position is the message's sequence in its stream, in decimal: the log's
	// position for a domain event (as /v1/events and X-Keyledger-Position give it),
	// the usage stream's for a usage record. Webhooks are not delivered in that
	// order across retries and replayed dead letters; a receiver orders by it. A
	// string, as CloudEvents' integers stop at 2³¹−1, which a usage stream passes.
	// Absent from a dead letter kept before webhooks carried it.
	Position string `json:"position,omitempty"`
	// BatchID is shared by the events one atomic append wrote (a batch of keys, a
	// role edit): they were decided together. Absent for an append of one event.
	BatchID string          `json:"batchid,omitempty"`
	Data    json.RawMessage `json:"data"`
}

// The metadata a message keeps from its stream, carried through a dead letter (as
// its headers) to the webhook.
const (
	metadataPosition = "Keyledger-Position"
	metadataBatchID  = "Keyledger-Batch-Id"
)

// secretFields never leave keyledger through a webhook, opaque or not.
var secretFields = []string{"secret_hash", "sealed"}

// envelope builds the body of a message read from a stream (its CloudEvents
// headers are the message's metadata).
func envelope(msg *message.Message) ([]byte, error) {
	var data map[string]json.RawMessage
	if err := json.Unmarshal(msg.Payload, &data); err != nil {
		return nil, fmt.Errorf("billing: payload of %s: %w", msg.UUID, err)
	}
	for _, f := range secretFields {
		delete(data, f)
	}
	payload, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	md := msg.Metadata
	return json.Marshal(Envelope{
		SpecVersion: "1.0", ID: msg.UUID, Source: md.Get(eventstore.HeaderSource), Type: md.Get(eventstore.HeaderType),
		Time: md.Get(eventstore.HeaderTime), Subject: md.Get(eventstore.HeaderSubject), DataContentType: "application/json",
		OrgID: md.Get(eventstore.HeaderOrgID), WorkspaceID: md.Get(eventstore.HeaderWorkspaceID), Position: md.Get(metadataPosition),
		BatchID: md.Get(metadataBatchID), Data: payload,
	})
}

// Sender posts webhooks to one endpoint.
type Sender struct {
	Endpoint string
	Secret   []byte
	Client   *http.Client
	Clock    func() time.Time
}

// Send delivers one message; any answer but a 2xx, or none in time, is an error
// (retried by the router, then dead-lettered).
func (s Sender) Send(ctx context.Context, msg *message.Message) error {
	body, err := envelope(msg)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set(HeaderEventID, msg.UUID)
	req.Header.Set(HeaderSignature, Sign(s.Secret, s.Clock(), body))
	res, err := s.Client.Do(req)
	if err != nil {
		return fmt.Errorf("billing: deliver %s: %w", msg.UUID, err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("billing: deliver %s: the endpoint answered %d", msg.UUID, res.StatusCode)
	}
	return nil
}
