package httpapi

import (
	"context"
	"crypto/subtle"
	"math"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections/credindex"
)

// VerifyRequest is what a gateway asks about one platform call.
type VerifyRequest struct {
	Credential  string `json:"credential"`
	SourceIP    string `json:"source_ip"`
	WorkspaceID string `json:"workspace_id"`
	Product     string `json:"product" enum:"maas,search"`
}

// BillingSubject says who a call is charged to.
type BillingSubject struct {
	Type string `json:"type" enum:"workspace,account"`
	ID   string `json:"id"`
}

// VerifyResponse is the decision; identifiers are present when allowed.
type VerifyResponse struct {
	Allowed        bool            `json:"allowed"`
	Code           string          `json:"code" enum:"VALID,MALFORMED,NOT_FOUND,DELETED,DISABLED,IP_NOT_ALLOWED,WORKSPACE_MISMATCH,PRODUCT_MISMATCH,RATE_LIMITED,NOT_AUTHORIZED_ON_WORKSPACE"`
	WorkspaceID    string          `json:"workspace_id,omitempty"`
	KeyID          string          `json:"key_id,omitempty"`
	AccessKeyID    string          `json:"access_key_id,omitempty"`
	AccountID      string          `json:"account_id,omitempty"`
	BillingSubject *BillingSubject `json:"billing_subject,omitempty"`
	RetryAfterMS   int64           `json:"retry_after_ms,omitempty"`
}

// MaxVerifyBatch is the most decisions one POST /v1/verify/batch asks for.
const MaxVerifyBatch = 100

// VerifyBatchRequest asks about several calls at once.
type VerifyBatchRequest struct {
	Items []VerifyRequest `json:"items"`
}

// VerifyBatchResponse answers each call in order, as POST /v1/verify would.
type VerifyBatchResponse struct {
	Items []VerifyResponse `json:"items"`
}

// dataPlaneRoutes are the routes of the data plane and the cluster.
func (s *Server) dataPlaneRoutes() []route {
	return []route{
		{method: "POST", path: "/v1/verify", id: "verify", summary: "Data plane: may this credential make this call?", gateway: true,
			request: VerifyRequest{}, status: 200, response: VerifyResponse{}, handler: s.verify},
		{method: "POST", path: "/v1/verify/batch", id: "verifyBatch", summary: "Data plane: up to 100 decisions at once, each as /v1/verify answers it", gateway: true,
			request: VerifyBatchRequest{}, status: 200, response: VerifyBatchResponse{}, handler: s.verifyBatch},
		{method: "GET", path: "/v1/cluster", id: "cluster", summary: "Operators: live instances and the log position each has applied", gateway: true,
			status: 200, response: ClusterResponse{}, handler: s.cluster},
		{method: "GET", path: "/v1/cluster/applied", id: "clusterApplied", summary: "Has every live instance applied a log position, and when did the last one", auth: true,
			status: 200, response: AppliedResponse{}, query: []param{{name: "position", description: "a position returned by a write (X-Keyledger-Position)", integer: true}}, handler: s.clusterApplied},
	}
}

// authenticateGateway checks the data plane's service token in constant time.
func (s *Server) authenticateGateway(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token, ok := bearer(c)
		if !ok || s.d.GatewayToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.d.GatewayToken)) != 1 {
			return commands.ErrUnauthenticated
		}
		return next(c)
	}
}

func (s *Server) verify(c echo.Context) error {
	var req VerifyRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	v, err := verification(req)
	if err != nil {
		return err
	}
	if !s.d.Verifier.Ready() {
		return errIndexNotReady
	}
	out, retryAfter := s.decide(v)
	if out.Code == string(credindex.CodeRateLimited) {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	}
	return respond(c, 200, out)
}

// verifyBatch decides up to MaxVerifyBatch calls in order, each as verify would (a
// rate-limited call says when in its retry_after_ms). Input is checked as a whole
// first: one malformed item is a 400 naming it, and nothing is decided.
func (s *Server) verifyBatch(c echo.Context) error {
	var req VerifyBatchRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if len(req.Items) == 0 || len(req.Items) > MaxVerifyBatch {
		return invalidField("items", "out_of_range", "from 1 to "+strconv.Itoa(MaxVerifyBatch)+" calls")
	}
	var verr domain.ValidationError
	vs := make([]credindex.Verification, len(req.Items))
	for i, item := range req.Items {
		v, err := verification(item)
		if err != nil {
			verr.Merge("items["+strconv.Itoa(i)+"]", err)
		}
		vs[i] = v
	}
	if err := verr.Err(); err != nil {
		return err
	}
	if !s.d.Verifier.Ready() {
		return errIndexNotReady
	}
	out := VerifyBatchResponse{Items: make([]VerifyResponse, len(vs))}
	for i, v := range vs {
		out.Items[i], _ = s.decide(v)
	}
	return respond(c, 200, out)
}

// verification checks what a gateway asks about one call.
func verification(req VerifyRequest) (credindex.Verification, error) {
	var verr domain.ValidationError
	ip, err := domain.ParseSourceIP(req.SourceIP)
	verr.Merge("", err)
	product, err := domain.ParseBusinessType(req.Product)
	if err != nil {
		verr.Add("product", "invalid_product", `must be "maas" or "search"`)
	}
	if req.WorkspaceID == "" {
		verr.Add("workspace_id", "required", "the workspace the call targets")
	}
	return credindex.Verification{Credential: req.Credential, SourceIP: ip, WorkspaceID: req.WorkspaceID, Product: product}, verr.Err()
}

// decide asks the index and shapes its decision; retryAfter is set when the call
// was rate limited.
func (s *Server) decide(v credindex.Verification) (out VerifyResponse, retryAfter time.Duration) {
	d := s.d.Verifier.Verify(v)
	out = VerifyResponse{Allowed: d.Allowed, Code: string(d.Code)}
	if d.Allowed {
		out.WorkspaceID, out.KeyID, out.AccessKeyID, out.AccountID = d.WorkspaceID, d.KeyID, d.AccessKeyID, d.AccountID
		out.BillingSubject = &BillingSubject{Type: d.BillingKind, ID: d.BillingID}
	}
	if d.Code == credindex.CodeRateLimited {
		out.RetryAfterMS, retryAfter = max(1, d.RetryAfter.Milliseconds()), d.RetryAfter
	}
	return out, retryAfter
}

// ClusterResponse lists the live instances.
type ClusterResponse struct {
	Instances []Instance `json:"instances"`
}

// Instance is one live instance and how far it has applied the log.
type Instance struct {
	ID              string    `json:"id"`
	StartedAt       time.Time `json:"started_at"`
	AppliedPosition uint64    `json:"applied_position"`
	AppliedAt       time.Time `json:"applied_at"`
	Ready           bool      `json:"ready"`
}

// AppliedResponse says whether every live instance has applied a position.
type AppliedResponse struct {
	Position  uint64     `json:"position"`
	Applied   bool       `json:"applied"`
	AppliedAt *time.Time `json:"applied_at"` // when the last instance applied it
}

func (s *Server) cluster(c echo.Context) error {
	live, err := s.d.Cluster.Live(c.Request().Context())
	if err != nil {
		return err
	}
	out := ClusterResponse{Instances: make([]Instance, len(live))}
	for i, in := range live {
		out.Instances[i] = Instance{ID: in.ID, StartedAt: in.StartedAt.UTC(), AppliedPosition: in.Position, AppliedAt: in.AppliedAt.UTC(), Ready: in.Ready}
	}
	return respond(c, 200, out)
}

func (s *Server) clusterApplied(c echo.Context) error {
	pos, err := strconv.ParseUint(c.QueryParam("position"), 10, 64)
	if err != nil || pos == 0 {
		return invalidField("position", "invalid_position", "a log position returned by a write")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	live, err := s.d.Cluster.Live(ctx)
	if err != nil {
		return err
	}
	// Tenants learn whether and when, not which instances nor where they are.
	out := AppliedResponse{Position: pos, Applied: len(live) > 0}
	var last time.Time
	for _, i := range live {
		at, ok := i.ReachedAt(pos)
		if ok && at.After(last) {
			last = at
		}
		out.Applied = out.Applied && ok
	}
	if out.Applied && !last.IsZero() {
		out.AppliedAt = &last
	}
	return respond(c, 200, out)
}
