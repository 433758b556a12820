package httpapi_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/streamspec"
)

// TestAsyncAPIDescribesBothStreams: /asyncapi.json is an AsyncAPI 3 document with a
// channel per subject of both streams, a message per event type whose payload is the
// committed schema of that type, and no $ref that does not resolve.
func TestAsyncAPIDescribesBothStreams(t *testing.T) {
	h := start(t)
	r := h.call("", "GET", "/asyncapi.json", nil)
	h.expect(r, 200, "")
	var doc map[string]any
	if err := json.Unmarshal(r.Raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["asyncapi"] != "3.0.0" {
		t.Fatalf("asyncapi %v", doc["asyncapi"])
	}
	addresses := map[string]bool{}
	for _, c := range doc["channels"].(map[string]any) {
		addresses[c.(map[string]any)["address"].(string)] = true
	}
	messages := doc["components"].(map[string]any)["messages"].(map[string]any)
	byType := map[string]map[string]any{}
	for _, m := range messages {
		byType[m.(map[string]any)["name"].(string)] = m.(map[string]any)
	}
	for _, e := range streamspec.Catalog {
		if !addresses[e.Subject] {
			t.Errorf("no channel for %s", e.Subject)
		}
		m, ok := byType[e.Type]
		if !ok {
			t.Errorf("no message for %s", e.Type)
			continue
		}
		raw, err := streamspec.Schema(e.Type)
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		_ = json.Unmarshal(raw, &want)
		delete(want, "$schema")
		if !reflect.DeepEqual(m["payload"], want) {
			t.Errorf("%s: payload is not the committed schema", e.Type)
		}
	}
	if len(byType) != len(streamspec.Catalog) {
		t.Errorf("%d messages for %d event types", len(byType), len(streamspec.Catalog))
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && !resolves(doc, ref) {
				t.Errorf("$ref %s does not resolve", ref)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

func resolves(doc map[string]any, ref string) bool {
	if !strings.HasPrefix(ref, "#/") {
		return false
	}
	var cur any = doc
	for _, part := range strings.Split(ref[2:], "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}
