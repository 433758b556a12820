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

// dataPlaneRoutes are the routes of the data plane and the cluster.
func (s *Server) dataPlaneRoutes() []route {
	return []route{
		{method: "POST", path: "/v1/verify", id: "verify", summary: "Data plane: may this credential make this call?", gateway: true,
			request: VerifyRequest{}, status: 200, response: VerifyResponse{}, handler: s.verify},
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
	if err := verr.Err(); err != nil {
		return err
	}
	if !s.d.Verifier.Ready() {
		return errIndexNotReady
	}
	d := s.d.Verifier.Verify(credindex.Verification{Credential: req.Credential, SourceIP: ip, WorkspaceID: req.WorkspaceID, Product: product})
	out := VerifyResponse{Allowed: d.Allowed, Code: string(d.Code)}
	if d.Allowed {
		out.WorkspaceID, out.KeyID, out.AccessKeyID, out.AccountID = d.WorkspaceID, d.KeyID, d.AccessKeyID, d.AccountID
		out.BillingSubject = &BillingSubject{Type: d.BillingKind, ID: d.BillingID}
	}
	if d.Code == credindex.CodeRateLimited {
		out.RetryAfterMS = max(1, d.RetryAfter.Milliseconds())
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.RetryAfter.Seconds()))))
	}
	return respond(c, 200, out)
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
