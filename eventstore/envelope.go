package eventstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/keyledger/keyledger/domain"
)

// CloudEvents binary-mode headers (DESIGN §4). Consumers outside keyledger rely on
// these names: changing one is a breaking change of the log.
const (
	HeaderSpecVersion = "ce-specversion"
	HeaderID          = "ce-id"
	HeaderSource      = "ce-source"
	HeaderType        = "ce-type"
	HeaderTime        = "ce-time"
	HeaderSubject     = "ce-subject"
	HeaderContentType = "content-type"
	HeaderActor       = "ce-actor"
	HeaderCredential  = "ce-credential"
	HeaderSourceIP    = "ce-sourceip"
	HeaderRequestID   = "ce-requestid"
	// HeaderClientRequestID is the client's own X-Request-Id, when it sent one.
	HeaderClientRequestID = "ce-clientrequestid"
	HeaderOrgID           = "ce-orgid"
	HeaderWorkspaceID     = "ce-workspaceid"
)

// Record is one event read from the log, with its envelope.
type Record struct {
	Sequence  uint64
	Subject   string
	ID        string
	Type      string
	Time      time.Time
	Aggregate string // the aggregate id, also ce-subject
	Metadata  domain.Metadata
	Event     domain.Event
	// Raw is the event as stored, for those who must reproduce its exact bytes (the
	// audit log's Merkle tree, the export).
	Raw Raw
	// midAppend: a later record of the same atomic append follows this one.
	midAppend bool
}

// Raw is what the log stores of an event beyond what Record decodes: its ce-source,
// its ce-time as written and its payload's bytes before any upcast.
type Raw struct {
	Source string
	Type   string
	Time   string
	Data   []byte
}

// encode builds the message of one event; id is its ce-id, "" for a fresh ULID;
// ceSubject is what the event is about (the aggregate id, or a usage record's id).
func encode(subject, ceSubject, source, id string, e domain.Event, meta domain.Metadata, at time.Time) (*nats.Msg, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
	}
	if id == "" {
		id = ulid.Make().String()
	}
	m := nats.NewMsg(subject)
	m.Data = body
	h := m.Header
	h.Set(HeaderSpecVersion, "1.0")
	h.Set(HeaderID, id)
	h.Set(HeaderSource, source)
	h.Set(HeaderType, e.EventType())
	h.Set(HeaderTime, at.UTC().Format(time.RFC3339Nano))
	h.Set(HeaderSubject, ceSubject)
	h.Set(HeaderContentType, "application/json")
	setIf(h, HeaderActor, meta.ActorID)
	setIf(h, HeaderCredential, meta.CredentialID)
	setIf(h, HeaderSourceIP, meta.SourceIP)
	setIf(h, HeaderRequestID, meta.RequestID)
	setIf(h, HeaderClientRequestID, meta.ClientRequestID)
	setIf(h, HeaderOrgID, meta.OrganizationID)
	setIf(h, HeaderWorkspaceID, meta.WorkspaceID)
	h.Set(jetstream.MsgIDHeader, id)
	return m, nil
}

func setIf(h nats.Header, k, v string) {
	if v != "" {
		h.Set(k, v)
	}
}

// decode turns a stored message back into a Record, upcasting older versions.
func decode(seq uint64, subject string, h nats.Header, data []byte) (Record, error) {
	r := decodeRaw(seq, subject, h, data)
	typ, data, err := upcast(r.Type, data)
	if err != nil {
		return Record{}, fmt.Errorf("decode seq %d: %w", seq, err)
	}
	if r.Event, err = domain.DecodeEvent(typ, data); err != nil {
		return Record{}, fmt.Errorf("decode seq %d: %w", seq, err)
	}
	r.Type = typ
	return r, nil
}

// decodeRaw is a Record as stored: its envelope and bytes, without its Event.
func decodeRaw(seq uint64, subject string, h nats.Header, data []byte) Record {
	raw := Raw{Source: h.Get(HeaderSource), Type: h.Get(HeaderType), Time: h.Get(HeaderTime), Data: data}
	at, _ := time.Parse(time.RFC3339Nano, raw.Time)
	return Record{
		// An atomic batch's records carry its id; its last one, the commit.
		midAppend: h.Get(jetstreamext.BatchIDHeader) != "" && h.Get(jetstreamext.BatchCommitHeader) == "",
		Sequence:  seq,
		Subject:   subject,
		ID:        h.Get(HeaderID),
		Type:      raw.Type,
		Time:      at,
		Aggregate: h.Get(HeaderSubject),
		Raw:       raw,
		Metadata: domain.Metadata{
			OrganizationID:  h.Get(HeaderOrgID),
			WorkspaceID:     h.Get(HeaderWorkspaceID),
			ActorID:         h.Get(HeaderActor),
			CredentialID:    h.Get(HeaderCredential),
			SourceIP:        h.Get(HeaderSourceIP),
			RequestID:       h.Get(HeaderRequestID),
			ClientRequestID: h.Get(HeaderClientRequestID),
		},
	}
}

// upcasters turn an older event version into the current one, keyed by the old
// wire type. Every event is at v1 so far; when v2 of an event is introduced, its v1
// upcaster goes here and readers never see v1 again.
var upcasters = map[string]func([]byte) (string, []byte, error){}

func upcast(typ string, data []byte) (string, []byte, error) {
	for {
		up, ok := upcasters[typ]
		if !ok {
			return typ, data, nil
		}
		var err error
		if typ, data, err = up(data); err != nil {
			return "", nil, err
		}
	}
}
