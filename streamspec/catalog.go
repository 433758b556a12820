// Package streamspec is the published contract of keyledger's two streams, the
// one billing teams and auditors code against: every event type with the Go type
// of its payload, the JSON Schema generated from that type (committed under
// docs/events/, checked by tests against what is really published) and the
// AsyncAPI 3 document served at /asyncapi.json.
package streamspec

import (
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// Entry is one event type of a stream.
type Entry struct {
	Type    string       // the ce-type
	Stream  string       // KEYLEDGER_EVENTS or KEYLEDGER_USAGE
	Subject string       // the subject pattern its messages are published on
	Summary string       // one line for the documents
	Payload domain.Event // a zero value of the payload's Go type
}

const (
	orgSubject = "keyledger.events.organization.{organization_id}"
	wsSubject  = "keyledger.events.workspace.{workspace_id}"
	cpSubject  = "keyledger.events.checkpoint.{organization_id}"
	// AuditSubject is the subject pattern of the audit stream's records.
	AuditSubject = "keyledger.audit.{organization_id}"
	// UsageSubject is the subject pattern of usage records.
	UsageSubject = "keyledger.usage.{organization_id}.{workspace_id}"
)

func org(typ, summary string, payload domain.Event) Entry {
	return Entry{Type: typ, Stream: eventstore.EventsStream, Subject: orgSubject, Summary: summary, Payload: payload}
}

func ws(typ, summary string, payload domain.Event) Entry {
	return Entry{Type: typ, Stream: eventstore.EventsStream, Subject: wsSubject, Summary: summary, Payload: payload}
}

// Catalog lists every event type keyledger publishes, in the order of the docs.
var Catalog = []Entry{
	org(domain.TypeOrganizationCreated, "An organization opened with its primary account.", domain.OrganizationCreated{}),
	org(domain.TypeAccountCreated, "A sub-account was created.", domain.AccountCreated{}),
	org(domain.TypeAccountDisabled, "A sub-account was disabled: every credential of it stops.", domain.AccountDisabled{}),
	org(domain.TypeAccountEnabled, "A sub-account was enabled again.", domain.AccountEnabled{}),
	org(domain.TypeAccessKeyCreated, "An account got its access key (AK).", domain.AccessKeyCreated{}),
	org(domain.TypeAccessKeyDisabled, "An access key was disabled.", domain.AccessKeyDisabled{}),
	org(domain.TypeAccessKeyEnabled, "An access key was enabled again.", domain.AccessKeyEnabled{}),
	org(domain.TypeAccessKeyDeleted, "An access key was deleted for good.", domain.AccessKeyDeleted{}),
	org(domain.TypeAccessKeyRotated, "An access key was replaced by a new one; the old secret works until previous_until, then is deleted.", domain.AccessKeyRotated{}),
	org(domain.TypeRoleCreated, "A role was created; its permissions and users follow in the same append.", domain.RoleCreated{}),
	org(domain.TypeRoleRenamed, "A role was renamed.", domain.RoleRenamed{}),
	org(domain.TypeRoleDeleted, "A role was deleted; its users lose what it granted.", domain.RoleDeleted{}),
	org(domain.TypePermissionGranted, "A permission (module:action) was granted to a role.", domain.PermissionGranted{}),
	org(domain.TypePermissionRevoked, "A permission was revoked from a role.", domain.PermissionRevoked{}),
	org(domain.TypeRoleUserIncluded, "An account was included in a role.", domain.RoleUserIncluded{}),
	org(domain.TypeRoleUserExcluded, "An account was excluded from a role.", domain.RoleUserExcluded{}),
	org(domain.TypeRoleWorkspaceAdded, "A role now authorizes its accounts on a workspace.", domain.RoleWorkspaceAdded{}),
	org(domain.TypeRoleWorkspaceRemoved, "A role no longer authorizes its accounts on a workspace.", domain.RoleWorkspaceRemoved{}),
	ws(domain.TypeWorkspaceCreated, "A workspace was created in an organization.", domain.WorkspaceCreated{}),
	ws(domain.TypeWorkspaceUpdated, "A workspace was renamed or its description changed.", domain.WorkspaceUpdated{}),
	ws(domain.TypeMemberAuthorized, "An account was authorized on the workspace.", domain.MemberAuthorized{}),
	ws(domain.TypeMemberRevoked, "An account's authorization on the workspace was revoked.", domain.MemberRevoked{}),
	ws(domain.TypeAPIKeyCreated, "An API key was created (secret material opaque).", domain.APIKeyCreated{}),
	ws(domain.TypeAPIKeyUpdated, "An API key's editable state after an edit.", domain.APIKeyUpdated{}),
	ws(domain.TypeAPIKeyDeleted, "An API key was deleted for good; its past usage stays billed.", domain.APIKeyDeleted{}),
	ws(domain.TypeAPIKeyRevealed, "An API key's plaintext was revealed (audit).", domain.APIKeyRevealed{}),
	ws(domain.TypeAPIKeysExported, "The key list (masked) was exported, with this filter and these columns.", domain.APIKeysExported{}),
	{
		Type: domain.TypeCheckpointSigned, Stream: eventstore.EventsStream, Subject: cpSubject,
		Summary: "A signed checkpoint of the organization's audit log (tree size, root hash, C2SP signed note, the tree's border to resume from); not a leaf itself.",
		Payload: domain.CheckpointSigned{},
	},
	{
		Type: domain.TypeCallRefused, Stream: eventstore.AuditStream, Subject: AuditSubject,
		Summary: "A management call refused with 401 or 403 (organization_id \"anonymous\" before authentication); kept for the audit retention, not in the log.",
		Payload: domain.CallRefused{},
	},
	{
		Type: domain.TypeResponseReplayed, Stream: eventstore.AuditStream, Subject: AuditSubject,
		Summary: "A retried request answered again from its idempotency record; kept for the audit retention, not in the log.",
		Payload: domain.ResponseReplayed{},
	},
	{
		Type: domain.EventTypeUsageRecorded, Stream: eventstore.UsageStream, Subject: UsageSubject,
		Summary: "One billable call, attributed as the log stood at the call's time.",
		Payload: domain.UsageRecorded{},
	},
}

// Lookup finds the entry of a ce-type.
func Lookup(eventType string) (Entry, bool) {
	for _, e := range Catalog {
		if e.Type == eventType {
			return e, true
		}
	}
	return Entry{}, false
}

// Headers are the CloudEvents (binary mode) headers of every message, with whether
// each is always present and what it means.
var Headers = []Header{
	{eventstore.HeaderSpecVersion, true, `Always "1.0".`},
	{eventstore.HeaderID, true, "The event's unique id; equal to Nats-Msg-Id. Deduplicate by it."},
	{eventstore.HeaderSource, true, "The keyledger deployment that published the event."},
	{eventstore.HeaderType, true, "The event type; selects the payload's schema."},
	{eventstore.HeaderTime, true, "When keyledger published the event (RFC 3339, UTC)."},
	{eventstore.HeaderSubject, true, "The aggregate id (events) or the record id (usage)."},
	{eventstore.HeaderContentType, true, `Always "application/json".`},
	{eventstore.HeaderOrgID, false, "The organization; on every usage record and every event of a request."},
	{eventstore.HeaderWorkspaceID, false, "The workspace, when the event concerns one."},
	{eventstore.HeaderActor, false, "The account that caused the event (events only)."},
	{eventstore.HeaderCredential, false, "The credential id of the request that caused it (events only)."},
	{eventstore.HeaderSourceIP, false, "The client IP of that request (events only)."},
	{eventstore.HeaderRequestID, false, "The server's request id (events only)."},
	{eventstore.HeaderClientRequestID, false, "The client's own X-Request-Id, when it sent one."},
}

// Header is one message header of the contract.
type Header struct {
	Name    string
	Always  bool
	Meaning string
}
