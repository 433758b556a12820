package httpapi

import (
	"reflect"
	"regexp"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"
)

var echoParam = regexp.MustCompile(`:([a-z]+)`)

// OpenAPI describes every route of the table, with schemas generated from the Go
// types the handlers decode and encode.
func (s *Server) OpenAPI() *openapi3.T {
	doc := &openapi3.T{
		OpenAPI: "3.0.3",
		Info: &openapi3.Info{Title: "keyledger", Version: "1.0.0",
			Description: "Credentials for model-inference (MaaS) and search APIs, event-sourced."},
		Paths: openapi3.NewPaths(),
		Components: &openapi3.Components{
			SecuritySchemes: openapi3.SecuritySchemes{
				"accessKey": &openapi3.SecuritySchemeRef{Value: openapi3.NewJWTSecurityScheme().WithBearerFormat("access key secret (kla_…)")},
			},
		},
	}
	problem := schemaOf(Problem{})
	for _, r := range s.routes {
		op := openapi3.NewOperation()
		op.OperationID, op.Summary = r.id, r.summary
		for _, m := range echoParam.FindAllStringSubmatch(r.path, -1) {
			op.AddParameter(openapi3.NewPathParameter(m[1]).WithSchema(openapi3.NewStringSchema()).WithRequired(true))
		}
		for _, q := range r.query {
			op.AddParameter(openapi3.NewQueryParameter(q.name).WithDescription(q.description).WithSchema(openapi3.NewStringSchema()))
		}
		for _, h := range r.headers {
			op.AddParameter(openapi3.NewHeaderParameter(h.name).WithDescription(h.description).WithSchema(openapi3.NewStringSchema()))
		}
		if r.request != nil {
			op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).
				WithJSONSchemaRef(schemaOf(r.request))}
		}
		ok := openapi3.NewResponse().WithDescription(strings.ToLower(r.summary))
		if r.response != nil {
			ok.WithJSONSchemaRef(schemaOf(r.response))
		}
		op.AddResponse(r.status, ok)
		errResp := openapi3.NewResponse().WithDescription("problem (RFC 9457)").
			WithContent(openapi3.Content{"application/problem+json": openapi3.NewMediaType().WithSchemaRef(problem)})
		op.Responses.Set("default", &openapi3.ResponseRef{Value: errResp})
		if r.auth {
			op.Security = &openapi3.SecurityRequirements{{"accessKey": []string{}}}
		}
		doc.AddOperation(echoParam.ReplaceAllString(r.path, "{$1}"), r.method, op)
	}
	return doc
}

var (
	nullableIntType = reflect.TypeOf(NullableInt{})
	allowlistType   = reflect.TypeOf(Allowlist{})
)

func schemaOf(v any) *openapi3.SchemaRef {
	ref, err := openapi3gen.NewSchemaRefForValue(v, nil, openapi3gen.SchemaCustomizer(
		func(_ string, t reflect.Type, _ reflect.StructTag, schema *openapi3.Schema) error {
			switch t {
			case nullableIntType:
				*schema = *openapi3.NewIntegerSchema()
				schema.Nullable = true
				schema.Description = "null removes the limit"
			case allowlistType:
				schema.Description = "IPv4/IPv6 addresses and CIDR ranges; a comma-separated string is accepted too"
			}
			return nil
		}))
	if err != nil {
		panic("openapi schema of " + reflect.TypeOf(v).String() + ": " + err.Error())
	}
	return ref
}
