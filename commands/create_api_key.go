package commands

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// CreateAPIKey creates one MaaS or Search key with a generated secret.
type CreateAPIKey struct {
	Caller       Caller
	Idempotency  Idempotency
	WorkspaceID  string
	BusinessType string
	// Name applies to Search keys; nil gets a default ("search-key-N"), an empty
	// one is refused (required).
	Name      *string
	Allowlist []string
	Note      *string
	// QPSLimit applies to Search keys; nil is unlimited.
	QPSLimit *int
}

// CreateAPIKey handles the command.
func (a *App) CreateAPIKey(ctx context.Context, cmd CreateAPIKey) (CreatedAPIKeys, error) {
	spec, err := cmd.validate()
	if err != nil {
		return CreatedAPIKeys{}, err
	}
	return a.idempotentKeys(ctx, cmd.Caller, cmd.Idempotency, cmd.WorkspaceID, []keySpec{spec}, false)
}

func (cmd CreateAPIKey) validate() (keySpec, error) {
	var verr domain.ValidationError
	var spec keySpec
	bt, err := domain.ParseBusinessType(cmd.BusinessType)
	verr.Merge("", err)
	spec.businessType = bt
	spec.allowlist, err = domain.ParseAllowlist(cmd.Allowlist)
	verr.Merge("allowlist", err)
	if cmd.Note != nil {
		spec.note, err = domain.ParseText("note", *cmd.Note, domain.MaxNoteLen)
		verr.Merge("", err)
	}
	switch bt {
	case domain.BusinessSearch:
		if cmd.Name != nil {
			spec.name, err = domain.ParseName("name", *cmd.Name)
			verr.Merge("", err)
		}
		spec.qps, err = domain.ParseQPS("qps_limit", cmd.QPSLimit)
		verr.Merge("", err)
	case domain.BusinessMaaS:
		if cmd.Name != nil {
			verr.Add("name", "not_applicable", "only Search keys have a name")
		}
		if cmd.QPSLimit != nil {
			verr.Add("qps_limit", "not_applicable", "only Search keys have a QPS limit")
		}
	}
	return spec, verr.Err()
}
