package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/labstack/echo/v4"

	"github.com/keyledger/keyledger/domain"
)

// errNull: a field that is not nullable was sent as null.
var errNull = errors.New("must not be null")

// nullable is implemented by the request fields where null means something (such as
// qps_limit null: unlimited); everywhere else null is refused, not read as absent.
type nullable interface{ acceptsNull() }

// strict are the decoding rules of every request body: member names match exactly
// (no case folding), no duplicate or unknown members, valid UTF-8, and null only
// where a field says what it means.
var strict = jsonv2.JoinOptions(
	jsonv2.RejectUnknownMembers(true),
	jsonv2.WithUnmarshalers(jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, v any) error {
		if _, ok := v.(nullable); !ok && dec.PeekKind() == 'n' {
			return errNull
		}
		return errors.ErrUnsupported
	})),
)

// decode reads a JSON body strictly into v. Every refusal is a 400 naming the field
// in the request's own terms, never a Go type.
func decode(c echo.Context, v any) error {
	if err := jsonContent(c.Request()); err != nil {
		return err
	}
	body, err := io.ReadAll(c.Request().Body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return err // 413
	}
	if err != nil {
		return badRequest("malformed_body", "the request body could not be read to its end")
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return badRequest("malformed_body", "the request body must be a JSON object")
	}
	if !utf8.Valid(body) {
		return badRequest("malformed_body", "the request body is not valid UTF-8")
	}
	err = jsonv2.Unmarshal(body, v, strict)
	if err == nil {
		return nil
	}
	var se *jsonv2.SemanticError
	if errors.As(err, &se) {
		field := fieldPath(string(se.JSONPointer))
		var ve *domain.ValidationError
		if errors.As(err, &ve) { // a field type that validates itself (an allowlist)
			var out domain.ValidationError
			out.Merge(field, ve)
			return &out
		}
		switch {
		case errors.Is(err, errNull) && field == "":
			return badRequest("malformed_body", "the request body must be a JSON object, not null")
		case errors.Is(err, errNull):
			return invalidField(field, "null_not_allowed", "must not be null (omit the field instead)")
		case errors.Is(err, jsonv2.ErrUnknownName):
			return invalidField(field, "unknown_field", "this field is not part of the request")
		case se.GoType != nil && field != "":
			return invalidField(field, "wrong_type", "must be "+kindName(se.GoType))
		case field != "" && se.Err != nil:
			return invalidField(field, "invalid_value", se.Err.Error())
		}
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) && errors.Is(err, jsontext.ErrDuplicateName) {
		return invalidField(fieldPath(string(syn.JSONPointer)), "duplicate_field", "this field appears more than once")
	}
	return badRequest("malformed_body", "the request body is not one valid JSON object")
}

// jsonContent refuses a body of another media type (415). A request without a body
// needs no Content-Type.
func jsonContent(r *http.Request) error {
	ct := r.Header.Get(echo.HeaderContentType)
	if ct == "" && r.ContentLength == 0 {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != echo.MIMEApplicationJSON {
		return &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
			detail: "send the body as application/json"}
	}
	return nil
}

// fieldPath turns a JSON pointer (/rate_limit/qps_list/1) into the field names the
// API uses (rate_limit.qps_list[1]).
func fieldPath(pointer string) string {
	if pointer == "" {
		return ""
	}
	var b strings.Builder
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// accepts says whether the request's Accept header names mediaType with a quality
// above zero ("text/csv;q=0" refuses it).
func accepts(c echo.Context, mediaType string) bool {
	for _, part := range strings.Split(strings.Join(c.Request().Header.Values("Accept"), ","), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || mt != mediaType {
			continue
		}
		if q, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(q, 64); err != nil || v <= 0 {
				continue
			}
		}
		return true
	}
	return false
}

// noBody refuses a body on a request that takes none.
func noBody(c echo.Context) error {
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, 64))
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return badRequest("body_not_allowed", "this request takes no body")
	}
	return nil
}

var nullableType = reflect.TypeFor[nullable]()

// nullableOf is what a field of type t holds when not null, if t is a Nullable.
func nullableOf(t reflect.Type) (reflect.Type, bool) {
	if t.Kind() != reflect.Struct || !reflect.PointerTo(t).Implements(nullableType) {
		return nil, false
	}
	v, ok := t.FieldByName("Value")
	if !ok {
		return nil, false
	}
	return v.Type.Elem(), true
}

// kindName says what JSON a Go type takes, in the client's words.
func kindName(t reflect.Type) string {
	if t == allowlistType {
		return "a list of addresses and ranges, or one string of them"
	}
	if elem, ok := nullableOf(t); ok {
		return kindName(elem) + ", or null"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}
