// Package audit makes an organization's history a transparency log: the canonical
// bytes of each event (a leaf of the organization's RFC 6962 Merkle tree), signed
// checkpoints in the C2SP tlog-checkpoint format, and the offline verification of an
// export. It holds no state: the tree lives in PostgreSQL (projections) and the
// checkpoints in the log itself.
package audit

import (
	"bytes"
	"crypto"
	"encoding/json"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// Hasher is the tree's hashing: RFC 6962 (RFC 9162) with SHA-256.
var Hasher = rfc6962.New(crypto.SHA256)

// Ranges builds compact ranges of the tree with Hasher.
var Ranges = &compact.RangeFactory{Hash: Hasher.HashChildren}

// Event is one line of an export: a CloudEvent in JSON (structured mode) with its
// position in the log and, for an event of the organization's history, its index in
// the organization's tree. A checkpoint is a line of type
// keyledger.audit.checkpoint_signed.v1 without a leaf index.
type Event struct {
	SpecVersion     string `json:"specversion"`
	ID              string `json:"id"`
	Source          string `json:"source"`
	Type            string `json:"type"`
	Subject         string `json:"subject"`
	Time            string `json:"time"`
	DataContentType string `json:"datacontenttype"`
	OrgID           string `json:"orgid,omitempty"`
	WorkspaceID     string `json:"workspaceid,omitempty"`
	Actor           string `json:"actor,omitempty"`
	Credential      string `json:"credential,omitempty"`
	SourceIP        string `json:"sourceip,omitempty"`
	RequestID       string `json:"requestid,omitempty"`
	ClientRequestID string `json:"clientrequestid,omitempty"`
	// Position is the event's stream sequence in KEYLEDGER_EVENTS.
	Position uint64 `json:"position"`
	// LeafIndex is the event's index in its organization's tree; nil for a
	// checkpoint, which is not a leaf.
	LeafIndex *uint64         `json:"leafindex,omitempty"`
	Data      json.RawMessage `json:"data"`
}

// FromRecord is the export line of a record of the log; leaf is its leaf index
// (nil for a checkpoint).
func FromRecord(r eventstore.Record, leaf *uint64) Event {
	m := r.Metadata
	return Event{SpecVersion: "1.0", ID: r.ID, Source: r.Raw.Source, Type: r.Raw.Type, Subject: r.Aggregate, Time: r.Raw.Time,
		DataContentType: "application/json", OrgID: m.OrganizationID, WorkspaceID: m.WorkspaceID, Actor: m.ActorID,
		Credential: m.CredentialID, SourceIP: m.SourceIP, RequestID: m.RequestID, ClientRequestID: m.ClientRequestID,
		Position: r.Sequence, LeafIndex: leaf, Data: r.Raw.Data}
}

// IsLeaf says whether a record belongs to its organization's tree: every event
// that carries an organization, except the checkpoints themselves.
func IsLeaf(r eventstore.Record) bool {
	return r.Metadata.OrganizationID != "" && r.Raw.Type != domain.TypeCheckpointSigned
}

// Leaf is the canonical bytes of an event, the leaf of its organization's tree: a
// JSON object of its type, subject, id, source, time, extensions (sorted) and data
// (compacted), with the keys in a fixed order. The position and the leaf index are
// not part of it: they are checked by their order.
func (e Event) Leaf() ([]byte, error) {
	var data bytes.Buffer
	if err := json.Compact(&data, e.Data); err != nil {
		return nil, fmt.Errorf("event %s: data is not JSON: %w", e.ID, err)
	}
	ext := map[string]string{}
	for k, v := range map[string]string{"orgid": e.OrgID, "workspaceid": e.WorkspaceID, "actor": e.Actor, "credential": e.Credential,
		"sourceip": e.SourceIP, "requestid": e.RequestID, "clientrequestid": e.ClientRequestID} {
		if v != "" {
			ext[k] = v
		}
	}
	return json.Marshal(struct {
		Type       string            `json:"type"`
		Subject    string            `json:"subject"`
		ID         string            `json:"id"`
		Source     string            `json:"source"`
		Time       string            `json:"time"`
		Extensions map[string]string `json:"extensions"`
		Data       json.RawMessage   `json:"data"`
	}{e.Type, e.Subject, e.ID, e.Source, e.Time, ext, data.Bytes()})
}

// LeafHash is the RFC 6962 hash of the event's leaf.
func (e Event) LeafHash() ([]byte, error) {
	leaf, err := e.Leaf()
	if err != nil {
		return nil, err
	}
	return Hasher.HashLeaf(leaf), nil
}
