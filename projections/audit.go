package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/fault"
)

// AuditView keeps the audit views from the events log: an entry per event of an
// organization's history, the names the log gave ids, and each organization's
// Merkle tree (every node, for proofs; its right border, for appending) with its
// latest signed checkpoint. The borders live in memory between batches (Loader).
// It runs under a projector of its own ("audit"), so the trees cost the other
// views nothing.
type AuditView struct {
	trees audit.Forest
	names map[[2]string]audit.Name // given by the batch being applied
}

// NewAuditView returns the audit view; its runner loads the trees.
func NewAuditView() *AuditView { return &AuditView{trees: audit.Forest{}} }

var (
	auditEntryColumns = []string{"organization_id", "leaf_index", "position", "event_id", "event_type", "action", "at", "actor_id",
		"credential_id", "source_ip", "request_id", "client_request_id", "workspace_id", "target_kind", "target_id", "account_id", "changes"}
	auditNodeColumns = []string{"organization_id", "level", "node_index", "hash"}
)

// Load reads every organization's tree border as committed.
func (v *AuditView) Load(ctx context.Context, db Querier) error {
	rows, err := db.Query(ctx, `SELECT organization_id, size, border FROM audit_trees`)
	if err != nil {
		return err
	}
	trees := audit.Forest{}
	for rows.Next() {
		var org string
		var size int64
		var border [][]byte
		if err := rows.Scan(&org, &size, &border); err != nil {
			return err
		}
		r, err := audit.Ranges.NewRange(0, uint64(size), border)
		if err != nil {
			return fmt.Errorf("audit tree of %s: %w", org, err)
		}
		trees[org] = r
	}
	if err := rows.Err(); err != nil {
		return err
	}
	v.trees, v.names = trees, nil
	return nil
}

// Apply appends an organization's event to its tree and its entries, or records a
// checkpoint.
func (v *AuditView) Apply(b *Batch, r eventstore.Record) {
	org := r.Metadata.OrganizationID
	if org == "" {
		return
	}
	if cp, ok := r.Event.(domain.CheckpointSigned); ok {
		b.Defer("checkpoint:"+org, `INSERT INTO audit_checkpoints (organization_id, size, root, note, position, at) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (organization_id) DO UPDATE SET size = EXCLUDED.size, root = EXCLUDED.root, note = EXCLUDED.note,
			position = EXCLUDED.position, at = EXCLUDED.at WHERE audit_checkpoints.size <= EXCLUDED.size`,
			org, int64(cp.Size), cp.RootHash, cp.Note, int64(r.Sequence), cp.At)
		return
	}
	tree := v.trees.Grow(r, func(id compact.NodeID, hash []byte) {
		b.DeferInsert("audit_tree_nodes", auditNodeColumns, org, int16(id.Level), int64(id.Index), hash)
	})
	if tree == nil {
		return
	}
	index := tree.End() - 1
	b.DeferBuild("tree:"+org, func() (string, []any) {
		root, _ := tree.GetRootHash(nil)
		return `INSERT INTO audit_trees (organization_id, size, border, root) VALUES ($1, $2, $3, $4)
			ON CONFLICT (organization_id) DO UPDATE SET size = EXCLUDED.size, border = EXCLUDED.border, root = EXCLUDED.root`,
			[]any{org, int64(tree.End()), slices.Clone(tree.Hashes()), root} // the tree grows while this is written
	})

	target := audit.TargetOf(r.Event, r.Aggregate)
	m := r.Metadata
	b.Insert("audit_entries", auditEntryColumns, org, int64(index), int64(r.Sequence), r.ID, r.Type, audit.Action(r.Type), r.Time,
		m.ActorID, m.CredentialID, m.SourceIP, m.RequestID, m.ClientRequestID, m.WorkspaceID, target.Kind, target.ID, target.AccountID,
		string(audit.Changes(r.Raw.Data)))
	for _, n := range audit.NamesOf(r.Event, r.Aggregate) {
		v.name(b, org, n)
	}
}

// name upserts the names a batch gives, all in one statement at its end (the
// last name given to an id wins).
func (v *AuditView) name(b *Batch, org string, n audit.Name) {
	if v.names == nil {
		v.names = map[[2]string]audit.Name{}
		b.DeferBuild("audit_names", func() (string, []any) {
			var orgs, ids, kinds, names []string
			for k, n := range v.names {
				orgs, ids, kinds, names = append(orgs, k[0]), append(ids, n.ID), append(kinds, n.Kind), append(names, n.Name)
			}
			v.names = nil
			return `INSERT INTO audit_names (organization_id, id, kind, name)
				SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
				ON CONFLICT (organization_id, id) DO UPDATE SET name = EXCLUDED.name`, []any{orgs, ids, kinds, names}
		})
	}
	v.names[[2]string{org, n.ID}] = n
}

// AuditFilter narrows the audit entries; zero fields do not filter.
type AuditFilter struct {
	WorkspaceID, ActorID, TargetID, Action string
	From, To                               time.Time
}

// AuditRow is an audit entry with the names of who and what it concerns.
type AuditRow struct {
	LeafIndex                        uint64
	Position                         uint64
	EventID, EventType, Action       string
	At                               time.Time
	ActorID, ActorName               string
	CredentialID, SourceIP           string
	RequestID, ClientRequestID       string
	WorkspaceID, WorkspaceName       string
	TargetKind, TargetID, TargetName string
	AccountID, AccountName           string
	// Data is the event's payload (without credential hashes and sealed secrets);
	// Before is the target's state the edit replaced, for edits.
	Data, Before json.RawMessage
}

// editTypes are the events that replace a target's state, and theirs the events
// that set the state they replace.
var editTypes = map[string][]string{
	domain.TypeAPIKeyUpdated:    {domain.TypeAPIKeyCreated, domain.TypeAPIKeyUpdated},
	domain.TypeWorkspaceUpdated: {domain.TypeWorkspaceCreated, domain.TypeWorkspaceUpdated},
	domain.TypeRoleRenamed:      {domain.TypeRoleCreated, domain.TypeRoleRenamed},
}

// Audit answers the audit entries and the trees.
type Audit struct{ Pool *pgxpool.Pool }

var auditSelect = `SELECT e.leaf_index, e.position, e.event_id, e.event_type, e.action, e.at, e.actor_id, COALESCE(an.name, ''),
	e.credential_id, e.source_ip, e.request_id, e.client_request_id, e.workspace_id, COALESCE(wn.name, ''), e.target_kind, e.target_id,
	COALESCE(tn.name, ''), e.account_id, COALESCE(cn.name, ''), e.changes,
	(SELECT p.changes FROM audit_entries p WHERE p.organization_id = e.organization_id AND p.target_id = e.target_id
		AND p.leaf_index < e.leaf_index AND p.event_type = ANY(CASE e.event_type ` + editCases + ` ELSE '{}'::text[] END)
		ORDER BY p.leaf_index DESC LIMIT 1)
	FROM audit_entries e
	LEFT JOIN audit_names an ON an.organization_id = e.organization_id AND an.id = e.actor_id
	LEFT JOIN audit_names wn ON wn.organization_id = e.organization_id AND wn.id = e.workspace_id
	LEFT JOIN audit_names tn ON tn.organization_id = e.organization_id AND tn.id = e.target_id
	LEFT JOIN audit_names cn ON cn.organization_id = e.organization_id AND cn.id = e.account_id `

var editCases = func() string {
	var b strings.Builder
	for t, before := range editTypes {
		fmt.Fprintf(&b, "WHEN '%s' THEN ARRAY['%s'] ", t, strings.Join(before, "','"))
	}
	return b.String()
}()

func scanAudit(row pgx.Row) (AuditRow, error) {
	var a AuditRow
	var leaf, pos int64
	var before []byte
	err := row.Scan(&leaf, &pos, &a.EventID, &a.EventType, &a.Action, &a.At, &a.ActorID, &a.ActorName, &a.CredentialID, &a.SourceIP,
		&a.RequestID, &a.ClientRequestID, &a.WorkspaceID, &a.WorkspaceName, &a.TargetKind, &a.TargetID, &a.TargetName, &a.AccountID,
		&a.AccountName, &a.Data, &before)
	a.LeafIndex, a.Position, a.At = uint64(leaf), uint64(pos), a.At.UTC()
	if before != nil {
		a.Before = before
	}
	return a, err
}

// List returns a page of the organization's entries, newest first.
func (q Audit) List(ctx context.Context, orgID string, f AuditFilter, page Page) ([]AuditRow, string, error) {
	sql, args := auditWhere(orgID, f)
	if c := page.after(); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil {
			return nil, "", ErrBadCursor
		}
		args = append(args, n)
		sql += fmt.Sprintf(" AND e.leaf_index < $%d", len(args))
	}
	args = append(args, page.Limit+1)
	sql += fmt.Sprintf(" ORDER BY e.leaf_index DESC LIMIT $%d", len(args))
	return queryPage(ctx, q.Pool, page, scanAudit, func(a AuditRow) string { return strconv.FormatUint(a.LeafIndex, 10) }, sql, args...)
}

// Each calls fn with every entry the filter selects, newest first, reading them in
// pages so that an export of millions of entries holds one page in memory.
func (q Audit) Each(ctx context.Context, orgID string, f AuditFilter, fn func(AuditRow) error) error {
	page := Page{Limit: 1000}
	for {
		rows, next, err := q.List(ctx, orgID, f, page)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		page.Cursor = next
	}
}

// auditWhere is the query of the filtered entries with only the conditions set, so
// that PostgreSQL picks the index of the one that narrows.
func auditWhere(orgID string, f AuditFilter) (string, []any) {
	sql := auditSelect + `WHERE e.organization_id = $1`
	args := []any{orgID}
	add := func(cond string, v any) {
		args = append(args, v)
		sql += fmt.Sprintf(" AND "+cond, len(args))
	}
	for _, c := range []struct{ column, v string }{{"workspace_id", f.WorkspaceID}, {"actor_id", f.ActorID}, {"target_id", f.TargetID}, {"action", f.Action}} {
		if c.v != "" {
			add("e."+c.column+" = $%d", c.v)
		}
	}
	// A time range also bounds the leaf indices, found through the index on the
	// time, so that the newest-first scan starts and stops near the range: an entry
	// stamped s or more after to was appended after every entry before to, and one
	// stamped s or more before from was appended before every entry from from on,
	// as long as the instances' clocks agree within s (clockSkew).
	if !f.From.IsZero() {
		add("e.at >= $%d", f.From)
		sql += fmt.Sprintf(` AND e.leaf_index > COALESCE((SELECT leaf_index FROM audit_entries WHERE organization_id = $1 AND at < $%d
			ORDER BY at DESC LIMIT 1), -1)`, len(args)+1)
		args = append(args, f.From.Add(-clockSkew))
	}
	if !f.To.IsZero() {
		add("e.at < $%d", f.To)
		sql += fmt.Sprintf(` AND e.leaf_index < COALESCE((SELECT leaf_index FROM audit_entries WHERE organization_id = $1 AND at >= $%d
			ORDER BY at LIMIT 1), 9223372036854775807)`, len(args)+1)
		args = append(args, f.To.Add(clockSkew))
	}
	return sql, args
}

// clockSkew is how far apart the instances' clocks may be, at most, for the time
// filters of the audit entries to be exact (ce-time is the appending instance's
// clock).
const clockSkew = 5 * time.Minute

// EvidenceFilter selects the entries that set a piece of state: of these event
// types, on a target or concerning an account, in a workspace when given.
type EvidenceFilter struct {
	Types                            []string
	TargetID, AccountID, WorkspaceID string
	// Position, when set, selects the event at that log position.
	Position uint64
}

// LastEntry is the latest entry at or before t that the filter selects (the
// one at its Position, whatever its time, when set); ok is false when there is
// none.
func (q Audit) LastEntry(ctx context.Context, orgID string, f EvidenceFilter, t time.Time) (AuditRow, bool, error) {
	sql := auditSelect + `WHERE e.organization_id = $1 AND e.event_type = ANY($2)`
	args := []any{orgID, f.Types}
	if f.Position == 0 {
		args = append(args, t)
		sql += ` AND e.at <= $3`
	}
	for _, c := range []struct{ column, v string }{{"target_id", f.TargetID}, {"account_id", f.AccountID}, {"workspace_id", f.WorkspaceID}} {
		if c.v != "" {
			args = append(args, c.v)
			sql += fmt.Sprintf(" AND e.%s = $%d", c.column, len(args))
		}
	}
	if f.Position != 0 {
		args = append(args, int64(f.Position))
		sql += fmt.Sprintf(" AND e.position = $%d", len(args))
	}
	row, err := scanAudit(q.Pool.QueryRow(ctx, sql+` ORDER BY e.leaf_index DESC LIMIT 1`, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return AuditRow{}, false, nil
	}
	if err != nil {
		return AuditRow{}, false, fault.Unavailable(err)
	}
	return row, true, nil
}

// KeyWorkspace is the workspace an API key of the organization was created in (""
// when the organization created no such key).
func (q Audit) KeyWorkspace(ctx context.Context, orgID, keyID string) (string, error) {
	var ws string
	err := q.Pool.QueryRow(ctx, `SELECT workspace_id FROM audit_entries WHERE organization_id = $1 AND target_id = $2 AND event_type = $3 LIMIT 1`,
		orgID, keyID, domain.TypeAPIKeyCreated).Scan(&ws)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fault.Unavailable(err)
	}
	return ws, nil
}

// TreeHead is an organization's tree as projected, with its latest checkpoint.
type TreeHead struct {
	OrganizationID string
	Size           uint64
	Root           []byte
	// Checkpoint is the latest signed checkpoint's size and log position (0: none).
	CheckpointSize, CheckpointPosition uint64
	// Border and Position, from the witness only, are the tree's right border and
	// the log position up to which it holds the organization's events.
	Border   [][]byte
	Position uint64
}

// ErrNoAuditTree: the organization has no event in its tree yet.
var ErrNoAuditTree = errors.New("audit: the organization's tree is empty")

const treeHeadSelect = `SELECT t.organization_id, t.size, t.root, COALESCE(c.size, 0), COALESCE(c.position, 0)
	FROM audit_trees t LEFT JOIN audit_checkpoints c USING (organization_id) `

func scanTreeHead(row pgx.Row) (TreeHead, error) {
	var h TreeHead
	var size, cpSize, cpPos int64
	err := row.Scan(&h.OrganizationID, &size, &h.Root, &cpSize, &cpPos)
	h.Size, h.CheckpointSize, h.CheckpointPosition = uint64(size), uint64(cpSize), uint64(cpPos)
	return h, err
}

// Head is the organization's tree as projected.
func (q Audit) Head(ctx context.Context, orgID string) (TreeHead, error) {
	h, err := scanTreeHead(q.Pool.QueryRow(ctx, treeHeadSelect+`WHERE t.organization_id = $1`, orgID))
	if errors.Is(err, pgx.ErrNoRows) {
		return TreeHead{}, ErrNoAuditTree
	}
	if err != nil {
		return TreeHead{}, fault.Unavailable(err)
	}
	return h, nil
}

// Hashes returns the hashes of the tree's nodes, in the order of ids; a node the
// tree does not have yet is an error.
func (q Audit) Hashes(ctx context.Context, orgID string, ids []compact.NodeID) ([][]byte, error) {
	levels, indexes := make([]int16, len(ids)), make([]int64, len(ids))
	for i, id := range ids {
		levels[i], indexes[i] = int16(id.Level), int64(id.Index)
	}
	rows, err := q.Pool.Query(ctx, `SELECT n.hash FROM unnest($2::smallint[], $3::bigint[]) WITH ORDINALITY AS w(level, node_index, ord)
		LEFT JOIN audit_tree_nodes n ON n.organization_id = $1 AND n.level = w.level AND n.node_index = w.node_index ORDER BY w.ord`,
		orgID, levels, indexes)
	if err != nil {
		return nil, fault.Unavailable(err)
	}
	hashes, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fault.Unavailable(err)
	}
	for i, h := range hashes {
		if h == nil {
			return nil, fmt.Errorf("audit tree of %s: no node %d/%d", orgID, ids[i].Level, ids[i].Index)
		}
	}
	return hashes, nil
}

// ErrAuditEventNotFound: no event of the organization's history has this id.
var ErrAuditEventNotFound = errors.New("audit: no such event in the organization's history")

// LeafIndex is the leaf index of an event of the organization's history.
func (q Audit) LeafIndex(ctx context.Context, orgID, eventID string) (uint64, error) {
	var leaf int64
	err := q.Pool.QueryRow(ctx, `SELECT leaf_index FROM audit_entries WHERE organization_id = $1 AND event_id = $2`, orgID, eventID).Scan(&leaf)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrAuditEventNotFound
	}
	if err != nil {
		return 0, fault.Unavailable(err)
	}
	return uint64(leaf), nil
}

// LeavesThrough is how many of the organization's events are at log positions up
// to pos: the leaf index of its first event after pos.
func (q Audit) LeavesThrough(ctx context.Context, orgID string, pos uint64) (uint64, error) {
	var n int64
	err := q.Pool.QueryRow(ctx, `SELECT COALESCE(max(leaf_index) + 1, 0) FROM audit_entries WHERE organization_id = $1 AND position <= $2`,
		orgID, int64(pos)).Scan(&n)
	if err != nil {
		return 0, fault.Unavailable(err)
	}
	return uint64(n), nil
}

// SignedCheckpoint is the latest checkpoint published for an organization.
type SignedCheckpoint struct {
	Size     uint64
	Root     []byte
	Note     string
	Position uint64
	At       time.Time
}

// ErrNoCheckpoint: no checkpoint was published for the organization yet.
var ErrNoCheckpoint = errors.New("audit: no checkpoint published yet")

// Checkpoint is the organization's latest signed checkpoint.
func (q Audit) Checkpoint(ctx context.Context, orgID string) (SignedCheckpoint, error) {
	var c SignedCheckpoint
	var size, pos int64
	err := q.Pool.QueryRow(ctx, `SELECT size, root, note, position, at FROM audit_checkpoints WHERE organization_id = $1`, orgID).
		Scan(&size, &c.Root, &c.Note, &pos, &c.At)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, ErrNoCheckpoint
	}
	if err != nil {
		return c, fault.Unavailable(err)
	}
	c.Size, c.Position, c.At = uint64(size), uint64(pos), c.At.UTC()
	return c, nil
}

// ErrBeyondTree: a proof asked about a size the tree has not reached, or a leaf
// outside the size.
var ErrBeyondTree = errors.New("audit: beyond the organization's tree")

// within checks that size is within the tree.
func (q Audit) within(ctx context.Context, orgID string, size uint64) error {
	h, err := q.Head(ctx, orgID)
	if err != nil {
		return err
	}
	if size > h.Size {
		return fmt.Errorf("%w: size %d, the tree has %d leaves", ErrBeyondTree, size, h.Size)
	}
	return nil
}

// RootAt is the root hash of the tree's first size leaves.
func (q Audit) RootAt(ctx context.Context, orgID string, size uint64) ([]byte, error) {
	if err := q.within(ctx, orgID, size); err != nil {
		return nil, err
	}
	hashes, err := q.Hashes(ctx, orgID, compact.RangeNodes(0, size, nil))
	if err != nil {
		return nil, err
	}
	r, err := audit.Ranges.NewRange(0, size, hashes)
	if err != nil {
		return nil, err
	}
	return r.GetRootHash(nil)
}

// InclusionProof proves that leaf index is in the tree of the given size.
func (q Audit) InclusionProof(ctx context.Context, orgID string, index, size uint64) ([][]byte, error) {
	if index >= size {
		return nil, fmt.Errorf("%w: leaf %d is not in a tree of %d leaves", ErrBeyondTree, index, size)
	}
	if err := q.within(ctx, orgID, size); err != nil {
		return nil, err
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	return q.rehash(ctx, orgID, nodes)
}

// ConsistencyProof proves that the tree of size to extends the tree of size from.
func (q Audit) ConsistencyProof(ctx context.Context, orgID string, from, to uint64) ([][]byte, error) {
	if from > to {
		return nil, fmt.Errorf("%w: from %d is after to %d", ErrBeyondTree, from, to)
	}
	if err := q.within(ctx, orgID, to); err != nil {
		return nil, err
	}
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return nil, err
	}
	return q.rehash(ctx, orgID, nodes)
}

func (q Audit) rehash(ctx context.Context, orgID string, nodes proof.Nodes) ([][]byte, error) {
	hashes, err := q.Hashes(ctx, orgID, nodes.IDs)
	if err != nil {
		return nil, err
	}
	return nodes.Rehash(hashes, audit.Hasher.HashChildren)
}
