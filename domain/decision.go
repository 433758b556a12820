package domain

import "net/netip"

// CallCode is the stable reason of a data-plane decision (POST /v1/verify).
// Gateways switch on them: never rename one.
type CallCode string

// The decision codes.
const (
	CallValid                    CallCode = "VALID"
	CallMalformed                CallCode = "MALFORMED"
	CallNotFound                 CallCode = "NOT_FOUND"
	CallDeleted                  CallCode = "DELETED"
	CallDisabled                 CallCode = "DISABLED"
	CallIPNotAllowed             CallCode = "IP_NOT_ALLOWED"
	CallWorkspaceMismatch        CallCode = "WORKSPACE_MISMATCH"
	CallProductMismatch          CallCode = "PRODUCT_MISMATCH"
	CallRateLimited              CallCode = "RATE_LIMITED"
	CallNotAuthorizedOnWorkspace CallCode = "NOT_AUTHORIZED_ON_WORKSPACE"
)

// KeyCallCode decides a call made with a known API key as the key stands, the rate
// limit aside: deleted, then the workspace, the product and the caller's address.
// The data plane decides with it from memory, the decision replay from the log.
func KeyCallCode(deleted bool, keyWorkspace string, product BusinessType, allow Allowlist,
	callWorkspace string, called BusinessType, ip netip.Addr) CallCode {
	switch {
	case deleted:
		return CallDeleted
	case keyWorkspace != callWorkspace:
		return CallWorkspaceMismatch
	case product != called:
		return CallProductMismatch
	case !allow.Allows(ip):
		return CallIPNotAllowed
	}
	return CallValid
}

// AccessKeyCallCode decides a call made with a known access key: deleted, then
// disabled (the key or its account), then the workspace, which must be of the key's
// organization with the account a member of it unless primary.
func AccessKeyCallCode(deleted, disabled, workspaceInOrganization, primary, member bool) CallCode {
	switch {
	case deleted:
		return CallDeleted
	case disabled:
		return CallDisabled
	case !workspaceInOrganization, !primary && !member:
		return CallNotAuthorizedOnWorkspace
	}
	return CallValid
}
