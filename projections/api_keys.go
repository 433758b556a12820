package projections

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/fault"
)

var apiKeyColumns = []string{"id", "workspace_id", "business_type", "name", "allowlist", "note", "qps_limit",
	"masked_secret", "batch_id", "created_at", "updated_at", "version", "created_by", "updated_by"}

func applyAPIKeys(b *Batch, r eventstore.Record) {
	switch e := r.Event.(type) {
	case domain.APIKeyCreated:
		b.Insert("api_keys", apiKeyColumns, e.KeyID, r.Aggregate, string(e.BusinessType), nullable(e.Name),
			nonNil(e.Allowlist), e.Note, qpsColumn(e.QPSLimit), e.Masked, nullable(e.BatchID), e.At, e.At, int64(r.Sequence), r.Metadata.ActorID, r.Metadata.ActorID)
	case domain.APIKeyUpdated:
		b.Exec(`UPDATE api_keys SET name = $2, allowlist = $3, note = $4, qps_limit = $5, updated_at = $6, version = $7, updated_by = $8 WHERE id = $1`,
			e.KeyID, nullable(e.Name), nonNil(e.Allowlist), e.Note, qpsColumn(e.QPSLimit), e.At, int64(r.Sequence), r.Metadata.ActorID)
	case domain.APIKeyDeleted:
		b.Exec(`DELETE FROM api_keys WHERE id = $1`, e.KeyID)
	case domain.APIKeyRevealed:
		b.Exec(`UPDATE api_keys SET last_revealed_at = $2 WHERE id = $1`, e.KeyID, e.At)
	}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func qpsColumn(q domain.QPS) *int32 {
	if q == 0 {
		return nil
	}
	v := int32(q)
	return &v
}

// APIKeyRow is a key as listed: masked, never its secret.
type APIKeyRow struct {
	ID             string
	WorkspaceID    string
	BusinessType   string
	Name           *string
	Allowlist      []string
	Note           string
	QPSLimit       *int32
	MaskedSecret   string
	BatchID        *string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	LastRevealedAt *time.Time
	// LastUsedAt is the minute a verification last allowed it (nil: never, as far
	// as the instances have written).
	LastUsedAt *time.Time
	// Version is the key's own version (its entity tag); a reveal does not change it.
	Version uint64
	// CreatedBy and UpdatedBy are the accounts that created and last changed it.
	CreatedBy, UpdatedBy ActorRef
}

// APIKeys answers questions about a workspace's keys.
type APIKeys struct{ Pool *pgxpool.Pool }

const apiKeySelect = `SELECT k.id, k.workspace_id, k.business_type, k.name, k.allowlist, k.note, k.qps_limit,
	k.masked_secret, k.batch_id, k.created_at, k.updated_at, k.last_revealed_at, k.version,
	k.created_by, COALESCE(cb.name, ''), k.updated_by, COALESCE(ub.name, ''), lu.last_used_at
	FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
	LEFT JOIN accounts cb ON cb.id = k.created_by LEFT JOIN accounts ub ON ub.id = k.updated_by
	LEFT JOIN api_key_last_used lu ON lu.key_id = k.id `

func scanAPIKey(row pgx.Row) (APIKeyRow, error) {
	var k APIKeyRow
	var v int64
	err := row.Scan(&k.ID, &k.WorkspaceID, &k.BusinessType, &k.Name, &k.Allowlist, &k.Note, &k.QPSLimit,
		&k.MaskedSecret, &k.BatchID, &k.CreatedAt, &k.UpdatedAt, &k.LastRevealedAt, &v,
		&k.CreatedBy.ID, &k.CreatedBy.Name, &k.UpdatedBy.ID, &k.UpdatedBy.Name, &k.LastUsedAt)
	k.Version = uint64(v)
	return k, err
}

// Get returns one live key of a workspace of the organization;
// domain.ErrAPIKeyNotFound when there is none.
func (q APIKeys) Get(ctx context.Context, orgID, workspaceID, keyID string) (APIKeyRow, error) {
	if _, err := (Workspaces{q.Pool}).Get(ctx, orgID, workspaceID); err != nil {
		return APIKeyRow{}, err
	}
	k, err := scanAPIKey(q.Pool.QueryRow(ctx, apiKeySelect+`WHERE k.id = $1 AND k.workspace_id = $2`, keyID, workspaceID))
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKeyRow{}, domain.ErrAPIKeyNotFound
	}
	if err != nil {
		return APIKeyRow{}, fault.Unavailable(err)
	}
	return k, nil
}

// RecordUse writes when keys were last allowed; an older time never replaces a
// newer one, so every instance may write what it saw.
func (q APIKeys) RecordUse(ctx context.Context, keyIDs []string, at []time.Time) error {
	_, err := q.Pool.Exec(ctx, `INSERT INTO api_key_last_used (key_id, last_used_at)
		SELECT * FROM unnest($1::text[], $2::timestamptz[])
		ON CONFLICT (key_id) DO UPDATE SET last_used_at = GREATEST(api_key_last_used.last_used_at, EXCLUDED.last_used_at)`, keyIDs, at)
	return fault.Unavailable(err)
}

// LastUsed is when a key was last allowed (nil: never written).
func (q APIKeys) LastUsed(ctx context.Context, keyID string) (*time.Time, error) {
	var at *time.Time
	err := q.Pool.QueryRow(ctx, `SELECT last_used_at FROM api_key_last_used WHERE key_id = $1`, keyID).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return at, fault.Unavailable(err)
}

// KeyFilter narrows a list of keys: to one business type, to one batch ("" for any).
type KeyFilter struct {
	BusinessType string
	BatchID      string
}

// List returns live keys of a workspace of the organization, newest first, as the
// filter narrows them.
func (q APIKeys) List(ctx context.Context, orgID, workspaceID string, filter KeyFilter, page Page) ([]APIKeyRow, string, error) {
	if _, err := (Workspaces{q.Pool}).Get(ctx, orgID, workspaceID); err != nil {
		return nil, "", err
	}
	after := page.after()
	if after == "" {
		after = "\U0010FFFF"
	}
	return queryPage(ctx, q.Pool, page, scanAPIKey, func(k APIKeyRow) string { return k.ID },
		apiKeySelect+`WHERE k.workspace_id = $1 AND ($2 = '' OR k.business_type = $2) AND ($5 = '' OR k.batch_id = $5) AND k.id < $3
		ORDER BY k.id DESC LIMIT $4`, workspaceID, filter.BusinessType, after, page.Limit+1, filter.BatchID)
}
