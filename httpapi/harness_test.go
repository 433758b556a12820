package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/eventstore/natstest"
	"github.com/keyledger/keyledger/httpapi"
	"github.com/keyledger/keyledger/internal/syncbuf"
	"github.com/keyledger/keyledger/projections/pgtest"
	"github.com/keyledger/keyledger/service"
	"github.com/keyledger/keyledger/streamspec"
)

// harness is one real keyledger instance on real NATS (in-process) and PostgreSQL
// (a fresh database), called over HTTP as a client would.
type harness struct {
	t     testing.TB
	dbURL string
	nats  *natstest.Server
	svc   *service.Service
	http  *httptest.Server
	logs  *syncbuf.Buffer
	admin commands.Bootstrapped // the primary account of the first organization
	// audit configures the audit checkpoints of the instances started next (signed
	// on demand only, by default).
	audit service.AuditConfig
	// contract finds a request's operation in the served OpenAPI document: every
	// response of every test is validated against it.
	contract routers.Router
}

var (
	masterKey = bytes.Repeat([]byte{1}, 32)
	pepper    = bytes.Repeat([]byte{2}, 32)
)

const gatewayToken = "klg_test-gateway-token"

// auditKey signs the audit checkpoints of every test instance; auditPublicKey
// verifies them.
var auditKey, auditPublicKey = func() (string, string) {
	skey, vkey, err := audit.GenerateKey("keyledger-test")
	if err != nil {
		panic(err)
	}
	return skey, vkey
}()

func start(t testing.TB, cfg ...httpapi.Config) *harness {
	t.Helper()
	ctx := context.Background()
	h := &harness{t: t, nats: natstest.Start(t), logs: &syncbuf.Buffer{}, dbURL: pgtest.NewDatabase(t),
		audit: service.AuditConfig{SigningKey: auditKey, Origin: "keyledger.test", CheckpointEvery: time.Hour}}
	t.Cleanup(h.publishedConforms) // after the instances close: all they published
	c := httpapi.Config{}
	if len(cfg) > 0 {
		c = cfg[0]
	}
	h.svc, h.http = h.instance(c)
	h.contract = h.loadContract(ctx)
	h.admin = h.bootstrap("acme")
	return h
}

// loadContract reads the OpenAPI document the server serves.
func (h *harness) loadContract(ctx context.Context) routers.Router {
	h.t.Helper()
	res, err := http.Get(h.http.URL + "/openapi.json")
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := doc.Validate(ctx); err != nil {
		h.t.Fatalf("invalid OpenAPI document: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: h.http.URL}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		h.t.Fatal(err)
	}
	return router
}

// conforms checks a response against the contract of its route: a documented
// status, its headers and a body of the documented schema.
func (h *harness) conforms(req *http.Request, res *http.Response, raw []byte) {
	h.t.Helper()
	if h.contract == nil || req.Method == http.MethodHead {
		return
	}
	route, params, err := h.contract.FindRoute(req)
	if err != nil { // not a route of the API (a test of unknown paths or methods)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route}
	err = openapi3filter.ValidateResponse(req.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: res.StatusCode, Header: res.Header, Body: io.NopCloser(bytes.NewReader(raw)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
	if err != nil {
		h.t.Errorf("%s %s answered %d against its contract: %v\n%s", req.Method, req.URL.Path, res.StatusCode, err, raw)
	}
}

// foreignSource marks the messages a test publishes as an intruder would, which the
// contract check leaves out.
const foreignSource = "test-intruder"

// publishedConforms checks every message the test's instances published, on every
// stream, against the published contract (docs/events.md, streamspec).
func (h *harness) publishedConforms() {
	h.t.Helper()
	js, err := jetstream.New(h.nats.Connect(h.t))
	if err != nil {
		h.t.Fatal(err)
	}
	for _, name := range []string{eventstore.EventsStream, eventstore.UsageStream, eventstore.AuditStream} {
		h.streamConforms(js, name)
	}
}

// streamConforms checks every message of one stream against the contract.
func (h *harness) streamConforms(js jetstream.JetStream, name string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, name)
	if err != nil {
		h.t.Fatalf("stream %s: %v", name, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	if info.State.Msgs == 0 {
		return
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		h.t.Fatal(err)
	}
	for read := uint64(0); read < info.State.Msgs; {
		batch, err := cons.Fetch(int(min(1000, info.State.Msgs-read)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			h.t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if m.Headers().Get(eventstore.HeaderSource) == foreignSource {
				continue
			}
			if err := streamspec.Conforms(m.Subject(), m.Headers(), m.Data()); err != nil {
				h.t.Errorf("published against the contract: %v\n%s", err, m.Data())
			}
		}
		if n == 0 {
			h.t.Fatalf("%s: read %d of %d messages", name, read, info.State.Msgs)
		}
		read += uint64(n)
	}
}

// instance starts one more keyledger instance on the harness's NATS and database.
func (h *harness) instance(c httpapi.Config, tune ...func(*service.Config)) (*service.Service, *httptest.Server) {
	h.t.Helper()
	return h.instanceOn(h.nats.Connect(h.t), c, tune...)
}

// instanceOn starts an instance on a NATS connection of the test's choice (through a
// natstest.Proxy, say).
func (h *harness) instanceOn(nc *nats.Conn, c httpapi.Config, tune ...func(*service.Config)) (*service.Service, *httptest.Server) {
	h.t.Helper()
	// Heartbeats of 400 ms: the index's lease (three of them, 1.2 s) holds on a
	// machine loaded by -race, and an entry still expires within 2 s.
	cfg := service.Config{
		NATS: nc, DatabaseURL: h.dbURL, WriteTimeout: time.Second, MasterKey: masterKey, Pepper: pepper, GatewayToken: gatewayToken,
		AnnounceEvery: 400 * time.Millisecond, Audit: h.audit, LastUsedEvery: 100 * time.Millisecond, DataKeyGrace: 4 * time.Second,
		HTTP: c, Logger: slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, t := range tune {
		t(&cfg)
	}
	svc, err := service.Start(context.Background(), cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(svc.Close)
	srv := httptest.NewServer(svc.Handler())
	h.t.Cleanup(srv.Close)
	return svc, srv
}

// proxied starts a ready instance whose NATS connection goes through a proxy the
// test controls (to stall or lose what it chooses).
func (h *harness) proxied(c httpapi.Config) (*natstest.Proxy, *service.Service, *httptest.Server) {
	h.t.Helper()
	proxy := h.nats.StartProxy(h.t)
	svc, srv := h.instanceOn(proxy.Connect(h.t), c)
	h.waitReady(svc)
	return proxy, svc, srv
}

// proxiedWriting is proxied with a write timeout of its own: a test whose writes
// wait on a stalled publish before others are answered gives a loaded machine
// the time the others take.
func (h *harness) proxiedWriting(write time.Duration) (*natstest.Proxy, *service.Service, *httptest.Server) {
	h.t.Helper()
	proxy := h.nats.StartProxy(h.t)
	svc, srv := h.instanceOn(proxy.Connect(h.t), httpapi.Config{}, func(c *service.Config) {
		c.WriteTimeout, c.DataKeyGrace = write, 4*write
	})
	h.waitReady(svc)
	return proxy, svc, srv
}

// eventually polls cond until it holds, failing the test after 15 s.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: not after 15 s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReady waits until an instance has caught up with the log and its index is
// ready to decide.
func (h *harness) waitReady(svc *service.Service) {
	h.t.Helper()
	if err := svc.WaitCaughtUp(context.Background(), 10*time.Second); err != nil {
		h.t.Fatal(err)
	}
	// Holding the log is not yet being shown to hold it: the index's lease counts
	// from the end it asked for, and a loaded machine's catch-up can outlast it
	// until the next renewal is reached.
	h.eventually("the index's lease", func() bool { return svc.Index().Caught() == nil })
}

// bootstrap creates an organization and waits until this instance can
// authenticate its primary account.
func (h *harness) bootstrap(name string) commands.Bootstrapped {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := h.svc.Bootstrap(ctx, commands.Bootstrap{OrganizationName: name, PrimaryName: "admin"})
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

type response struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

func (r response) str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

func (r response) items() []map[string]any {
	raw, _ := r.Body["items"].([]any)
	out := make([]map[string]any, len(raw))
	for i, v := range raw {
		out[i], _ = v.(map[string]any)
	}
	return out
}

// call sends a request as the given secret ("" for none). body may be a string
// (sent as is) or a value (JSON-encoded). headers come in pairs.
func (h *harness) call(secret, method, path string, body any, headers ...string) response {
	h.t.Helper()
	return h.on(h.http, secret, method, path, body, headers...)
}

// on is call against another instance of the test.
func (h *harness) on(srv *httptest.Server, secret, method, path string, body any, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	given := map[string]bool{} // a header given twice is sent twice; once, it replaces the defaults above
	for i := 0; i+1 < len(headers); i += 2 {
		if given[headers[i]] {
			req.Header.Add(headers[i], headers[i+1])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
		given[headers[i]] = true
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	h.conforms(req, res, raw)
	r := response{Status: res.StatusCode, Header: res.Header, Raw: raw}
	_ = json.Unmarshal(raw, &r.Body)
	return r
}

// as calls as the first organization's primary account.
func (h *harness) as(method, path string, body any, headers ...string) response {
	h.t.Helper()
	return h.call(h.admin.Secret, method, path, body, headers...)
}

func (h *harness) expect(r response, status int, code string) {
	h.t.Helper()
	if r.Status != status || (code != "" && r.str("code") != code) {
		h.t.Fatalf("got %d %s, want %d %s", r.Status, r.Raw, status, code)
	}
	if status >= 400 && r.Header.Get("Content-Type") != "application/problem+json" {
		h.t.Fatalf("error content type %q", r.Header.Get("Content-Type"))
	}
}

// position is the end of the log now.
func (h *harness) position() uint64 {
	h.t.Helper()
	p, err := h.svc.Store().Position(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) workspace(name string) string {
	h.t.Helper()
	r := h.as("POST", "/v1/workspaces", map[string]any{"name": name})
	h.expect(r, 201, "")
	return r.str("id")
}
