package commands

import (
	"context"
	"fmt"
	"strconv"

	"github.com/keyledger/keyledger/domain"
)

// MaxBatchKeys is the largest Search batch: one atomic append of one event per key.
const MaxBatchKeys = 1000

// CreateSearchKeyBatch creates Count Search keys in one atomic append: all or none.
type CreateSearchKeyBatch struct {
	Caller      Caller
	Idempotency Idempotency
	WorkspaceID string
	Count       int
	// Exactly one of NamePrefix (names prefix-1…prefix-N) and Names (len == Count).
	NamePrefix *string
	Names      []string
	Allowlist  []string
	// RateLimit is nil for unlimited keys.
	RateLimit *RateLimit
}

// RateLimit is the QPS of a batch: Mode "uniform" (QPS for all) or "individual"
// (QPSList[i] for key i, len == Count).
type RateLimit struct {
	Mode string
	QPS  *int
	// QPSList holds one limit per key; nil leaves that key unlimited.
	QPSList []*int
}

// CreateSearchKeyBatch handles the command.
func (a *App) CreateSearchKeyBatch(ctx context.Context, cmd CreateSearchKeyBatch) (CreatedAPIKeys, error) {
	specs, err := cmd.validate()
	if err != nil {
		return CreatedAPIKeys{}, err
	}
	return a.idempotentKeys(ctx, cmd.Caller, cmd.Idempotency, cmd.WorkspaceID, specs, true)
}

func (cmd CreateSearchKeyBatch) validate() ([]keySpec, error) {
	var verr domain.ValidationError
	if cmd.Count < 1 || cmd.Count > MaxBatchKeys {
		verr.Add("count", "out_of_range", fmt.Sprintf("must be between 1 and %d", MaxBatchKeys))
		return nil, &verr
	}
	allow, err := domain.ParseAllowlist(cmd.Allowlist)
	verr.Merge("allowlist", err)

	names := make([]string, cmd.Count)
	switch {
	case cmd.NamePrefix != nil && cmd.Names != nil:
		verr.Add("naming", "ambiguous", "give either prefix or names, not both")
	case cmd.NamePrefix != nil:
		p, err := domain.ParseName("naming.prefix", *cmd.NamePrefix)
		if err != nil {
			verr.Merge("", err)
		} else {
			for i := range names {
				names[i] = p + "-" + strconv.Itoa(i+1)
			}
			if _, err := domain.ParseName("naming.prefix", names[len(names)-1]); err != nil {
				verr.Add("naming.prefix", "too_long", fmt.Sprintf("%q-%d would exceed %d characters", p, cmd.Count, domain.MaxNameLen))
			}
		}
	case cmd.Names != nil:
		if len(cmd.Names) != cmd.Count {
			verr.Add("naming.names", "count_mismatch", fmt.Sprintf("has %d names, count is %d", len(cmd.Names), cmd.Count))
			break
		}
		seen := map[string]int{}
		for i, raw := range cmd.Names {
			field := "naming.names[" + strconv.Itoa(i) + "]"
			n, err := domain.ParseName(field, raw)
			if err != nil {
				verr.Merge("", err)
				continue
			}
			key := domain.NameKey(n) // names that look alike are one
			if j, dup := seen[key]; dup {
				verr.Add(field, "duplicate_entry", fmt.Sprintf("%q is name %d again (names are compared without case, spacing or variation selectors)", n, j))
			}
			seen[key], names[i] = i, n
		}
	default:
		verr.Add("naming", "required", "give a prefix or a list of names")
	}

	qps := make([]domain.QPS, cmd.Count)
	var rl RateLimit
	mode := domain.RateUnlimited
	if cmd.RateLimit != nil {
		rl = *cmd.RateLimit
		var err error
		mode, err = domain.ParseRateMode(rl.Mode)
		verr.Merge("", err)
	}
	switch mode {
	case domain.RateUniform:
		if rl.QPSList != nil {
			verr.Add("rate_limit.qps_list", "not_applicable", "uniform mode takes one qps, not a list")
		}
		if rl.QPS == nil {
			verr.Add("rate_limit.qps", "required", "uniform mode needs one qps")
			break
		}
		q, err := domain.ParseQPS("rate_limit.qps", rl.QPS)
		verr.Merge("", err)
		for i := range qps {
			qps[i] = q
		}
	case domain.RateIndividual:
		if rl.QPS != nil {
			verr.Add("rate_limit.qps", "not_applicable", "individual mode takes qps_list, not one qps")
		}
		if len(rl.QPSList) != cmd.Count {
			verr.Add("rate_limit.qps_list", "count_mismatch", fmt.Sprintf("has %d limits, count is %d", len(rl.QPSList), cmd.Count))
			break
		}
		for i := range rl.QPSList {
			q, err := domain.ParseQPS("rate_limit.qps_list["+strconv.Itoa(i)+"]", rl.QPSList[i])
			verr.Merge("", err)
			qps[i] = q
		}
	}
	if err := verr.Err(); err != nil {
		return nil, err
	}
	specs := make([]keySpec, cmd.Count)
	for i := range specs {
		specs[i] = keySpec{businessType: domain.BusinessSearch, name: names[i], allowlist: allow, qps: qps[i]}
	}
	return specs, nil
}
