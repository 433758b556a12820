package httpapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keyledger/keyledger/auditlog"
	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/fault"
	"github.com/keyledger/keyledger/projections"
)

// Problem is an RFC 9457 problem document with keyledger's stable machine code.
type Problem struct {
	Type   string              `json:"type"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Code   string              `json:"code"`
	Detail string              `json:"detail,omitempty"`
	Fields []domain.FieldError `json:"fields,omitempty"`
	// MissingPermission names what a 403 lacks ("api_key:create").
	MissingPermission string `json:"missing_permission,omitempty"`
	RequestID         string `json:"request_id,omitempty"`
}

// apiError is an error raised by the HTTP layer itself (bad JSON, bad header …).
type apiError struct {
	status int
	code   string
	detail string
	fields []domain.FieldError
}

func (e *apiError) Error() string { return e.code + ": " + e.detail }

func badRequest(code, detail string) error { return &apiError{status: 400, code: code, detail: detail} }

func invalidField(field, code, msg string) error {
	return &apiError{status: 400, code: "invalid_input", detail: "the request has invalid fields",
		fields: []domain.FieldError{{Field: field, Code: code, Message: msg}}}
}

// errPositionNotReached: the views did not reach the requested position in time.
var errPositionNotReached = errors.New("views have not reached the requested position yet")

// errIndexNotReady: the credential index is still catching up with the log, so
// this instance cannot yet tell a valid credential from an unknown one.
var errIndexNotReady = errors.New("this instance is catching up with the log; retry shortly")

// mapping is the one table from error kinds to status and code.
var mapping = []struct {
	err    error
	status int
	code   string
}{
	{commands.ErrUnauthenticated, 401, "unauthenticated"},
	{domain.ErrWorkspaceNotFound, 404, "workspace_not_found"},
	{domain.ErrAPIKeyNotFound, 404, "api_key_not_found"},
	{domain.ErrOrganizationNotFound, 404, "organization_not_found"},
	{domain.ErrAccountNotFound, 404, "account_not_found"},
	{domain.ErrAccessKeyNotFound, 404, "access_key_not_found"},
	{domain.ErrRoleNotFound, 404, "role_not_found"},
	{domain.ErrAccessKeyExists, 409, "access_key_exists"},
	{domain.ErrPrimaryAccount, 409, "primary_account"},
	{domain.ErrRoleNameTaken, 409, "name_taken"},
	{domain.ErrAPIKeyDeleted, 410, "api_key_deleted"},
	{domain.ErrKeyNameTaken, 409, "name_taken"},
	{domain.ErrAccountNameTaken, 409, "name_taken"},
	{domain.ErrWorkspaceExists, 409, "already_exists"},
	{domain.ErrOrganizationExists, 409, "already_exists"},
	{domain.ErrConflict, 409, "concurrent_modification"},
	{domain.ErrVersionMismatch, 412, "precondition_failed"},
	{commands.ErrIdempotencyInProgress, 409, "idempotency_key_in_progress"},
	{commands.ErrIdempotencyKeyReused, 422, "idempotency_key_reused"},
	{commands.ErrIdempotentResultGone, 410, "idempotent_result_gone"},
	{projections.ErrBadCursor, 400, "invalid_cursor"},
	{projections.ErrNoAuditTree, 404, "no_history"},
	{projections.ErrNoCheckpoint, 404, "no_checkpoint"},
	{projections.ErrAuditEventNotFound, 404, "event_not_found"},
	{projections.ErrBeyondTree, 400, "beyond_tree"},
	{auditlog.ErrSigningOff, 501, "audit_signing_off"},
	{errPositionNotReached, 503, "position_not_reached"},
	{errIndexNotReady, 503, "not_ready"},
	{fault.ErrRefusedInput, 400, "invalid_input"},
	{fault.ErrUnavailable, 503, "unavailable"},
}

// problemFor decides the client's answer; internal details never reach the client.
func problemFor(err error) Problem {
	var ae *apiError
	if errors.As(err, &ae) {
		return Problem{Status: ae.status, Code: ae.code, Detail: ae.detail, Fields: ae.fields}
	}
	var fe *domain.ForbiddenError
	if errors.As(err, &fe) {
		code := "forbidden"
		switch {
		case fe.PreviousSecret:
			code = "previous_secret"
		case fe.SelfGrant:
			code = "self_authorization"
		case fe.NotMember:
			code = "not_a_member"
		}
		return Problem{Status: 403, Code: code, Detail: fe.Error(), MissingPermission: fe.Missing.String()}
	}
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		return Problem{Status: 400, Code: "invalid_input", Detail: "the request has invalid fields", Fields: ve.Fields}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return Problem{Status: 413, Code: "body_too_large", Detail: "the request body exceeds the limit"}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code := map[int]string{404: "route_not_found", 405: "method_not_allowed", 413: "body_too_large"}[he.Code]
		if code == "" {
			code = "http_error"
		}
		return Problem{Status: he.Code, Code: code, Detail: http.StatusText(he.Code)}
	}
	for _, m := range mapping {
		if errors.Is(err, m.err) {
			// The sentinel's text, or the name a conflict is about; never the
			// context infrastructure added.
			p := Problem{Status: m.status, Code: m.code, Detail: m.err.Error()}
			var nt *domain.NameTakenError
			if errors.As(err, &nt) {
				p.Detail = nt.Error()
			}
			return p
		}
	}
	return Problem{Status: 500, Code: "internal", Detail: "internal error; see the server log with the request id"}
}

func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		// The status is sent: the answer can only be cut short (the connection
		// closed, no orderly end), so that the client never takes the part it got
		// for the whole answer.
		if c.Request().Context().Err() == nil { // not a client that left
			s.logger.Error("answer cut short", "request_id", requestID(c), "method", c.Request().Method, "path", c.Path(), "err", err)
		}
		panic(http.ErrAbortHandler)
	}
	p := problemFor(err)
	p.Type = "https://keyledger.dev/problems/" + p.Code
	p.Title = http.StatusText(p.Status)
	p.RequestID = requestID(c)
	level := slog.LevelInfo
	if p.Status >= 500 {
		level = slog.LevelError
	}
	// The error text is safe to log: no secret is ever put into an error.
	s.logger.Log(c.Request().Context(), level, "request failed", "request_id", p.RequestID,
		"method", c.Request().Method, "path", c.Path(), "status", p.Status, "code", p.Code, "err", err)
	s.recordRefusal(c, p)
	switch p.Status {
	case 401:
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="keyledger"`)
	case 503:
		c.Response().Header().Set("Retry-After", "1")
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(p.Status)
	_ = jsonEncode(c.Response(), p)
}
