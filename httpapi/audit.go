package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/auditlog"
	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/fault"
	"github.com/keyledger/keyledger/projections"
)

// Handlers of the auditors' side: the audit history, the raw events, the signed
// checkpoints and the proofs. Every route needs audit:read.

// AuditRef names an account, a workspace or a target: its id and its name as the
// log last gave it.
type AuditRef struct {
	Kind string `json:"kind,omitempty"`
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// AuditChange is one field an edit changed.
type AuditChange struct {
	Before any `json:"before"`
	After  any `json:"after"`
}

// AuditEntry is one event of the organization's history as an auditor reads it.
type AuditEntry struct {
	EventID   string    `json:"event_id"`
	EventType string    `json:"event_type"`
	Action    string    `json:"action"`
	Time      time.Time `json:"time"`
	// Summary is one line: "alice deleted Search key crawler-3 in workspace prod".
	Summary         string    `json:"summary"`
	Actor           AuditRef  `json:"actor"`
	CredentialID    string    `json:"credential_id,omitempty"`
	SourceIP        string    `json:"source_ip,omitempty"`
	RequestID       string    `json:"request_id,omitempty"`
	ClientRequestID string    `json:"client_request_id,omitempty"`
	Workspace       *AuditRef `json:"workspace,omitempty"`
	Target          AuditRef  `json:"target"`
	// Account is the account the event concerns beside its target (a role's user,
	// a member, an access key's owner).
	Account *AuditRef `json:"account,omitempty"`
	// Data is the event's payload, without credential hashes and sealed secrets.
	Data map[string]any `json:"data"`
	// Changes are the fields an edit changed, before and after.
	Changes map[string]AuditChange `json:"changes,omitempty"`
	// Position is the event's log position; LeafIndex its index in the
	// organization's Merkle tree (proofs: /v1/audit/proof/inclusion).
	Position  uint64 `json:"position"`
	LeafIndex uint64 `json:"leaf_index"`
}

// AuditList is a page of audit entries, newest first.
type AuditList struct {
	Items      []AuditEntry `json:"items"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// AuditCheckpoint is a signed checkpoint of the organization's history.
type AuditCheckpoint struct {
	Origin   string `json:"origin"`
	Size     uint64 `json:"size"`
	RootHash []byte `json:"root_hash"`
	// Note is the checkpoint as a C2SP signed note (tlog-checkpoint), what a
	// witness or `keyledger audit verify` checks.
	Note     string    `json:"note"`
	Position uint64    `json:"position"`
	SignedAt time.Time `json:"signed_at"`
}

// AuditPublicKey is what verifies the checkpoints.
type AuditPublicKey struct {
	// PublicKey is the current key, in the note verifier format.
	PublicKey string `json:"public_key"`
	// PreviousPublicKeys are the keys of rotated keys, which still verify the
	// checkpoints they signed.
	PreviousPublicKeys []string `json:"previous_public_keys"`
	// Origin is the origin of the caller's organization's checkpoints.
	Origin string `json:"origin"`
}

// InclusionProof proves an event's place in the tree of a size (RFC 9162 2.1.3).
type InclusionProof struct {
	EventID   string   `json:"event_id"`
	LeafIndex uint64   `json:"leaf_index"`
	TreeSize  uint64   `json:"tree_size"`
	RootHash  []byte   `json:"root_hash"`
	Hashes    [][]byte `json:"hashes"`
}

// ConsistencyProof proves that the tree of size to extends the tree of size from
// (RFC 9162 2.1.4).
type ConsistencyProof struct {
	From     uint64   `json:"from"`
	To       uint64   `json:"to"`
	FromRoot []byte   `json:"from_root"`
	ToRoot   []byte   `json:"to_root"`
	Hashes   [][]byte `json:"hashes"`
}

const mimeNDJSON = "application/x-ndjson"

var auditParams = append([]param{
	{name: "workspace_id", description: "only events of this workspace"},
	{name: "actor_id", description: "only events by this account"},
	{name: "target_id", description: "only events on this target (workspace, key, account, role, access key)"},
	{name: "action", description: `only this action, such as "workspace.api_key_deleted"`},
	{name: "from", description: "only events at or after this time, RFC 3339"},
	{name: "to", description: "only events before this time, RFC 3339"},
}, pageParams...)

func (s *Server) auditRoutes() []route {
	return []route{
		{method: "GET", path: "/v1/audit", id: "listAudit", auth: true, status: 200, response: AuditList{}, query: auditParams, ndjson: true, headers: readHeader,
			summary: "The organization's history, newest first (audit:read); Accept: application/x-ndjson streams every entry the filter selects", handler: s.listAudit},
		{method: "GET", path: "/v1/audit/checkpoint", id: "getAuditCheckpoint", auth: true, status: 200, response: AuditCheckpoint{},
			summary: "The latest signed checkpoint of the organization's history (audit:read)", handler: s.getAuditCheckpoint},
		{method: "POST", path: "/v1/audit/checkpoint", id: "signAuditCheckpoint", auth: true, status: 200, response: AuditCheckpoint{},
			summary: "Sign a checkpoint of the whole history now, unless the latest covers it (audit:read)", handler: s.signAuditCheckpoint},
		{method: "GET", path: "/v1/audit/public-key", id: "getAuditPublicKey", auth: true, status: 200, response: AuditPublicKey{},
			summary: "The keys that verify the checkpoints, in the note verifier format (audit:read)", handler: s.getAuditPublicKey},
		{method: "GET", path: "/v1/audit/proof/inclusion", id: "auditInclusionProof", auth: true, status: 200, response: InclusionProof{},
			query:   []param{{name: "event_id", description: "the event"}, {name: "size", description: "the tree size (default: the latest checkpoint's)", integer: true}},
			summary: "Prove that an event is in the tree of a size (audit:read)", handler: s.auditInclusionProof},
		{method: "GET", path: "/v1/audit/proof/consistency", id: "auditConsistencyProof", auth: true, status: 200, response: ConsistencyProof{},
			query:   []param{{name: "from", description: "the earlier tree size", integer: true}, {name: "to", description: "the later tree size (default: the latest checkpoint's)", integer: true}},
			summary: "Prove that the tree of size to extends the tree of size from (audit:read)", handler: s.auditConsistencyProof},
		{method: "GET", path: "/v1/events", id: "listEvents", auth: true, status: 200, ndjson: true,
			query: []param{{name: "after", description: "the log position to start after (default 0: the beginning)", integer: true},
				{name: "until", description: "the last log position (default: the log's end when asked)", integer: true},
				{name: "follow", description: `"true" keeps the stream open with new events`, enum: []string{"true", "false"}}},
			summary: "The organization's raw CloudEvents in log order as NDJSON, with leaf indices and checkpoints: what `keyledger audit verify` checks (audit:read)",
			handler: s.listEvents},
	}
}

// auditReader checks audit:read.
func auditReader(c echo.Context) (commands.Caller, error) {
	cl := caller(c)
	return cl, cl.Can(commands.PermAuditRead)
}

func auditFilter(c echo.Context) (projections.AuditFilter, error) {
	var verr domain.ValidationError
	f := projections.AuditFilter{WorkspaceID: c.QueryParam("workspace_id"), ActorID: c.QueryParam("actor_id"),
		TargetID: c.QueryParam("target_id"), Action: c.QueryParam("action")}
	timeParam(c, "from", &f.From, &verr)
	timeParam(c, "to", &f.To, &verr)
	for _, v := range []struct{ name, value string }{{"workspace_id", f.WorkspaceID}, {"actor_id", f.ActorID}, {"target_id", f.TargetID}, {"action", f.Action}} {
		if len(v.value) > 128 || !domain.VisibleASCII(v.value) {
			verr.Add(v.name, "invalid_filter", "at most 128 visible ASCII characters")
		}
	}
	return f, verr.Err()
}

func (s *Server) listAudit(c echo.Context) error {
	cl, err := auditReader(c)
	if err != nil {
		return err
	}
	f, err := auditFilter(c)
	if err != nil {
		return err
	}
	if err := s.awaitIn(c, s.d.Audit.WaitFor); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if accepts(c, mimeNDJSON) {
		// The answer starts with the first entry, so that a failure before it is an
		// answer of its own (503).
		var out *ndjsonStream
		err := s.d.Audit.EachEntry(ctx, cl.OrganizationID, f, func(r projections.AuditRow) error {
			if out == nil {
				out = startNDJSON(c)
			}
			return out.line(auditEntry(r))
		})
		if err == nil && out == nil {
			startNDJSON(c)
		}
		return err
	}
	p, err := page(c)
	if err != nil {
		return err
	}
	rows, next, err := s.d.Audit.Entries(ctx, cl.OrganizationID, f, p)
	if err != nil {
		return err
	}
	out := AuditList{Items: make([]AuditEntry, len(rows)), NextCursor: next}
	for i, r := range rows {
		out.Items[i] = auditEntry(r)
	}
	return respond(c, http.StatusOK, out)
}

// ndjsonStream is an NDJSON answer being written: lines are flushed in runs (every
// 1000, and whenever the writer says a run ends).
type ndjsonStream struct {
	streamed
	enc *json.Encoder
	n   int
}

// startNDJSON starts an NDJSON answer.
func startNDJSON(c echo.Context) *ndjsonStream {
	c.Response().Header().Set(echo.HeaderContentType, mimeNDJSON)
	s := &ndjsonStream{streamed: startStream(c), enc: json.NewEncoder(c.Response())}
	_ = s.flush()
	return s
}

func (s *ndjsonStream) line(v any) error {
	if err := s.enc.Encode(v); err != nil {
		return err
	}
	if s.n++; s.n%1000 == 0 {
		return s.flush()
	}
	return nil
}

func (s *ndjsonStream) flush() error {
	s.streamed.flush()
	return nil
}

// notChanges are the payload fields an edit does not change: ids, times and what
// only a creation carries.
var notChanges = map[string]bool{"at": true, "key_id": true, "role_id": true, "workspace_id": true, "organization_id": true,
	"business_type": true, "masked": true, "batch_id": true}

func auditEntry(r projections.AuditRow) AuditEntry {
	e := AuditEntry{EventID: r.EventID, EventType: r.EventType, Action: r.Action, Time: r.At, Position: r.Position, LeafIndex: r.LeafIndex,
		Actor: AuditRef{ID: r.ActorID, Name: r.ActorName}, CredentialID: r.CredentialID, SourceIP: r.SourceIP, RequestID: r.RequestID,
		ClientRequestID: r.ClientRequestID, Target: AuditRef{Kind: r.TargetKind, ID: r.TargetID, Name: r.TargetName}, Data: jsonObject(r.Data)}
	if r.WorkspaceID != "" {
		e.Workspace = &AuditRef{ID: r.WorkspaceID, Name: r.WorkspaceName}
	}
	if r.AccountID != "" && r.AccountID != r.TargetID {
		e.Account = &AuditRef{ID: r.AccountID, Name: r.AccountName}
	}
	if r.Before != nil {
		before := jsonObject(r.Before)
		e.Changes = map[string]AuditChange{}
		for k := range mergeKeys(before, e.Data) {
			b, a := before[k], e.Data[k]
			if !notChanges[k] && !sameJSON(b, a) {
				e.Changes[k] = AuditChange{Before: b, After: a}
			}
		}
	}
	name := func(name, id string) string {
		if name != "" {
			return name
		}
		return id
	}
	target := audit.Label(r.TargetKind, name(r.TargetName, r.TargetID))
	if r.TargetKind == audit.TargetRole && r.AccountID != "" {
		target += " (account " + name(r.AccountName, r.AccountID) + ")"
	}
	e.Summary = audit.Summary(name(r.ActorName, r.ActorID), r.EventType, target, name(r.WorkspaceName, r.WorkspaceID))
	return e
}

func jsonObject(b []byte) map[string]any {
	m := map[string]any{}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	_ = d.Decode(&m)
	return m
}

func mergeKeys(a, b map[string]any) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func (s *Server) auditCheckpoint(orgID string, cp projections.SignedCheckpoint) AuditCheckpoint {
	return AuditCheckpoint{Origin: s.d.Audit.Origin(orgID), Size: cp.Size, RootHash: cp.Root, Note: cp.Note, Position: cp.Position, SignedAt: cp.At}
}

func (s *Server) getAuditCheckpoint(c echo.Context) error {
	cl, err := auditReader(c)
	if err != nil {
		return err
	}
	cp, err := s.d.Audit.Checkpoint(c.Request().Context(), cl.OrganizationID)
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, s.auditCheckpoint(cl.OrganizationID, cp))
}

func (s *Server) signAuditCheckpoint(c echo.Context) error {
	cl, err := auditReader(c)
	if err != nil {
		return err
	}
	if err := noBody(c); err != nil {
		return err
	}
	var cp projections.SignedCheckpoint
	if err := s.bounded(c, func(ctx context.Context) (err error) {
		cp, err = s.d.Audit.SignCheckpoint(ctx, cl.OrganizationID)
		return err
	}); err != nil {
		return err
	}
	written(c, cp.Position, "")
	return respond(c, http.StatusOK, s.auditCheckpoint(cl.OrganizationID, cp))
}

func (s *Server) getAuditPublicKey(c echo.Context) error {
	cl, err := auditReader(c)
	if err != nil {
		return err
	}
	keys := s.d.Audit.PublicKeys()
	if len(keys) == 0 {
		return auditlog.ErrSigningOff
	}
	return respond(c, http.StatusOK, AuditPublicKey{PublicKey: keys[0], PreviousPublicKeys: append([]string{}, keys[1:]...),
		Origin: s.d.Audit.Origin(cl.OrganizationID)})
}

// sizeParam reads an optional tree size or log position.
func sizeParam(c echo.Context, name string) (uint64, error) {
	v := c.QueryParam(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil {
		return 0, invalidField(name, "invalid_integer", "a non-negative integer")
	}
	return n, nil
}

func (s *Server) auditInclusionProof(c echo.Context) error {
	cl, err := auditReader(c)
	if err != nil {
		return err
	}
	id := c.QueryParam("event_id")
	if id == "" || len(id) > 128 || !domain.VisibleASCII(id) {
		return invalidField("event_id", "required", "the id of an event of the organization's history")
	}
	size, err := sizeParam(c, "size")
	if err != nil {
		return err
	}
	p, err := s.d.Audit.Inclusion(c.Request().Context(), cl.OrganizationID, id, size)
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, InclusionProof{EventID: p.EventID, LeafIndex: p.LeafIndex, TreeSize: p.Size, RootHash: p.Root, Hashes: nonNil(p.Hashes)})
}

func (s *Server) auditConsistencyProof(c echo.Context) error {
	cl, err := auditReader(c)
	if err != nil {
		return err
	}
	if c.QueryParam("from") == "" {
		return invalidField("from", "required", "the earlier tree size")
	}
	from, err := sizeParam(c, "from")
	if err != nil {
		return err
	}
	to, err := sizeParam(c, "to")
	if err != nil {
		return err
	}
	p, err := s.d.Audit.Consistency(c.Request().Context(), cl.OrganizationID, from, to)
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, ConsistencyProof{From: p.From, To: p.To, FromRoot: p.FromRoot, ToRoot: p.ToRoot, Hashes: nonNil(p.Hashes)})
}

func (s *Server) listEvents(c echo.Context) error {
	cl, err := auditReader(c)
	if err != nil {
		return err
	}
	r := auditlog.Range{OrganizationID: cl.OrganizationID}
	if r.After, err = sizeParam(c, "after"); err != nil {
		return err
	}
	if r.Until, err = sizeParam(c, "until"); err != nil {
		return err
	}
	switch c.QueryParam("follow") {
	case "", "false":
	case "true":
		r.Follow = true
	default:
		return invalidField("follow", "invalid_boolean", `"true" or "false"`)
	}
	if err := s.bounded(c, func(ctx context.Context) error { return s.d.Audit.Reached(ctx, r.After) }); err != nil {
		return err
	}
	// The answer starts with the first event (or at once when following), so that
	// a failure before it is an answer of its own (503).
	var out *ndjsonStream
	if r.Follow {
		out = startNDJSON(c)
		// The reader is checked again as the stream goes on, as its next request
		// would be: at most once a second, so a busy stream costs one round trip
		// a second. A revocation ends the stream (cleanly: it is an answer); a
		// dependency that cannot tell holds it, for a while, sending nothing.
		secret, _ := bearer(c)
		var checked time.Time
		r.Allowed = func(ctx context.Context) error {
			if time.Since(checked) < time.Second {
				return nil
			}
			for deadline := time.Now().Add(followHold); ; {
				asked := time.Now() // what the check saw is as of when it began
				again, err := s.d.App.Authenticate(ctx, secret, commands.Origin{SourceIP: c.RealIP(), RequestID: requestID(c)})
				if err == nil {
					err = again.Can(commands.PermAuditRead)
				}
				switch {
				case err == nil:
					checked = asked
					return nil
				case !errors.Is(err, fault.ErrUnavailable):
					return errReaderRevoked
				case time.Now().After(deadline):
					return err
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
	}
	r.Flush = func() error {
		if out == nil {
			return nil
		}
		return out.flush()
	}
	err = s.d.Audit.Events(c.Request().Context(), r, func(e audit.Event) error {
		if out == nil {
			out = startNDJSON(c)
		}
		return out.line(e)
	})
	if errors.Is(err, errReaderRevoked) { // the stream's answer ends there
		return out.flush()
	}
	if err == nil && out == nil {
		startNDJSON(c)
	}
	return err
}

// errReaderRevoked ends a followed stream whose reader lost its access key, its
// account or audit:read.
var errReaderRevoked = errors.New("the stream's reader is no longer allowed")

// followHold is how long a followed stream waits, sending nothing, for a
// dependency to tell whether its reader is still allowed, before it ends.
const followHold = 10 * time.Second
