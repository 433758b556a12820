package streamspec

import (
	"embed"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/invopop/jsonschema"

	"github.com/keyledger/keyledger/domain"
)

// SchemaDir holds the committed schemas, one per event type, named by SchemaFile.
const SchemaDir = "schemas"

//go:embed schemas/*.json
var committed embed.FS

// SchemaFile is the file name of an event type's schema.
func SchemaFile(eventType string) string { return eventType + ".schema.json" }

// SchemaURL is the $id of an event type's schema.
func SchemaURL(eventType string) string {
	return "https://keyledger.dev/schemas/" + SchemaFile(eventType)
}

// opaque names the fields whose content is secret material a consumer must treat
// as opaque bytes: never parse, log or forward them.
var opaque = map[string]string{
	"secret_hash": "Opaque: a keyed hash of the secret, meaningful only to keyledger. Never log or forward it.",
	"sealed":      "Opaque: the sealed secret (base64), unreadable without keys that never enter the stream; after the key's deletion unreadable forever.",
}

// Generate reflects the JSON Schema (draft 2020-12) of an event type from its Go
// payload type: what tests compare with the committed file.
func Generate(e Entry) ([]byte, error) {
	r := jsonschema.Reflector{
		DoNotReference: true,
		ExpandedStruct: true,
		// Consumers must accept fields added later within the same version.
		AllowAdditionalProperties: true,
		Mapper:                    mapType,
	}
	s := r.Reflect(e.Payload)
	s.ID = jsonschema.ID(SchemaURL(e.Type))
	s.Title = e.Type
	s.Description = e.Summary
	for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
		if d, ok := opaque[pair.Key]; ok {
			pair.Value.Description = d
		}
	}
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("schema of %s: %w", e.Type, err)
	}
	return append(out, '\n'), nil
}

// mapType gives the domain's value types their wire form.
func mapType(t reflect.Type) *jsonschema.Schema {
	switch t {
	case reflect.TypeFor[domain.BusinessType]():
		return &jsonschema.Schema{Type: "string", Enum: []any{string(domain.BusinessMaaS), string(domain.BusinessSearch)}}
	case reflect.TypeFor[domain.QPS]():
		return &jsonschema.Schema{Type: "integer", Minimum: json.Number("0")}
	}
	return nil
}

// Schema is the committed schema of an event type.
func Schema(eventType string) ([]byte, error) {
	return committed.ReadFile(SchemaDir + "/" + SchemaFile(eventType))
}

// schemaObject is a committed schema decoded, for embedding in other documents.
func schemaObject(eventType string) (map[string]any, error) {
	raw, err := Schema(eventType)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// messageName is an event type's name in the AsyncAPI document.
func messageName(eventType string) string {
	return strings.NewReplacer(".", "_").Replace(strings.TrimPrefix(eventType, "keyledger."))
}
