package projections

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyledger/keyledger/domain"
)

// CostDifference is one hour's cell where the views and the usage stream disagree.
type CostDifference struct {
	WorkspaceID, CredentialID, Resource, Currency string
	Hour                                          time.Time
	Stream, View                                  string // micro-units, exactly
}

type costCell struct {
	workspace, credential, resource, currency string
	hour                                      time.Time
}

// Reconcile recomputes the costs of the calls made in the whole hours covering
// [from, to) from the usage stream (each record once, by organization and id, as the
// projector counts) and compares them with the cost views, cell by cell. recs yields
// the stream from its start.
func (q Costs) Reconcile(ctx context.Context, from, to time.Time, recs func(yield func(domain.UsageRecorded) bool) error) ([]CostDifference, error) {
	from = from.UTC().Truncate(time.Hour)
	if t := to.UTC().Truncate(time.Hour); t.Before(to) {
		to = t.Add(time.Hour)
	}
	stream := map[costCell]*big.Int{}
	seen := map[[2]string]bool{}
	err := recs(func(u domain.UsageRecorded) bool {
		if u.At.Before(from) || !u.At.Before(to) || seen[[2]string{u.OrganizationID, u.RecordID}] {
			return true
		}
		seen[[2]string{u.OrganizationID, u.RecordID}] = true
		c := costCell{u.WorkspaceID, u.CredentialID, u.Resource, u.Currency, u.At.UTC().Truncate(time.Hour)}
		if stream[c] == nil {
			stream[c] = new(big.Int)
		}
		stream[c].Add(stream[c], big.NewInt(u.CostMicros))
		return true
	})
	if err != nil {
		return nil, err
	}
	rows, err := q.Pool.Query(ctx, `SELECT workspace_id, credential_id, resource, currency, hour, cost_micros::text
		FROM costs_hourly WHERE hour >= $1 AND hour < $2`, from, to)
	if err != nil {
		return nil, err
	}
	view := map[costCell]*big.Int{}
	var c costCell
	var sum string
	_, err = pgx.ForEachRow(rows, []any{&c.workspace, &c.credential, &c.resource, &c.currency, &c.hour, &sum}, func() error {
		c.hour = c.hour.UTC()
		v, ok := new(big.Int).SetString(sum, 10)
		if !ok {
			return fmt.Errorf("reconcile: cost %q is not an integer", sum)
		}
		view[c] = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	var diffs []CostDifference
	add := func(c costCell, s, v *big.Int) {
		if s == nil {
			s = new(big.Int)
		}
		if v == nil {
			v = new(big.Int)
		}
		if s.Cmp(v) != 0 {
			diffs = append(diffs, CostDifference{c.workspace, c.credential, c.resource, c.currency, c.hour, s.String(), v.String()})
		}
	}
	for c, s := range stream {
		add(c, s, view[c])
	}
	for c, v := range view {
		if stream[c] == nil {
			add(c, nil, v)
		}
	}
	return diffs, nil
}
