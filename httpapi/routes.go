package httpapi

import (
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

// route is one entry of the table that both registers handlers and describes them in
// the OpenAPI document, so the two cannot drift apart.
type route struct {
	method, path, id, summary string
	auth                      bool // management: an access key
	gateway                   bool // data plane: the gateway token
	request                   any  // body type, nil when none
	status                    int
	response                  any  // body type, nil for no content
	csv                       bool // also answers text/csv
	ndjson                    bool // also answers application/x-ndjson
	query                     []param
	headers                   []param
	handler                   echo.HandlerFunc
	// bodyLimit is the route's largest request body when Config.BodyLimit is
	// too small for what it takes (0: the configured limit).
	bodyLimit int64
}

// param is a query parameter or a request header of a route.
type param struct {
	name, description string
	integer           bool     // an integer, not a string
	enum              []string // a closed set of values
	list              bool     // comma-separated values of the set
	// blank: given empty, it is as if left out (a cursor: the first page, for the
	// clients that loop with cursor= the last next_cursor); any other is refused.
	blank bool
}

var (
	pageParams = []param{{name: "cursor", description: "opaque cursor from next_cursor", blank: true},
		{name: "limit", description: "page size, 1 to 500 (default 50)", integer: true}}
	readHeader     = []param{{name: HeaderPosition, description: "wait until the views include this log position (read-your-writes)"}}
	idemHeader     = []param{{name: HeaderIdempotency, description: "retry-safe key: the same key and body from the same account have one effect, and a retry gets what the first created"}}
	matchHdr       = []param{{name: "If-Match", description: "the ETag of the version this change is based on; 412 otherwise"}}
	consistencyHdr = []param{{name: HeaderConsistency,
		description: `"all-instances": answer once every live instance has applied the write (bounded; the answer's headers say how many did)`}}
	// revokeHdr are the headers of a write that narrows what a credential may do.
	revokeHdr = slices.Concat(matchHdr, consistencyHdr)
)

func (s *Server) routeTable() []route {
	return slices.Concat(s.opsRoutes(), s.workspaceRoutes(), s.accountRoutes(), s.roleRoutes(), s.apiKeyRoutes(), s.dataPlaneRoutes(), s.usageRoutes(), s.costRoutes(), s.auditRoutes(), s.auditCallRoutes(), s.auditDecisionRoutes())
}

// pathID checks a path id's shape, so garbage is a 404 without a lookup.
func pathID(c echo.Context, name string, valid func(string) bool, notFound error) (string, error) {
	id := c.Param(name)
	if !valid(id) {
		return "", notFound
	}
	return id, nil
}

// timeParam reads an optional RFC 3339 query parameter into into (left as it is
// when absent), naming a bad one in verr.
func timeParam(c echo.Context, name string, into *time.Time, verr *domain.ValidationError) {
	v := c.QueryParam(name)
	if v == "" {
		return
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		verr.Add(name, "invalid_time", "an RFC 3339 time such as 2026-12-01T00:00:00Z")
		return
	}
	*into = t.UTC()
}

func page(c echo.Context) (projections.Page, error) {
	p := projections.Page{Cursor: c.QueryParam("cursor"), Limit: 50}
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return p, invalidField("limit", "out_of_range", "must be an integer between 1 and 500")
		}
		p.Limit = n
	}
	if !projections.ValidCursor(p.Cursor) {
		return p, projections.ErrBadCursor
	}
	return p, nil
}

// reply is a write's answer: the resource, and what its headers say.
type reply struct {
	status   int
	body     any    // nil: no content
	version  uint64 // the log position of the write
	etag     string // the entity tag of the resource answered, if one
	location string // the created resource
	replayed bool   // answers a retry with an Idempotency-Key
	secret   bool   // holds a plaintext: no cache may keep it
	revoking bool   // narrows what a credential may do: wait until applied
}

// write is the run every write shares: decode the body into a Req (none when Req is
// struct{}), run the command, and answer with the resource and its headers.
func write[Req any](s *Server, c echo.Context, run func(req Req) (reply, error)) error {
	var req Req
	if _, none := any(req).(struct{}); none {
		if err := noBody(c); err != nil {
			return err
		}
	} else if err := decode(c, &req); err != nil {
		return err
	}
	r, err := run(req)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	written(c, r.version, r.etag)
	replayed(c, r.replayed)
	if r.replayed {
		s.recordReplay(c, r.status)
	}
	if r.location != "" {
		h.Set("Location", r.location)
	}
	if r.secret {
		h.Set("Cache-Control", "no-store")
	}
	if r.revoking {
		s.revoked(c, r.version)
	}
	if r.body == nil {
		return c.NoContent(r.status)
	}
	return respond(c, r.status, r.body)
}
