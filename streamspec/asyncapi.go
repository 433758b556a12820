package streamspec

import (
	"encoding/json"
	"fmt"
)

// channels of the AsyncAPI document, one per subject pattern.
var channels = []struct {
	name, address, description string
	params                     map[string]string
}{
	{"organizationEvents", orgSubject,
		"Stream KEYLEDGER_EVENTS: the events of one organization (its accounts, access keys and roles), in order.",
		map[string]string{"organization_id": "The organization (org_…)."}},
	{"workspaceEvents", wsSubject,
		"Stream KEYLEDGER_EVENTS: the events of one workspace (its members and API keys), in order.",
		map[string]string{"workspace_id": "The workspace (ws_…)."}},
	{"auditCheckpoints", cpSubject,
		"Stream KEYLEDGER_EVENTS: the signed checkpoints of one organization's audit log (docs/audit.md), in order.",
		map[string]string{"organization_id": "The organization (org_…)."}},
	{"auditRecords", AuditSubject,
		"Stream KEYLEDGER_AUDIT: the refused calls and replayed answers of one organization, kept for the audit retention.",
		map[string]string{"organization_id": "The organization (org_…), or \"anonymous\" for a call refused before authentication."}},
	{"usage", UsageSubject,
		"Stream KEYLEDGER_USAGE: the usage records of one workspace of an organization.",
		map[string]string{"organization_id": "The organization (org_…).", "workspace_id": "The workspace (ws_…)."}},
}

// AsyncAPI is the AsyncAPI 3.0 document of both streams, built from the catalog and
// the committed schemas: what /asyncapi.json serves.
func AsyncAPI() ([]byte, error) {
	messages := map[string]any{}
	chans := map[string]any{}
	ops := map[string]any{}
	for _, c := range channels {
		refs := map[string]any{}
		var opRefs []any
		for _, e := range Catalog {
			if e.Subject != c.address {
				continue
			}
			schema, err := schemaObject(e.Type)
			if err != nil {
				return nil, fmt.Errorf("asyncapi: %w", err)
			}
			delete(schema, "$schema") // the payload is in AsyncAPI's own schema format
			name := messageName(e.Type)
			messages[name] = map[string]any{
				"name":        e.Type,
				"title":       e.Type,
				"summary":     e.Summary,
				"contentType": "application/json",
				"headers":     map[string]any{"$ref": "#/components/schemas/CloudEventsHeaders"},
				"payload":     schema,
				"correlationId": map[string]any{
					"description": "ce-id: deduplicate by it.",
					"location":    "$message.header#/ce-id",
				},
			}
			refs[name] = map[string]any{"$ref": "#/components/messages/" + name}
			opRefs = append(opRefs, map[string]any{"$ref": "#/channels/" + c.name + "/messages/" + name})
		}
		params := map[string]any{}
		for p, d := range c.params {
			params[p] = map[string]any{"description": d}
		}
		chans[c.name] = map[string]any{
			"address":     c.address,
			"description": c.description,
			"parameters":  params,
			"messages":    refs,
		}
		ops["receive"+upperFirst(c.name)] = map[string]any{
			"action":   "receive",
			"channel":  map[string]any{"$ref": "#/channels/" + c.name},
			"summary":  "Consume " + c.address + " through a durable JetStream consumer (at least once, ordered per subject).",
			"messages": opRefs,
		}
	}
	doc := map[string]any{
		"asyncapi": "3.0.0",
		"info": map[string]any{
			"title":   "keyledger streams",
			"version": "1",
			"description": "The two JetStream streams keyledger publishes: KEYLEDGER_EVENTS (every decision, " +
				"the source of truth) and KEYLEDGER_USAGE (billable calls). CloudEvents 1.0 in binary mode " +
				"(ce-* headers, JSON payload). Delivery is at least once: deduplicate by ce-id. See docs/events.md.",
		},
		"defaultContentType": "application/json",
		"servers": map[string]any{
			"nats": map[string]any{
				"host":        "localhost:4222",
				"protocol":    "nats",
				"description": "The NATS cluster keyledger runs on (JetStream, server 2.12 or later).",
			},
		},
		"channels":   chans,
		"operations": ops,
		"components": map[string]any{
			"messages": messages,
			"schemas":  map[string]any{"CloudEventsHeaders": headersSchema()},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

func headersSchema() map[string]any {
	props := map[string]any{}
	var required []string
	for _, h := range Headers {
		props[h.Name] = map[string]any{"type": "string", "description": h.Meaning}
		if h.Always {
			required = append(required, h.Name)
		}
	}
	props["Nats-Msg-Id"] = map[string]any{"type": "string", "description": "Equal to ce-id (JetStream's duplicate window)."}
	return map[string]any{"type": "object", "properties": props, "required": required}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
