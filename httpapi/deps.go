package httpapi

import (
	"context"
	"log/slog"
	"time"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/auditlog"
	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
	"github.com/keyledger/keyledger/projections/credindex"
)

// The API declares what it needs of the rest, and nothing more.

// Views is the read side: the queries over the PostgreSQL views, and waiting until
// they include a log position (read-your-writes).
type Views interface {
	WaitFor(ctx context.Context, position uint64) error
	// CaughtUp blocks until the views include the log as it stands now.
	CaughtUp(ctx context.Context) error
	// Position is the last log position this instance committed to the views;
	// LogEnd is where the log ends.
	Position() uint64
	LogEnd(ctx context.Context) (uint64, error)
	Workspace(ctx context.Context, orgID, id string) (projections.WorkspaceRow, error)
	Workspaces(ctx context.Context, orgID string, page projections.Page) ([]projections.WorkspaceRow, string, error)
	WorkspacesOfMember(ctx context.Context, orgID, accountID string, page projections.Page) ([]projections.WorkspaceRow, string, error)
	MemberOf(ctx context.Context, orgID, accountID string, primary bool) ([]string, error)
	DirectMemberOf(ctx context.Context, orgID, accountID string) ([]projections.Membership, error)
	Members(ctx context.Context, orgID, workspaceID string) ([]projections.MemberRow, error)
	MemberCandidates(ctx context.Context, orgID, workspaceID string) ([]projections.CandidateRow, error)
	Account(ctx context.Context, orgID, id string) (projections.AccountRow, error)
	Accounts(ctx context.Context, orgID string, page projections.Page) ([]projections.AccountRow, string, error)
	APIKey(ctx context.Context, orgID, workspaceID, keyID string) (projections.APIKeyRow, error)
	APIKeys(ctx context.Context, orgID, workspaceID string, filter projections.KeyFilter, page projections.Page) ([]projections.APIKeyRow, string, error)
	KeyLastUsed(ctx context.Context, keyID string) (*time.Time, error)
	Role(ctx context.Context, orgID, id string) (projections.RoleRow, error)
	Roles(ctx context.Context, orgID string) ([]projections.RoleRow, error)
	WorkspaceCosts(ctx context.Context, orgID, workspaceID string, q projections.CostQuery) ([]projections.CostRow, error)
	AccountCosts(ctx context.Context, orgID, accountID string, q projections.CostQuery) ([]projections.CostRow, error)
	OrganizationCosts(ctx context.Context, orgID string, q projections.CostQuery) ([]projections.CostRow, error)
}

// AuditTrail is the auditors' side: the audit views, the checkpoints, the proofs and
// the raw log.
type AuditTrail interface {
	// WaitFor blocks until the audit views include a log position; CaughtUp until
	// they include the log as it stands.
	WaitFor(ctx context.Context, position uint64) error
	CaughtUp(ctx context.Context) error
	// LastEntry is the latest entry at or before at that the filter selects;
	// KeyWorkspace the workspace an API key was created in.
	LastEntry(ctx context.Context, orgID string, f projections.EvidenceFilter, at time.Time) (projections.AuditRow, bool, error)
	KeyWorkspace(ctx context.Context, orgID, keyID string) (string, error)
	Entries(ctx context.Context, orgID string, f projections.AuditFilter, page projections.Page) ([]projections.AuditRow, string, error)
	EachEntry(ctx context.Context, orgID string, f projections.AuditFilter, fn func(projections.AuditRow) error) error
	Checkpoint(ctx context.Context, orgID string) (projections.SignedCheckpoint, error)
	SignCheckpoint(ctx context.Context, orgID string) (projections.SignedCheckpoint, error)
	Inclusion(ctx context.Context, orgID, eventID string, size uint64) (auditlog.InclusionProof, error)
	Consistency(ctx context.Context, orgID string, from, to uint64) (auditlog.ConsistencyProof, error)
	// Reached waits until the audit views include a log position (or the log's
	// end, when past it); Events needs them to have reached its After.
	Reached(ctx context.Context, after uint64) error
	Events(ctx context.Context, r auditlog.Range, emit func(audit.Event) error) error
	// RecordCall keeps a refused call or a replayed answer (in the background);
	// ReadCalls reads an organization's, oldest first.
	RecordCall(e domain.Event, meta domain.Metadata)
	ReadCalls(ctx context.Context, orgID string, from time.Time, after uint64, limit int) ([]auditlog.Call, error)
	// Origin is the origin of an organization's checkpoints.
	Origin(orgID string) string
	// PublicKeys are the checkpoints' verifier keys, the current one first.
	PublicKeys() []string
}

// Verifier is the data plane: decisions from memory, and how far it has applied the
// log.
type Verifier interface {
	Verify(v credindex.Verification) credindex.Decision
	Ready() bool
	WaitFor(ctx context.Context, position uint64) error
	// Owe makes the verifier unready until it has applied a position.
	Owe(position uint64)
}

// Cluster lists the live instances and how far each has applied the log.
type Cluster interface {
	Live(ctx context.Context) ([]credindex.Instance, error)
}

// Deps are the application services the API calls.
type Deps struct {
	App   *commands.App
	Views Views
	// Verifier answers /v1/verify and makes revocations wait; Cluster /v1/cluster.
	Verifier Verifier
	Cluster  Cluster
	// Audit answers the auditors.
	Audit AuditTrail
	// Usage takes in the usage records of /v1/usage.
	Usage UsageIntake
	// StreamsDocument is the AsyncAPI document of the streams, served at /asyncapi.json.
	StreamsDocument []byte
	// GatewayToken authenticates gateways on the data plane.
	GatewayToken string
	// Ready checks the dependencies for /readyz: name → check.
	Ready map[string]func(context.Context) error
	// Reported are shown by /readyz beside them but never make the instance unready:
	// the cost views lagging must not take verification away.
	Reported map[string]func(context.Context) error
	Logger   *slog.Logger
}
