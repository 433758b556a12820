package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyledger/keyledger/auditlog"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

// The audit stream: every refused management call (401, 403) and every answer
// replayed from an idempotency record, kept apart from the log for a retention.

// AuditCall is a refused call or a replayed answer.
type AuditCall struct {
	EventID string    `json:"event_id"`
	Kind    string    `json:"kind" enum:"refused,replayed"`
	Time    time.Time `json:"time"`
	Method  string    `json:"method"`
	Route   string    `json:"route"`
	Path    string    `json:"path"`
	Status  int       `json:"status"`
	// Code is the refusal's problem code (unauthenticated, forbidden,
	// not_a_member).
	Code string `json:"code,omitempty"`
	// CredentialKind is what the Authorization header held: access_key, api_key,
	// malformed or none; CredentialID the access key once authenticated.
	CredentialKind    string `json:"credential_kind,omitempty"`
	CredentialID      string `json:"credential_id,omitempty"`
	AccountID         string `json:"account_id,omitempty"`
	MissingPermission string `json:"missing_permission,omitempty"`
	IdempotencyKey    string `json:"idempotency_key,omitempty"`
	SourceIP          string `json:"source_ip,omitempty"`
	RequestID         string `json:"request_id"`
	ClientRequestID   string `json:"client_request_id,omitempty"`
	// Cursor resumes after this record (as cursor=): the last page has no
	// next_cursor, and a client follows what comes later from the last record it read.
	Cursor string `json:"cursor"`
}

// AuditCallList is the refused calls and replayed answers, oldest first.
type AuditCallList struct {
	Items []AuditCall `json:"items"`
	// NextCursor asks for the records after these ("" when none so far).
	NextCursor string `json:"next_cursor,omitempty"`
}

func (s *Server) auditCallRoutes() []route {
	return []route{
		{method: "GET", path: "/v1/audit/calls", id: "listAuditCalls", auth: true, status: 200, response: AuditCallList{},
			query: []param{{name: "from", description: "only records at or after this time, RFC 3339 (default: the retention's start)"},
				{name: "limit", description: "at most this many, 1 to 1000 (default 100)", integer: true},
				{name: "cursor", description: "the next_cursor of the page before: the records after it", blank: true}},
			summary: "The organization's refused management calls (401/403) and replayed answers, oldest first (audit:read)", handler: s.listAuditCalls},
	}
}

// credentialKind names what a request's Authorization header held, without a
// byte of it.
func credentialKind(c echo.Context) string {
	secret, ok := bearer(c)
	if !ok {
		return "none"
	}
	cred, err := domain.ParseCredential(secret)
	switch {
	case err != nil:
		return "malformed"
	case cred.Kind() == domain.KindAccessSecret:
		return "access_key"
	}
	return "api_key"
}

// recordRefusal keeps a refused management call in the audit stream.
func (s *Server) recordRefusal(c echo.Context, p Problem) {
	if s.d.Audit == nil || p.Status != http.StatusUnauthorized && p.Status != http.StatusForbidden || !s.management[c.Path()] {
		return
	}
	cl := caller(c)
	path := c.Request().URL.Path
	if len(path) > 256 {
		path = path[:256]
	}
	s.d.Audit.RecordCall(domain.CallRefused{Status: p.Status, Code: p.Code, Method: c.Request().Method, Route: c.Path(), Path: path,
		CredentialKind: credentialKind(c), AccountID: cl.AccountID, MissingPermission: p.MissingPermission, At: time.Now().UTC()},
		domain.Metadata{OrganizationID: cl.OrganizationID, ActorID: cl.AccountID, CredentialID: cl.AccessKeyID, SourceIP: c.RealIP(),
			RequestID: requestID(c), ClientRequestID: c.Response().Header().Get(HeaderClientRequestID)})
}

// recordReplay keeps an answer given again from an idempotency record.
func (s *Server) recordReplay(c echo.Context, status int) {
	if s.d.Audit == nil {
		return
	}
	cl := caller(c)
	s.d.Audit.RecordCall(domain.ResponseReplayed{Method: c.Request().Method, Route: c.Path(), Path: c.Request().URL.Path, Status: status,
		AccountID: cl.AccountID, IdempotencyKey: c.Request().Header.Get(HeaderIdempotency), At: time.Now().UTC()},
		domain.Metadata{OrganizationID: cl.OrganizationID, ActorID: cl.AccountID, CredentialID: cl.AccessKeyID, SourceIP: c.RealIP(),
			RequestID: requestID(c), ClientRequestID: c.Response().Header().Get(HeaderClientRequestID)})
}

func (s *Server) listAuditCalls(c echo.Context) error {
	cl, err := auditReader(c)
	if err != nil {
		return err
	}
	var verr domain.ValidationError
	var from time.Time
	timeParam(c, "from", &from, &verr)
	if from.Before(time.Unix(0, 0)) { // no record is older; a cursor holds from in Unix nanoseconds
		from = time.Time{}
	}
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			verr.Add("limit", "out_of_range", "must be an integer between 1 and 1000")
		}
	}
	if err := verr.Err(); err != nil {
		return err
	}
	var after uint64
	if v := c.QueryParam("cursor"); v != "" {
		var since time.Time
		if after, since, err = parseCallCursor(v); err != nil {
			return projections.ErrBadCursor // as every list answers it
		}
		if from.IsZero() {
			from = since
		}
	}
	calls, err := s.d.Audit.ReadCalls(c.Request().Context(), cl.OrganizationID, from, after, limit)
	if err != nil {
		return err
	}
	out := AuditCallList{Items: make([]AuditCall, len(calls))}
	for i, k := range calls {
		out.Items[i] = auditCall(k, from)
	}
	if len(calls) == limit {
		out.NextCursor = out.Items[len(calls)-1].Cursor
	}
	return respond(c, http.StatusOK, out)
}

// A call's cursor is its place in the audit stream and, when the page selected
// from a time, that time ("<sequence>.<Unix nanoseconds>"): following it keeps
// selecting by from, whether or not the client repeats from.
func callCursor(seq uint64, from time.Time) string {
	c := strconv.FormatUint(seq, 10)
	if !from.IsZero() {
		c += "." + strconv.FormatInt(from.UnixNano(), 10)
	}
	return c
}

func parseCallCursor(v string) (uint64, time.Time, error) {
	seqPart, fromPart, withFrom := strings.Cut(v, ".")
	seq, err := strconv.ParseUint(seqPart, 10, 64)
	if err != nil || seq == 0 {
		return 0, time.Time{}, projections.ErrBadCursor
	}
	if !withFrom {
		return seq, time.Time{}, nil
	}
	nanos, err := strconv.ParseInt(fromPart, 10, 64)
	if err != nil {
		return 0, time.Time{}, projections.ErrBadCursor
	}
	return seq, time.Unix(0, nanos).UTC(), nil
}

func auditCall(k auditlog.Call, from time.Time) AuditCall {
	m := k.Meta
	a := AuditCall{EventID: k.EventID, Time: k.At.UTC(), CredentialID: m.CredentialID, AccountID: m.ActorID, SourceIP: m.SourceIP,
		RequestID: m.RequestID, ClientRequestID: m.ClientRequestID, Cursor: callCursor(k.Sequence, from)}
	switch {
	case k.Refused != nil:
		r := k.Refused
		a.Kind, a.Method, a.Route, a.Path, a.Status, a.Code = "refused", r.Method, r.Route, r.Path, r.Status, r.Code
		a.CredentialKind, a.MissingPermission = r.CredentialKind, r.MissingPermission
	case k.Replayed != nil:
		r := k.Replayed
		a.Kind, a.Method, a.Route, a.Path, a.Status, a.IdempotencyKey = "replayed", r.Method, r.Route, r.Path, r.Status, r.IdempotencyKey
	}
	return a
}
