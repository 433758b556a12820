package httpapi

import (
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"
)

var echoParam = regexp.MustCompile(`:([a-z]+)`)

// OpenAPI describes every route of the table: one named component schema per
// resource and one for problems, generated from the Go types the handlers decode
// and encode; every status a route answers; its headers; its security scheme.
func (s *Server) OpenAPI() *openapi3.T {
	doc := &openapi3.T{
		OpenAPI: "3.0.3",
		Info: &openapi3.Info{Title: "keyledger", Version: "1.0.0",
			Description: "Credentials for model-inference (MaaS) and search APIs, event-sourced."},
		Paths: openapi3.NewPaths(),
		Components: &openapi3.Components{
			Schemas: openapi3.Schemas{},
			SecuritySchemes: openapi3.SecuritySchemes{
				"accessKey":    &openapi3.SecuritySchemeRef{Value: openapi3.NewJWTSecurityScheme().WithBearerFormat("access key secret (kla_…)")},
				"gatewayToken": &openapi3.SecuritySchemeRef{Value: openapi3.NewJWTSecurityScheme().WithBearerFormat("gateway token from the configuration")},
			},
			Headers: openapi3.Headers{},
		},
	}
	headers := map[string]string{
		"Location":         "the created resource",
		"ETag":             "the resource's entity tag, for If-Match",
		HeaderPosition:     "the log position of the write; send it on a read to wait for it",
		"Retry-After":      "seconds to wait before retrying",
		"WWW-Authenticate": "the authentication scheme",
		HeaderRequestID:    "the server's id of the request, in its logs and in the log's ce-requestid",
		HeaderReplayed:     "true when this answers a retry with an earlier request's response",
	}
	for name, desc := range headers {
		doc.Components.Headers[name] = &openapi3.HeaderRef{Value: &openapi3.Header{Parameter: openapi3.Parameter{
			Description: desc, Schema: openapi3.NewStringSchema().NewRef()}}}
	}
	header := func(name string) *openapi3.HeaderRef { return &openapi3.HeaderRef{Ref: "#/components/headers/" + name} }
	problem := schemaOf(doc, Problem{})
	for _, r := range s.routes {
		op := openapi3.NewOperation()
		op.OperationID, op.Summary = r.id, r.summary
		for _, m := range echoParam.FindAllStringSubmatch(r.path, -1) {
			op.AddParameter(openapi3.NewPathParameter(m[1]).WithSchema(openapi3.NewStringSchema()).WithRequired(true))
		}
		for _, q := range r.query {
			p := openapi3.NewQueryParameter(q.name).WithDescription(q.description).WithSchema(q.schema())
			if q.list { // comma-separated: fields=name,note
				p.Explode = openapi3.Ptr(false)
			}
			op.AddParameter(p)
		}
		for _, h := range r.headers {
			op.AddParameter(openapi3.NewHeaderParameter(h.name).WithDescription(h.description).WithSchema(openapi3.NewStringSchema()))
		}
		if r.request != nil {
			op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).
				WithJSONSchemaRef(schemaOf(doc, r.request))}
		}
		ok := openapi3.NewResponse().WithDescription(strings.ToLower(r.summary))
		if r.response != nil {
			ok.WithJSONSchemaRef(schemaOf(doc, r.response))
		}
		if r.csv {
			ok.Content["text/csv"] = openapi3.NewMediaType().WithSchema(openapi3.NewStringSchema())
		}
		if r.ndjson {
			if ok.Content == nil {
				ok.Content = openapi3.Content{}
			}
			ok.Content[mimeNDJSON] = openapi3.NewMediaType().WithSchema(openapi3.NewStringSchema())
		}
		ok.Headers = openapi3.Headers{HeaderRequestID: header(HeaderRequestID)}
		if r.method != http.MethodGet || slices.Contains(etagReads, r.id) {
			if r.method != http.MethodGet {
				ok.Headers[HeaderPosition] = header(HeaderPosition)
			}
			if r.response != nil && !slices.Contains(untagged, r.id) {
				ok.Headers["ETag"] = header("ETag")
			}
		}
		if r.status == http.StatusCreated {
			ok.Headers["Location"] = header("Location")
		}
		if r.has(HeaderIdempotency) {
			ok.Headers[HeaderReplayed] = header(HeaderReplayed)
		}
		op.AddResponse(r.status, ok)
		if r.id == "readyz" {
			op.AddResponse(http.StatusServiceUnavailable, openapi3.NewResponse().WithDescription("a dependency is not ready").
				WithJSONSchemaRef(schemaOf(doc, Health{})))
		}
		for _, status := range r.problems() {
			p := openapi3.NewResponse().WithDescription(http.StatusText(status) + " (RFC 9457 problem)").
				WithContent(openapi3.Content{"application/problem+json": openapi3.NewMediaType().WithSchemaRef(problem)})
			p.Headers = openapi3.Headers{HeaderRequestID: header(HeaderRequestID)}
			switch status {
			case http.StatusUnauthorized:
				p.Headers["WWW-Authenticate"] = header("WWW-Authenticate")
			case http.StatusServiceUnavailable:
				p.Headers["Retry-After"] = header("Retry-After")
			}
			op.AddResponse(status, p)
		}
		switch {
		case r.auth:
			op.Security = &openapi3.SecurityRequirements{{"accessKey": []string{}}}
		case r.gateway:
			op.Security = &openapi3.SecurityRequirements{{"gatewayToken": []string{}}}
		}
		doc.AddOperation(echoParam.ReplaceAllString(r.path, "{$1}"), r.method, op)
	}
	// A key list's items hold the fields asked for: the key's schema, none required.
	key := *doc.Components.Schemas["APIKey"].Value
	key.Required = nil
	doc.Components.Schemas["APIKeyList"].Value.Properties["items"] = openapi3.NewArraySchema().WithItems(&key).NewRef()
	return doc
}

// etagReads are the reads that answer a resource's entity tag; untagged the writes
// whose answer is not one resource.
var (
	etagReads = []string{"getWorkspace", "getAccount", "getAPIKey", "getRole", "listMembers"}
	untagged  = []string{"createSearchKeyBatch", "revealAPIKey", "verify", "signAuditCheckpoint"}
)

// has reports whether the route takes a request header.
func (r route) has(header string) bool {
	return slices.ContainsFunc(r.headers, func(p param) bool { return p.name == header })
}

// problems lists the error statuses a route answers besides 500.
func (r route) problems() []int {
	out := []int{http.StatusBadRequest, http.StatusServiceUnavailable}
	if r.auth || r.gateway {
		out = append(out, http.StatusUnauthorized)
	}
	if r.auth {
		out = append(out, http.StatusForbidden, http.StatusNotFound)
	}
	if r.request != nil {
		out = append(out, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
	}
	if r.method == http.MethodPost || r.method == http.MethodPut || r.method == http.MethodPatch || r.method == http.MethodDelete {
		if r.auth {
			out = append(out, http.StatusConflict)
		}
	}
	if r.has("If-Match") {
		out = append(out, http.StatusPreconditionFailed)
	}
	if r.has(HeaderIdempotency) {
		out = append(out, http.StatusUnprocessableEntity)
	}
	if strings.Contains(r.path, ":key") && r.method != http.MethodGet {
		out = append(out, http.StatusGone) // a deleted key
	}
	if strings.HasPrefix(r.path, "/v1/audit/checkpoint") || r.path == "/v1/audit/public-key" {
		out = append(out, http.StatusNotImplemented) // no signing key configured
	}
	if r.path == "/healthz" || r.path == "/openapi.json" || r.path == "/asyncapi.json" || r.path == "/metrics" {
		return nil
	}
	if r.path == "/readyz" { // answered with the Health document, not a problem
		return nil
	}
	slices.Sort(out)
	return out
}

// schema is a query parameter's type: an integer, a closed set, or a string.
func (p param) schema() *openapi3.Schema {
	switch {
	case p.integer:
		return openapi3.NewIntegerSchema()
	case len(p.enum) > 0 && p.list:
		s := openapi3.NewArraySchema().WithItems(enumSchema(p.enum))
		return s
	case len(p.enum) > 0:
		return enumSchema(p.enum)
	}
	return openapi3.NewStringSchema()
}

func enumSchema(values []string) *openapi3.Schema {
	s := openapi3.NewStringSchema()
	for _, v := range values {
		s.Enum = append(s.Enum, v)
	}
	return s
}

var (
	allowlistType = reflect.TypeOf(Allowlist{})
	nameListType  = reflect.TypeOf(NameList{})
)

// nullMeans is what null says in a Nullable field, by what it holds otherwise.
var nullMeans = map[reflect.Kind]string{
	reflect.Int:    "null removes the limit",
	reflect.String: "null: none, what a MaaS key has (on creation, the default; a Search key keeps a name)",
}

// schemaOf generates the schema of a wire type into the document's components:
// a field without omitempty is required, one that may be null is nullable, and an
// `enum` tag closes a string's set, a `pattern` tag constrains it.
func schemaOf(doc *openapi3.T, v any) *openapi3.SchemaRef {
	ref, err := openapi3gen.NewSchemaRefForValue(v, doc.Components.Schemas,
		openapi3gen.CreateComponentSchemas(openapi3gen.ExportComponentSchemasOptions{ExportComponentSchemas: true, ExportTopLevelSchema: true}),
		openapi3gen.CreateTypeNameGenerator(func(t reflect.Type) string {
			if _, ok := nullableOf(t); ok { // a field's encoding, inlined: not a resource
				return ""
			}
			return t.Name()
		}),
		openapi3gen.SchemaCustomizer(func(_ string, t reflect.Type, tag reflect.StructTag, schema *openapi3.Schema) error {
			if elem, ok := nullableOf(t); ok {
				held, err := openapi3gen.NewSchemaRefForValue(reflect.New(elem).Elem().Interface(), nil)
				if err != nil {
					return err
				}
				*schema = *held.Value
				schema.Nullable, schema.Description = true, nullMeans[elem.Kind()]
				return nil
			}
			switch t {
			case nameListType:
				*schema = *openapi3.NewArraySchema().WithItems(openapi3.NewStringSchema())
				schema.Description = "one name per key; a string of names as pasted is accepted too: commas (，、), semicolons (；) or line breaks separate them, a blank piece is none"
				return nil
			case allowlistType:
				*schema = *openapi3.NewArraySchema().WithItems(openapi3.NewStringSchema())
				schema.Description = "IPv4/IPv6 addresses, CIDR ranges and dash ranges (10.0.0.1-10.0.0.50, first to last included); a string separated by commas, semicolons or spaces is accepted too"
				return nil
			}
			// A pointer is nullable (the generator marks it); one with omitempty is
			// left out instead, never null: a request's null there is refused.
			if name, opts, _ := strings.Cut(tag.Get("json"), ","); name != "" && strings.Contains(opts, "omitempty") {
				schema.Nullable = false
			}
			if p := tag.Get("pattern"); p != "" {
				schema.Pattern = p
			}
			if e := tag.Get("enum"); e != "" {
				for _, v := range strings.Split(e, ",") {
					schema.Enum = append(schema.Enum, v)
				}
			}
			if t.Kind() == reflect.Struct && schema.Type.Is(openapi3.TypeObject) {
				schema.Required = requiredFields(t)
			}
			return nil
		}))
	if err != nil {
		panic("openapi schema of " + reflect.TypeOf(v).String() + ": " + err.Error())
	}
	nullableRefs(doc, reflect.TypeOf(v))
	return ref
}

// nullableRefs marks the struct fields that may be null and refer to another
// component (an account's access_key): OpenAPI 3.0 ignores nullable beside a $ref,
// so such a property becomes allOf [$ref] with nullable.
func nullableRefs(doc *openapi3.T, t reflect.Type) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || doc.Components.Schemas[t.Name()] == nil {
		return
	}
	nullableProps(doc, doc.Components.Schemas[t.Name()].Value.Properties, t)
}

// nullableProps marks the nullable references among a struct's properties, those
// of its embedded structs included (their fields are the struct's own on the wire).
func nullableProps(doc *openapi3.T, props openapi3.Schemas, t reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			nullableProps(doc, props, f.Type)
			continue
		}
		nullableRefs(doc, f.Type)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		p := props[name]
		if p == nil || p.Ref == "" || f.Type.Kind() != reflect.Pointer || strings.Contains(opts, "omitempty") {
			continue
		}
		props[name] = &openapi3.SchemaRef{Value: &openapi3.Schema{AllOf: openapi3.SchemaRefs{{Ref: p.Ref}}, Nullable: true}}
	}
}

// requiredFields are the JSON fields of a struct that are always present: no
// omitempty, and not a field whose absence means something (NullableInt).
func requiredFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			out = append(out, requiredFields(f.Type)...)
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" || name == "" || strings.Contains(opts, "omitempty") {
			continue
		}
		if _, ok := nullableOf(f.Type); ok { // absent means something
			continue
		}
		out = append(out, name)
	}
	return out
}
