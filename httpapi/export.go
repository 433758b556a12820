package httpapi

import (
	"encoding/csv"
	"iter"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/projections"
)

// csvAttachment sets the headers of a workspace's key export.
func csvAttachment(c echo.Context, ws string) {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="api-keys-`+ws+`.csv"`)
}

// exportPage is how many keys the export reads from the views at a time.
const exportPage = 500

// exportAPIKeys answers the key list as CSV: every key the filter selects (not one
// page), masked, with the selected fields (all when none), streamed page by page.
// The export is recorded in the log before the first row; a failure before the
// first row is an error answer, a failure after it cuts the answer short (as every
// answer whose status is sent: handleError). A HEAD gets the headers only.
func (s *Server) exportAPIKeys(c echo.Context, ws string, filter projections.KeyFilter, fields []string) error {
	ctx, cl := c.Request().Context(), caller(c)
	if c.Request().Method == http.MethodHead { // nothing leaves: no export to record, no row to read
		// A sub-account was authorized with the list (readableWorkspace); the
		// primary's check is the views' organization filter, which a HEAD does not
		// read: the workspace is checked here (another organization's: 404).
		if cl.Primary {
			if err := s.d.App.AuthorizeWorkspace(ctx, cl, ws, commands.PermAPIKeyRead); err != nil {
				return err
			}
		}
		csvAttachment(c, ws)
		return c.NoContent(http.StatusOK)
	}
	version, err := s.d.App.ExportAPIKeys(ctx, commands.ExportAPIKeys{Caller: cl, WorkspaceID: ws,
		BusinessType: filter.BusinessType, BatchID: filter.BatchID, Fields: fields})
	if err != nil {
		return err
	}
	p := projections.Page{Limit: exportPage}
	rows, next, err := s.d.Views.APIKeys(ctx, cl.OrganizationID, ws, filter, p)
	if err != nil {
		return err
	}
	if len(fields) == 0 {
		fields = keyFieldNames
	} else { // id first, once
		fields = append([]string{"id"}, slices.DeleteFunc(slices.Clone(fields), func(f string) bool { return f == "id" })...)
	}
	columns := csvColumns(reflect.TypeOf(APIKey{}), fields)
	csvAttachment(c, ws)
	c.Response().Header().Set(HeaderPosition, strconv.FormatUint(version, 10))
	out := startStream(c)
	w := csv.NewWriter(c.Response())
	header := make([]string, len(columns))
	for i, col := range columns {
		header[i] = strings.Join(col, ".")
	}
	if err := w.Write(header); err != nil {
		return err
	}
	for {
		for _, r := range rows {
			m, err := selectFields(apiKeyOfRow(r), nil)
			if err != nil {
				return err
			}
			record := make([]string, len(columns))
			for i, col := range columns {
				record[i] = csvCell(lookup(m, col))
			}
			if err := w.Write(record); err != nil {
				return err
			}
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return err
		}
		out.flush()
		if next == "" {
			return nil
		}
		p.Cursor = next
		if rows, next, err = s.d.Views.APIKeys(ctx, cl.OrganizationID, ws, filter, p); err != nil {
			return err
		}
	}
}

// jsonFields are the JSON names of a struct's fields, in order.
func jsonFields(t reflect.Type) []string {
	var out []string
	for name := range jsonTyped(t) {
		out = append(out, name)
	}
	return out
}

// jsonTyped yields a struct's fields by JSON name, in order, with their types.
func jsonTyped(t reflect.Type) iter.Seq2[string, reflect.Type] {
	return func(yield func(string, reflect.Type) bool) {
		for i := range t.NumField() {
			if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" && !yield(name, t.Field(i).Type) {
				return
			}
		}
	}
}

var timeType = reflect.TypeOf(time.Time{})

// csvColumns are the columns of the selected fields: a field holding an object
// (created_by) becomes one column per member ("created_by.id", "created_by.name").
func csvColumns(t reflect.Type, fields []string) [][]string {
	types := maps.Collect(jsonTyped(t))
	var out [][]string
	for _, name := range fields {
		if ft := types[name]; ft != nil && ft.Kind() == reflect.Struct && ft != timeType {
			for _, sub := range jsonFields(ft) {
				out = append(out, []string{name, sub})
			}
			continue
		}
		out = append(out, []string{name})
	}
	return out
}

func lookup(m map[string]any, path []string) any {
	v := any(m)
	for _, k := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[k]
	}
	return v
}

// csvCell writes one value of the JSON representation: null is empty, a list is
// its items separated by commas, and text that a spreadsheet would run as a
// formula (starting with = + - @ or a tab or carriage return) is prefixed with '.
func csvCell(v any) string {
	var s string
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		s = v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = csvCell(x)
		}
		s = strings.Join(parts, ",")
	default:
		return ""
	}
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
