// Package usage takes in the usage records gateways report: each is checked,
// attributed as the log stood at the call's time (whom it bills), and appended to the
// usage stream, once.
package usage

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/fault"
	"github.com/keyledger/keyledger/projections/credindex"
)

// MaxBatch is the most records one request carries.
const MaxBatch = 1000

// Attributor says whom a call was billed to at its time (the credential index).
type Attributor interface {
	AttributeAt(credentialID, workspaceID string, product domain.BusinessType, at time.Time) (credindex.Attribution, string)
}

// Current waits until the attributor holds the log as it stands now (bounded; an
// error when it cannot): a credential it does not know may be one it has not
// applied yet.
type Current func(ctx context.Context) error

// Publisher appends attributed records to the usage stream.
type Publisher interface {
	PublishUsage(ctx context.Context, recs []domain.UsageRecorded) ([]eventstore.UsageOutcome, error)
}

// Config of the intake.
type Config struct {
	// MaxAge is how old a call may be when reported (default 35 days).
	MaxAge time.Duration
	// Clock is the server's time (default time.Now).
	Clock func() time.Time
}

// Validate joins every problem.
func (c Config) Validate() error {
	if c.MaxAge < 0 {
		return errors.New("usage: the maximum age must not be negative")
	}
	return nil
}

// Intake takes in usage records. Safe for concurrent use.
type Intake struct {
	cfg       Config
	attribute Attributor
	current   Current
	publish   Publisher
}

// New returns an intake.
func New(cfg Config, a Attributor, current Current, p Publisher) *Intake {
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 35 * 24 * time.Hour
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Intake{cfg: cfg, attribute: a, current: current, publish: p}
}

// Status of one record.
const (
	Accepted  = "accepted"
	Duplicate = "duplicate"
	Rejected  = "rejected"
)

// Result is what became of one record: accepted, duplicate (already in the stream),
// or rejected with a code (and the fields at fault, for invalid input). A record
// rejected with code "unavailable" was not stored and may be sent again.
type Result struct {
	RecordID string
	Status   string
	Code     string
	Fields   []domain.FieldError
}

// Take checks, attributes and appends a batch of records, and answers one result
// per record, in order. It fails (fault.ErrUnavailable) when the attributor cannot
// be brought up to the log, and when no record could be stored because the
// stream is unavailable.
func (in *Intake) Take(ctx context.Context, recs []domain.UsageRecord) ([]Result, error) {
	// Every record is attributed on the log as it stood when the request came: a
	// credential revoked on another instance a moment ago is not billed for a
	// later call, one created there is not refused.
	if err := in.current(ctx); err != nil {
		return nil, fault.Unavailable(err)
	}
	now := in.cfg.Clock()
	out := make([]Result, len(recs))
	var ready []domain.UsageRecorded
	var at []int                 // index in recs of each ready record
	first := map[[2]string]int{} // organization, record id → the index of its first copy
	var repeats [][2]int         // a repeat's index and its first copy's
	for i, r := range recs {
		out[i].RecordID = r.RecordID
		if err := domain.CheckUsage("records["+strconv.Itoa(i)+"]", r, now, in.cfg.MaxAge); err != nil {
			var verr *domain.ValidationError
			errors.As(err, &verr)
			out[i].Status, out[i].Code, out[i].Fields = Rejected, "invalid_input", verr.Fields
			continue
		}
		a, reason := in.attribute.AttributeAt(r.CredentialID, r.WorkspaceID, r.Product, r.At)
		if reason != "" {
			out[i].Status, out[i].Code = Rejected, reason
			continue
		}
		one := [2]string{a.OrganizationID, r.RecordID}
		if f, ok := first[one]; ok { // the same record twice in one batch: as its first copy fares
			repeats = append(repeats, [2]int{i, f})
			continue
		}
		first[one] = i
		if r.Units == nil { // the stream's contract: units is always an object
			r.Units = map[string]int64{}
		}
		ready = append(ready, domain.UsageRecorded{
			RecordID: r.RecordID, OrganizationID: a.OrganizationID, WorkspaceID: r.WorkspaceID, CredentialID: r.CredentialID,
			Product: r.Product, Resource: r.Resource, Units: r.Units, CostMicros: *r.CostMicros, Currency: r.Currency,
			At: r.At.UTC(), BillingKind: a.BillingKind, BillingID: a.BillingID, AccountID: a.AccountID,
		})
		at = append(at, i)
	}
	if len(ready) == 0 {
		return out, nil
	}
	outcomes, err := in.publish.PublishUsage(ctx, ready)
	if err != nil {
		return nil, err
	}
	stored := 0
	for j, o := range outcomes {
		i := at[j]
		switch {
		case o.Err != nil:
			out[i].Status, out[i].Code = Rejected, "unavailable"
		case o.Duplicate:
			out[i].Status = Duplicate
			stored++
		default:
			out[i].Status = Accepted
			stored++
		}
	}
	if stored == 0 {
		return nil, fault.Unavailable(errors.New("usage: the stream stored none of the records"))
	}
	for _, rep := range repeats {
		i, f := rep[0], rep[1]
		out[i].Status, out[i].Code = out[f].Status, out[f].Code
		if out[i].Status == Accepted { // stored once, by its first copy
			out[i].Status = Duplicate
		}
	}
	return out, nil
}
