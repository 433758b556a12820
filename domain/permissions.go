package domain

import (
	"fmt"
	"slices"
	"strings"
)

// Module is a part of the product that permissions are granted on.
type Module string

// Action is what a permission allows on a module.
type Action string

// The modules and actions. Their strings are on the wire and in the log.
const (
	ModuleAPIKey    Module = "api_key"
	ModuleWorkspace Module = "workspace"
	// ModuleAccessKey governs an account's own access key.
	ModuleAccessKey Module = "access_key"
	// ModuleAccount governs seeing the organization's other accounts (read only:
	// managing accounts stays organization administration).
	ModuleAccount Module = "account"
	// ModuleCost governs reading costs (workspace costs also need membership).
	ModuleCost Module = "cost"
	// ModuleAudit governs reading the organization's audit history, its raw events
	// and its proofs.
	ModuleAudit Module = "audit"
	// ModuleOrganization is not grantable: its one permission, "admin" (accounts,
	// roles, other accounts' access keys), belongs to the primary account alone.
	ModuleOrganization Module = "organization"

	ActionRead   Action = "read"
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
	ActionAdmin  Action = "admin"
)

// Permission is one grantable item: an action on a module.
type Permission struct {
	Module Module
	Action Action
}

// String is "module:action", the form in the log and in 403 answers.
func (p Permission) String() string { return string(p.Module) + ":" + string(p.Action) }

// PermOrganizationAdmin is the primary account's own permission.
var PermOrganizationAdmin = Permission{ModuleOrganization, ActionAdmin}

var grantable = map[Module][]Action{
	ModuleAPIKey:    {ActionRead, ActionCreate, ActionUpdate, ActionDelete},
	ModuleWorkspace: {ActionRead, ActionCreate, ActionUpdate, ActionDelete},
	ModuleAccessKey: {ActionRead, ActionCreate, ActionUpdate, ActionDelete},
	ModuleAccount:   {ActionRead},
	ModuleCost:      {ActionRead},
	ModuleAudit:     {ActionRead},
}

// GrantableModules lists the modules roles may grant, in a stable order.
func GrantableModules() []Module {
	return []Module{ModuleAPIKey, ModuleWorkspace, ModuleAccessKey, ModuleAccount, ModuleCost, ModuleAudit}
}

// AllPermissions is what the primary account holds: every grantable item and
// organization:admin.
func AllPermissions() []Permission {
	var out []Permission
	for _, m := range GrantableModules() {
		for _, a := range grantable[m] {
			out = append(out, Permission{m, a})
		}
	}
	return append(out, PermOrganizationAdmin)
}

// ActionsOf lists the grantable actions of a module.
func ActionsOf(m Module) []Action { return grantable[m] }

// ParsePermission accepts a grantable "module:action".
func ParsePermission(s string) (Permission, error) {
	m, a, ok := strings.Cut(s, ":")
	if ok && slices.Contains(grantable[Module(m)], Action(a)) {
		return Permission{Module(m), Action(a)}, nil
	}
	return Permission{}, fmt.Errorf("%s is not a grantable permission (module:action: api_key, workspace or access_key with read, create, update or delete; or account:read, cost:read, audit:read)", quoteInput(s))
}

// ForbiddenError: the caller is in the right organization but lacks a permission
// (or is not a member of the workspace). It names what is missing (403).
type ForbiddenError struct {
	Missing   Permission
	NotMember bool
	// SelfGrant: a sub-account tried to make itself a direct member (what a role
	// authorizes would then outlive the role).
	SelfGrant bool
	// PreviousSecret: the caller holds a secret rotated out, in its grace period,
	// which keeps its holder working but manages no access key (a leaked one
	// would otherwise lock the owner out).
	PreviousSecret bool
}

func (e *ForbiddenError) Error() string {
	if e.PreviousSecret {
		return "forbidden: a secret rotated out, in its grace period, cannot manage access keys; use the current secret"
	}
	if e.SelfGrant {
		return "forbidden: an account cannot make itself a direct member of a workspace"
	}
	if e.NotMember {
		return "forbidden: not a member of this workspace"
	}
	return "forbidden: missing permission " + e.Missing.String()
}
