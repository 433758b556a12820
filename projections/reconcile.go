package projections

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyledger/keyledger/domain"
)

// CostDifference is one cell, an hour's or a day's, where the views and the usage
// stream disagree.
type CostDifference struct {
	Grain                                         string // "hour" (costs_hourly) or "day" (costs_daily)
	WorkspaceID, CredentialID, Resource, Currency string
	Period                                        time.Time
	Stream, View                                  string // micro-units, exactly
}

type costCell struct {
	grain, workspace, credential, resource, currency string
	period                                           time.Time
}

// grains are the cost tables Reconcile checks, each with its period column.
var grains = []struct{ name, table, column string }{
	{"hour", "costs_hourly", "hour"},
	{"day", "costs_daily", "day"},
}

// Reconcile recomputes the costs of the calls made in the whole UTC days covering
// [from, to) from the usage stream (each record once, by organization and id, as the
// projector counts) and compares them with the cost views by hour and by day, cell by
// cell. The views are read with the cost projector's checkpoint, in one snapshot,
// and recs yields the stream from its start up to that checkpoint (it is asked
// twice): records that arrive meanwhile are no difference.
func (q Costs) Reconcile(ctx context.Context, from, to time.Time, recs func(upTo uint64, yield func(domain.UsageRecorded) bool) error) ([]CostDifference, error) {
	const day = 24 * time.Hour
	from = from.UTC().Truncate(day)
	if t := to.UTC().Truncate(day); t.Before(to) {
		to = t.Add(day)
	}
	view, checkpoint, err := q.costCells(ctx, from, to)
	if err != nil {
		return nil, err
	}
	inRange := func(u domain.UsageRecorded) bool { return !u.At.Before(from) && u.At.Before(to) }
	// A record counts by its first copy, as the projector counts it, wherever that
	// copy fell: a first pass names the records with a copy in the range (memory
	// for those, not for the whole stream), the second counts their first copies.
	first := map[[2]string]bool{} // a record with a copy in the range → its first copy not seen yet
	err = recs(checkpoint, func(u domain.UsageRecorded) bool {
		if inRange(u) {
			first[[2]string{u.OrganizationID, u.RecordID}] = true
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	stream := map[costCell]*big.Int{}
	err = recs(checkpoint, func(u domain.UsageRecorded) bool {
		one := [2]string{u.OrganizationID, u.RecordID}
		if !first[one] { // no copy in the range, or its first copy seen
			return true
		}
		first[one] = false
		if !inRange(u) {
			return true
		}
		for _, g := range []struct {
			name string
			unit time.Duration
		}{{"hour", time.Hour}, {"day", day}} {
			c := costCell{g.name, u.WorkspaceID, u.CredentialID, u.Resource, u.Currency, u.At.UTC().Truncate(g.unit)}
			if stream[c] == nil {
				stream[c] = new(big.Int)
			}
			stream[c].Add(stream[c], big.NewInt(u.CostMicros))
		}
		return true
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
			diffs = append(diffs, CostDifference{c.grain, c.workspace, c.credential, c.resource, c.currency, c.period, s.String(), v.String()})
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

// costCells reads the cost views' cells in [from, to) and the cost projector's
// checkpoint, in one read-only snapshot: the views as of that position of the
// usage stream.
func (q Costs) costCells(ctx context.Context, from, to time.Time) (map[costCell]*big.Int, uint64, error) {
	view := map[costCell]*big.Int{}
	var checkpoint int64
	err := pgx.BeginTxFunc(ctx, q.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT COALESCE((SELECT position FROM projection_checkpoints WHERE name = $1), 0)`, CostsProjector).Scan(&checkpoint)
		if err != nil {
			return err
		}
		for _, g := range grains {
			rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT workspace_id, credential_id, resource, currency, %[1]s, cost_micros::text
				FROM %[2]s WHERE %[1]s >= $1 AND %[1]s < $2`, g.column, g.table), from, to)
			if err != nil {
				return err
			}
			c := costCell{grain: g.name}
			var sum string
			_, err = pgx.ForEachRow(rows, []any{&c.workspace, &c.credential, &c.resource, &c.currency, &c.period, &sum}, func() error {
				c.period = c.period.UTC()
				v, ok := new(big.Int).SetString(sum, 10)
				if !ok {
					return fmt.Errorf("reconcile: cost %q is not an integer", sum)
				}
				view[c] = v
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return view, uint64(checkpoint), err
}
