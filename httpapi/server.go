// Package httpapi is keyledger's HTTP API on Echo: authentication, routes, one error
// mapping to RFC 9457 problems, and the OpenAPI document built from the same route
// table that registers the handlers.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
)

// Header names of the contract (DESIGN §6).
const (
	HeaderPosition    = "X-Keyledger-Position"
	HeaderIdempotency = "Idempotency-Key"
	HeaderRequestID   = "X-Request-Id"
	// HeaderClientRequestID echoes the X-Request-Id a client sent.
	HeaderClientRequestID = "X-Client-Request-Id"
	// HeaderConsistency asks a revoking write to wait until every live instance has
	// applied it ("all-instances"); the answer says whether they all did
	// ("all-instances") or not in time ("partial"), and HeaderApplied how many.
	HeaderConsistency = "X-Keyledger-Consistency"
	HeaderApplied     = "X-Keyledger-Applied-Instances"
)

// Config of the HTTP API.
type Config struct {
	// BodyLimit is the largest request body in bytes (default 1 MiB); larger is 413.
	BodyLimit int64
	// PositionWait bounds how long a read waits for X-Keyledger-Position (default 5s).
	PositionWait time.Duration
	// MaxProjectionLag is the lag (events) above which /readyz fails (default 10000).
	MaxProjectionLag uint64
	// Timeouts of the HTTP server.
	Timeouts Timeouts
	// ConsistencyWait bounds how long a revoking write sent with
	// X-Keyledger-Consistency: all-instances waits for the other instances
	// (default 1s); after it the write still succeeds and says how many applied it.
	ConsistencyWait time.Duration
	// AuthFailureFloor is the least time a refused credential takes to answer
	// (default 5ms): a malformed, unknown, disabled or deleted credential costs
	// different work, and the answer must not tell which.
	AuthFailureFloor time.Duration
}

// Server is the HTTP API. Safe for concurrent use.
type Server struct {
	cfg     Config
	d       Deps
	echo    *echo.Echo
	logger  *slog.Logger
	routes  []route
	metrics *metrics
	// management are the route patterns of management calls (an access key),
	// whose refusals the audit stream keeps.
	management map[string]bool
}

// Validate joins every problem.
func (c Config) Validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{"position wait": c.PositionWait, "consistency wait": c.ConsistencyWait,
		"auth failure floor": c.AuthFailureFloor, "read header timeout": c.Timeouts.ReadHeader, "read timeout": c.Timeouts.Read,
		"write timeout": c.Timeouts.Write, "idle timeout": c.Timeouts.Idle} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("http: the %s must not be negative", name))
		}
	}
	if c.BodyLimit < 0 {
		errs = append(errs, errors.New("http: the body limit must not be negative"))
	}
	return errors.Join(errs...)
}

// New builds the server and registers every route.
func New(cfg Config, d Deps) *Server {
	if cfg.BodyLimit == 0 {
		cfg.BodyLimit = 1 << 20
	}
	if cfg.PositionWait == 0 {
		cfg.PositionWait = 5 * time.Second
	}
	if cfg.MaxProjectionLag == 0 {
		cfg.MaxProjectionLag = 10000
	}
	if cfg.ConsistencyWait == 0 {
		cfg.ConsistencyWait = time.Second
	}
	if cfg.AuthFailureFloor == 0 {
		cfg.AuthFailureFloor = 5 * time.Millisecond
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	s := &Server{cfg: cfg, d: d, echo: e, logger: d.Logger, metrics: newMetrics(d)}
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = echo.ExtractIPDirect()
	e.Use(s.requestContext, s.metrics.observe)
	s.routes = s.routeTable()
	s.management = map[string]bool{}
	for _, r := range s.routes {
		h := limitBody(max(r.bodyLimit, cfg.BodyLimit), knownQuery(r.query, r.handler)) // after the authentication: 401 first
		switch {
		case r.auth:
			s.management[r.path] = true
			h = s.authenticate(h)
		case r.gateway:
			h = s.authenticateGateway(h)
		}
		e.Add(r.method, r.path, h)
		if r.method == http.MethodGet { // HEAD works where GET does; net/http drops the body
			e.Add(http.MethodHead, r.path, h)
		}
	}
	return s
}

// Handler is the http.Handler of the API.
func (s *Server) Handler() http.Handler { return s.echo }

type ctxKey int

const callerKey ctxKey = iota

// requestContext assigns the request id (always the server's own ULID; a client's
// printable X-Request-Id is kept beside it), refuses a query string that does not
// parse, and caps the body size.
func (s *Server) requestContext(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set(HeaderRequestID, ulid.Make().String())
		if id := c.Request().Header.Get(HeaderRequestID); id != "" && len(id) <= 128 && printableASCII(id) {
			h.Set(HeaderClientRequestID, id)
		}
		if v := c.Request().Header.Get(HeaderConsistency); v != "" && !strings.EqualFold(v, "all-instances") {
			return badRequest("invalid_consistency", HeaderConsistency+` takes "all-instances"`)
		}
		if _, err := url.ParseQuery(c.Request().URL.RawQuery); err != nil {
			return badRequest("malformed_query", "the query string does not parse: separate parameters with &, percent-encode the rest")
		}
		return next(c)
	}
}

// limitBody bounds a route's request body (larger is 413).
func limitBody(limit int64, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Request().Body = http.MaxBytesReader(c.Response(), c.Request().Body, limit)
		return next(c)
	}
}

// knownQuery refuses a query parameter the route does not take, one given twice,
// or one given empty: a misspelt filter, or one a client built without its value,
// would otherwise widen the answer silently.
func knownQuery(params []param, next echo.HandlerFunc) echo.HandlerFunc {
	known := map[string]param{}
	for _, p := range params {
		known[p.name] = p
	}
	return func(c echo.Context) error {
		if c.Request().URL.RawQuery == "" { // the data plane's calls: nothing to parse
			return next(c)
		}
		for name, values := range c.QueryParams() {
			p, ok := known[name]
			switch {
			case !ok:
				return invalidField(name, "unknown_parameter", "not a parameter of this route")
			case len(values) > 1:
				return invalidField(name, "repeated", "give it once")
			case values[0] == "" && !p.blank:
				return invalidField(name, "empty", "give it a value, or leave it out")
			}
		}
		return next(c)
	}
}

// printableASCII reports whether s holds only visible ASCII and spaces.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// requestID is the server's id of the request, answered in X-Request-Id (kept in
// the response header only: no per-request map on the hot path).
func requestID(c echo.Context) string { return c.Response().Header().Get(HeaderRequestID) }

// bearer returns the credential of an Authorization header; the scheme is
// case-insensitive (RFC 9110 §11.1).
func bearer(c echo.Context) (string, bool) {
	scheme, token, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// authenticate resolves the bearer access key secret to the calling account. Every
// failure gets the same 401, no sooner than AuthFailureFloor after the request
// arrived, whatever the reason.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if s.d.Verifier != nil && !s.d.Verifier.Ready() { // replaying, or owing a revocation: 503 at once, no wait on each miss
			return errIndexNotReady
		}
		secret, ok := bearer(c)
		caller, err := commands.Caller{}, commands.ErrUnauthenticated
		if ok {
			caller, err = s.d.App.Authenticate(c.Request().Context(), secret, commands.Origin{
				SourceIP: c.RealIP(), RequestID: requestID(c), ClientRequestID: c.Response().Header().Get(HeaderClientRequestID)})
		}
		if errors.Is(err, commands.ErrUnauthenticated) {
			s.sleepUntil(c.Request().Context(), start.Add(s.cfg.AuthFailureFloor))
		}
		if err != nil {
			return err
		}
		c.Set("caller", caller)
		return next(c)
	}
}

// sleepUntil waits until t or until the request ends.
func (s *Server) sleepUntil(ctx context.Context, t time.Time) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

func caller(c echo.Context) commands.Caller {
	cl, _ := c.Get("caller").(commands.Caller)
	return cl
}

// idempotency reads the Idempotency-Key and fingerprints the request. A header sent
// empty, or twice, is refused, not read as no key (a retry would write again).
func idempotency(c echo.Context, body any) (commands.Idempotency, error) {
	values := c.Request().Header.Values(HeaderIdempotency)
	if len(values) == 0 {
		return commands.Idempotency{}, nil
	}
	key := values[0]
	if len(values) > 1 || key == "" || len(key) > 255 || !domain.VisibleASCII(key) {
		return commands.Idempotency{}, badRequest("invalid_idempotency_key", "Idempotency-Key is 1 to 255 visible ASCII characters, sent once")
	}
	b, _ := json.Marshal(body)
	return commands.Idempotency{Key: key, Fingerprint: fingerprint(c.Request().Method, c.Request().URL.Path, b)}, nil
}

// ifMatch is the If-Match header, checked against the resource's own entity tag by
// the command. A header sent without any tag (a client whose stored ETag was
// empty) is a precondition that no version meets, not the absence of one.
func ifMatch(c echo.Context) commands.IfMatch {
	values := c.Request().Header.Values("If-Match")
	m := strings.Join(values, ",")
	if len(values) > 0 && strings.Trim(m, ", \t") == "" {
		return commands.IfMatch(`""`) // the empty tag: no resource's
	}
	return commands.IfMatch(m)
}

// written sets the headers of a write response: its log position and the entity
// tag of the resource it answers ("" when it answers none).
func written(c echo.Context, version uint64, etag string) {
	h := c.Response().Header()
	h.Set(HeaderPosition, strconv.FormatUint(version, 10))
	if etag != "" {
		h.Set("ETag", etag)
	}
}

// HeaderReplayed marks the answer to a retry with an Idempotency-Key: the first
// request's response, nothing written again.
const HeaderReplayed = "Idempotent-Replayed"

func replayed(c echo.Context, yes bool) {
	if yes {
		c.Response().Header().Set(HeaderReplayed, "true")
	}
}

// revoked makes a write that narrows what a credential may do wait until this
// instance's credential index has applied it, so that from the answer on this
// instance refuses what the write forbids (an index that has not applied it within
// PositionWait makes the instance unready until it has). Other instances follow within
// milliseconds; /v1/cluster/applied tells when all have, and a client that sent
// X-Keyledger-Consistency: all-instances gets its answer only once every live
// instance has applied the write, or ConsistencyWait has passed (the write stands
// either way; the headers say which).
func (s *Server) revoked(c echo.Context, version uint64) {
	if s.d.Verifier == nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.PositionWait)
	defer cancel()
	if err := s.d.Verifier.WaitFor(ctx, version); err != nil {
		// The write stands; this instance decides nothing until its index has it.
		s.d.Verifier.Owe(version)
		s.logger.Error("credential index did not apply a revocation in time: not ready until it does", "position", version, "err", err)
	}
	if c.Request().Header.Get(HeaderConsistency) == "" || s.d.Cluster == nil {
		return
	}
	applied, live := s.waitAllInstances(c.Request().Context(), version)
	h := c.Response().Header()
	h.Set(HeaderApplied, strconv.Itoa(applied)+"/"+strconv.Itoa(live))
	if live > 0 && applied == live {
		h.Set(HeaderConsistency, "all-instances")
	} else {
		h.Set(HeaderConsistency, "partial")
	}
}

// waitAllInstances polls the live instances until all have applied version, or
// ConsistencyWait passes; it says how many had.
func (s *Server) waitAllInstances(ctx context.Context, version uint64) (applied, live int) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConsistencyWait)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		instances, err := s.d.Cluster.Live(ctx)
		if err == nil {
			applied, live = 0, len(instances)
			for _, i := range instances {
				if i.Position >= version {
					applied++
				}
			}
			if live > 0 && applied == live {
				return applied, live
			}
		}
		select {
		case <-ctx.Done():
			return applied, live
		case <-tick.C:
		}
	}
}

// awaitPosition makes a read wait until the views include X-Keyledger-Position.
func (s *Server) awaitPosition(c echo.Context) error { return s.awaitIn(c, s.d.Views.WaitFor) }

// awaitIn makes a read wait until the views of waitFor include X-Keyledger-Position.
func (s *Server) awaitIn(c echo.Context, waitFor func(context.Context, uint64) error) error {
	h := c.Request().Header.Get(HeaderPosition)
	if h == "" {
		return nil
	}
	pos, err := strconv.ParseUint(h, 10, 64)
	if err != nil {
		return badRequest("invalid_position", HeaderPosition+" must be a log position returned by a write")
	}
	err = s.bounded(c, func(ctx context.Context) error { return waitFor(ctx, pos) })
	if errors.Is(err, errPositionNotReached) {
		// A position the log has not reached is the client's mistake (another
		// deployment's, or made up), not a wait to try again.
		if end, lerr := s.d.Views.LogEnd(c.Request().Context()); lerr == nil && pos > end {
			return badRequest("invalid_position", HeaderPosition+" is past the log's end: give a position a write to this deployment returned")
		}
	}
	return err
}

// bounded waits for the views within PositionWait: longer is errPositionNotReached.
func (s *Server) bounded(c echo.Context, wait func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.PositionWait)
	defer cancel()
	err := wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return errPositionNotReached
	}
	return err
}

func jsonEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// respond writes a JSON body with a status.
func respond(c echo.Context, status int, v any) error {
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	c.Response().WriteHeader(status)
	return jsonEncode(c.Response(), v)
}

// streamed is a 200 answer written in runs (an export, a followed stream): each
// flush sends what is written and gives the next run a minute of its own, whatever
// the server's write timeout, so that a long answer lasts as long as it flows. A
// failure after the start cuts the answer short (handleError).
type streamed struct {
	w  *echo.Response
	rc *http.ResponseController
}

// startStream sends the status (with the headers set so far) and starts the first
// run's minute.
func startStream(c echo.Context) streamed {
	s := streamed{w: c.Response(), rc: http.NewResponseController(c.Response().Writer)}
	_ = s.rc.SetWriteDeadline(time.Now().Add(time.Minute))
	s.w.WriteHeader(http.StatusOK)
	return s
}

// flush sends the run written (within a minute from now: a followed stream may have
// been quiet for longer) and starts the next one's minute.
func (s streamed) flush() {
	_ = s.rc.SetWriteDeadline(time.Now().Add(time.Minute))
	s.w.Flush()
	_ = s.rc.SetWriteDeadline(time.Now().Add(time.Minute))
}

// Timeouts of the HTTP server; zero fields take the defaults.
type Timeouts struct {
	// ReadHeader bounds reading a request's headers (default 10s).
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included (default 30s).
	Read time.Duration
	// Write bounds writing a response from the end of the request headers (default 60s).
	Write time.Duration
	// Idle closes a keep-alive connection without a request for this long (default 60s).
	Idle time.Duration
}

// NewHTTPServer is the net/http server of the API: no connection is held forever
// by a slow or silent client.
func NewHTTPServer(h http.Handler, t Timeouts) *http.Server {
	def := func(d, v time.Duration) time.Duration {
		if d == 0 {
			return v
		}
		return d
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: def(t.ReadHeader, 10*time.Second), ReadTimeout: def(t.Read, 30*time.Second),
		WriteTimeout: def(t.Write, 60*time.Second), IdleTimeout: def(t.Idle, 60*time.Second)}
}

// Serve runs the API on a listener until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := NewHTTPServer(s.echo, s.cfg.Timeouts)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return err
		}
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
