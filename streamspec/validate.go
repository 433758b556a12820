package streamspec

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/keyledger/keyledger/eventstore"
)

var (
	compileOnce sync.Once
	compiled    map[string]*jsonschema.Schema
	declared    map[string]map[string]bool // the properties each schema declares
	compileErr  error
)

func compile() {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.AssertContent()
	compiled = map[string]*jsonschema.Schema{}
	declared = map[string]map[string]bool{}
	for _, e := range Catalog {
		raw, err := Schema(e.Type)
		if err != nil {
			compileErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			compileErr = err
			return
		}
		if err := c.AddResource(SchemaURL(e.Type), doc); err != nil {
			compileErr = err
			return
		}
		if compiled[e.Type], err = c.Compile(SchemaURL(e.Type)); err != nil {
			compileErr = err
			return
		}
		declared[e.Type] = map[string]bool{}
		if props, ok := doc.(map[string]any)["properties"].(map[string]any); ok {
			for p := range props {
				declared[e.Type][p] = true
			}
		}
	}
}

// Conforms checks one message as it was really published against the contract: a
// catalogued ce-type on its stream's subjects, every always-present CloudEvents
// header, Nats-Msg-Id (when set) equal to ce-id, and a payload valid under the type's committed
// schema that carries no property the schema does not declare (which a schema
// regenerated from the Go types would have caught).
func Conforms(subject string, h nats.Header, data []byte) error {
	compileOnce.Do(compile)
	if compileErr != nil {
		return compileErr
	}
	typ := h.Get(eventstore.HeaderType)
	e, ok := Lookup(typ)
	if !ok {
		return fmt.Errorf("%s: ce-type %q is not in the catalog", subject, typ)
	}
	var errs []error
	if prefix := e.Subject[:strings.IndexByte(e.Subject, '{')]; !strings.HasPrefix(subject, prefix) {
		errs = append(errs, fmt.Errorf("published outside %s", e.Subject))
	}
	for _, hd := range Headers {
		if hd.Always && h.Get(hd.Name) == "" {
			errs = append(errs, fmt.Errorf("header %s missing", hd.Name))
		}
	}
	if h.Get(eventstore.HeaderSpecVersion) != "1.0" || h.Get(eventstore.HeaderContentType) != "application/json" {
		errs = append(errs, errors.New("ce-specversion must be 1.0 and content-type application/json"))
	}
	if id := h.Get(nats.MsgIdHdr); id != "" && id != h.Get(eventstore.HeaderID) {
		errs = append(errs, errors.New("Nats-Msg-Id differs from ce-id"))
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s %s: payload: %w", subject, typ, err)
	}
	if err := compiled[typ].Validate(doc); err != nil {
		errs = append(errs, err)
	}
	if obj, ok := doc.(map[string]any); ok {
		for k := range obj {
			if !declared[typ][k] {
				errs = append(errs, fmt.Errorf("property %q is not in the schema", k))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s %s: %w", subject, typ, err)
	}
	return nil
}
