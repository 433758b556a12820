package projections

import (
	"context"
	"encoding/base64"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/fault"
)

// ErrBadCursor: the cursor was not issued by keyledger.
var ErrBadCursor = errors.New("invalid cursor")

// Page is a cursor and a page size; the cursor is opaque to clients.
type Page struct {
	Cursor string
	Limit  int
}

// DecodeCursor checks a client's cursor.
func (p Page) after() string {
	b, _ := base64.RawURLEncoding.DecodeString(p.Cursor)
	return string(b)
}

// ValidCursor reports whether s decodes as a cursor keyledger issued: the id of a
// row, which is short ASCII of letters, digits and underscores. Anything else never
// reaches PostgreSQL (which refuses invalid UTF-8 with an error, not a 400).
func ValidCursor(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 64 {
		return false
	}
	for _, c := range b {
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

// pageOf trims the extra row fetched to know whether a next page exists.
func pageOf[T any](rows []T, p Page, id func(T) string) ([]T, string, error) {
	if len(rows) <= p.Limit {
		if rows == nil {
			rows = []T{}
		}
		return rows, "", nil
	}
	rows = rows[:p.Limit]
	return rows, encodeCursor(id(rows[len(rows)-1])), nil
}

// queryAll runs a query and scans every row: an empty list, never nil, when there
// is none.
func queryAll[T any](ctx context.Context, pool *pgxpool.Pool, scan func(pgx.CollectableRow) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fault.Unavailable(err)
	}
	out, err := pgx.CollectRows(rows, scan)
	if out == nil {
		out = []T{}
	}
	return out, fault.Unavailable(err)
}

// queryPage runs a page query (one that fetches page.Limit+1 rows), scans the rows
// and cuts the page.
func queryPage[T any](ctx context.Context, pool *pgxpool.Pool, page Page, scan func(pgx.Row) (T, error), id func(T) string, sql string, args ...any) ([]T, string, error) {
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fault.Unavailable(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, "", fault.Unavailable(err)
	}
	return pageOf(out, page, id)
}
