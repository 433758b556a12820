package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"

	"github.com/keyledger/keyledger/domain"
)

// The kinds of break an export can show.
const (
	BreakMalformed          = "malformed"             // a line that is not an event
	BreakOutOfOrder         = "out_of_order"          // a log position not after the previous line's
	BreakLeafGap            = "leaf_gap"              // a leaf index not following the previous one
	BreakForgedCheckpoint   = "forged_checkpoint"     // a checkpoint whose signature or content does not verify
	BreakCheckpointMissing  = "checkpoint_missing"    // a checkpoint names a previous one the export lacks
	BreakCheckpointReversed = "checkpoint_reversed"   // a checkpoint smaller than an earlier one
	BreakFork               = "fork"                  // two checkpoints of one size with different roots
	BreakRootMismatch       = "root_mismatch"         // the events do not reproduce a checkpoint's root
	BreakEventsMissing      = "events_missing"        // a checkpoint covers more events than the export holds
	BreakOriginMismatch     = "origin_mismatch"       // a checkpoint of another log
	BreakOrganizationMixed  = "organization_mismatch" // an event of another organization
	BreakNotFromStart       = "not_from_start"        // a whole export whose first leaf is not the tree's first
)

// Break is one place where an export departs from what its checkpoints sign.
type Break struct {
	Kind string `json:"kind"`
	// Line is the export's line (from 1); Position the log position on it, if any.
	Line     int    `json:"line"`
	Position uint64 `json:"position,omitempty"`
	// From and To bound the leaves concerned (To excluded), when the break is about
	// a range of them (a root that does not match: one of them changed, or one was
	// inserted, removed or moved).
	From   uint64 `json:"from_leaf,omitempty"`
	To     uint64 `json:"to_leaf,omitempty"`
	Detail string `json:"detail"`
}

func (b Break) String() string {
	return fmt.Sprintf("line %d (position %d): %s: %s", b.Line, b.Position, b.Kind, b.Detail)
}

// Report is the outcome of a verification.
type Report struct {
	Organization string  `json:"organization"`
	Events       int     `json:"events"`
	Checkpoints  int     `json:"checkpoints"`
	Verified     uint64  `json:"verified_leaves"` // leaves covered by the last checkpoint whose root the events reproduce
	Breaks       []Break `json:"breaks"`
}

// OK says whether the export verified without a break.
func (r Report) OK() bool { return len(r.Breaks) == 0 }

// verification is the state of one pass over an export.
type verification struct {
	known      note.Verifiers
	partial    bool // the export may start after the tree's first leaf
	report     Report
	line       int
	position   uint64
	first      *uint64 // leaf index of the export's first event
	leaves     uint64  // events seen
	roots      [][]byte
	origin     string
	lastSize   uint64 // size of the last checkpoint seen
	seen       bool   // a checkpoint was seen
	matched    uint64 // size of the last checkpoint whose root the events reproduced
	bySize     map[uint64][]byte
	pending    []pendingCheckpoint
	rangeState *rangeState
}

type pendingCheckpoint struct {
	line     int
	position uint64
	cp       Checkpoint
}

// Verify checks a whole export (NDJSON lines as FromRecord writes them, the
// organization's checkpoints among its events, from its tree's first leaf) against
// the verifier keys, entirely offline: every checkpoint's signature and chain, that
// the events reproduce each checkpoint's root (so each later checkpoint is
// consistent with the earlier ones), that positions increase and leaf indices
// follow each other. It reports every break with its line and position; an error
// is only a reading failure. Each line is read strictly: a member given twice, or
// in another case, or unknown, is a malformed line (readers would differ on it).
func Verify(r io.Reader, known note.Verifiers) (Report, error) { return verify(r, known, false) }

// VerifyPartial is Verify for an export that starts after a position: its roots
// cannot be rebuilt, so it checks order, signatures and chaining only. A whole
// export passed off as a partial one (its leaf indices shifted) verifies here: an
// auditor who exported the whole history uses Verify.
func VerifyPartial(r io.Reader, known note.Verifiers) (Report, error) { return verify(r, known, true) }

func verify(r io.Reader, known note.Verifiers, partial bool) (Report, error) {
	v := &verification{known: known, partial: partial, bySize: map[uint64][]byte{}, rangeState: &rangeState{r: Ranges.NewEmptyRange(0)}, report: Report{Breaks: []Break{}}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		v.line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var e Event
		if err := jsonv2.Unmarshal(sc.Bytes(), &e, jsonv2.RejectUnknownMembers(true)); err != nil {
			v.fail(Break{Kind: BreakMalformed, Detail: err.Error()})
			continue
		}
		v.event(e)
	}
	if err := sc.Err(); err != nil {
		return v.report, err
	}
	for _, p := range v.pending {
		v.report.Breaks = append(v.report.Breaks, Break{Kind: BreakEventsMissing, Line: p.line, Position: p.position, From: v.leaves, To: p.cp.Size,
			Detail: fmt.Sprintf("the checkpoint covers %d events, the export holds %d", p.cp.Size, v.leaves)})
	}
	return v.report, nil
}

func (v *verification) fail(b Break) {
	b.Line = v.line
	if b.Position == 0 {
		b.Position = v.position
	}
	v.report.Breaks = append(v.report.Breaks, b)
}

func (v *verification) event(e Event) {
	if e.Position <= v.position && v.line > 1 {
		v.fail(Break{Kind: BreakOutOfOrder, Position: e.Position, Detail: fmt.Sprintf("position %d after %d", e.Position, v.position)})
	}
	v.position = max(v.position, e.Position)
	org := e.OrgID
	if e.Type == domain.TypeCheckpointSigned {
		org = e.Subject
	}
	if v.report.Organization == "" {
		v.report.Organization = org
	} else if org != v.report.Organization {
		v.fail(Break{Kind: BreakOrganizationMixed, Position: e.Position, Detail: fmt.Sprintf("an event of %q in the export of %q", org, v.report.Organization)})
		return
	}
	if e.Type == domain.TypeCheckpointSigned {
		v.checkpoint(e)
		return
	}
	v.leaf(e)
}

func (v *verification) leaf(e Event) {
	v.report.Events++
	if e.LeafIndex == nil {
		v.fail(Break{Kind: BreakMalformed, Position: e.Position, Detail: "an event without a leaf index"})
		return
	}
	if v.first == nil {
		first := *e.LeafIndex
		v.first = &first
		if first != 0 && !v.partial {
			v.fail(Break{Kind: BreakNotFromStart, Position: e.Position, From: 0, To: first,
				Detail: fmt.Sprintf("the first event is leaf %d: the roots cannot be rebuilt without the leaves before it (verify a partial export as one)", first)})
		}
	} else if want := *v.first + v.leaves; *e.LeafIndex != want {
		v.fail(Break{Kind: BreakLeafGap, Position: e.Position, From: min(want, *e.LeafIndex), To: max(want, *e.LeafIndex),
			Detail: fmt.Sprintf("leaf index %d where %d was due", *e.LeafIndex, want)})
	}
	h, err := e.LeafHash()
	if err != nil {
		v.fail(Break{Kind: BreakMalformed, Position: e.Position, Detail: err.Error()})
		h = Hasher.HashLeaf(nil)
	}
	v.leaves++
	v.roots = append(v.roots, v.rangeState.append(h))
	for len(v.pending) > 0 && v.pending[0].cp.Size <= v.size() {
		p := v.pending[0]
		v.pending = v.pending[1:]
		v.compare(p)
	}
}

// size is the tree size the events seen so far reach.
func (v *verification) size() uint64 {
	if v.first == nil {
		return 0
	}
	return *v.first + v.leaves
}

func (v *verification) checkpoint(e Event) {
	v.report.Checkpoints++
	var data domain.CheckpointSigned
	if err := json.Unmarshal(e.Data, &data); err != nil {
		v.fail(Break{Kind: BreakMalformed, Position: e.Position, Detail: "checkpoint data: " + err.Error()})
		return
	}
	cp, err := OpenCheckpoint([]byte(data.Note), v.known, "")
	if err != nil {
		v.fail(Break{Kind: BreakForgedCheckpoint, Position: e.Position, Detail: err.Error()})
		return
	}
	if cp.Size != data.Size || !bytes.Equal(cp.Root, data.RootHash) {
		v.fail(Break{Kind: BreakForgedCheckpoint, Position: e.Position, Detail: "the event's size or root differs from its signed note"})
		return
	}
	if !strings.HasSuffix(cp.Origin, "/"+e.Subject) || v.origin != "" && cp.Origin != v.origin {
		v.fail(Break{Kind: BreakOriginMismatch, Position: e.Position, Detail: fmt.Sprintf("checkpoint of %q", cp.Origin)})
		return
	}
	v.origin = cp.Origin
	if root, ok := v.bySize[cp.Size]; ok && !bytes.Equal(root, cp.Root) {
		v.fail(Break{Kind: BreakFork, Position: e.Position, Detail: fmt.Sprintf("two checkpoints of size %d with different roots", cp.Size)})
	}
	v.bySize[cp.Size] = cp.Root
	switch {
	case v.seen && cp.Size < v.lastSize:
		v.fail(Break{Kind: BreakCheckpointReversed, Position: e.Position, Detail: fmt.Sprintf("size %d after %d", cp.Size, v.lastSize)})
	case (v.seen || v.first != nil && *v.first == 0) && cp.Previous != v.lastSize && cp.Size != v.lastSize:
		v.fail(Break{Kind: BreakCheckpointMissing, Position: e.Position,
			Detail: fmt.Sprintf("it follows the checkpoint of size %d, which the export lacks (last seen: %d)", cp.Previous, v.lastSize)})
	}
	v.seen, v.lastSize = true, max(v.lastSize, cp.Size)
	p := pendingCheckpoint{line: v.line, position: e.Position, cp: cp}
	if cp.Size <= v.size() {
		v.compare(p)
	} else {
		v.pending = append(v.pending, p)
	}
}

// compare checks a checkpoint's root against the root the events give.
func (v *verification) compare(p pendingCheckpoint) {
	if v.first == nil || *v.first != 0 {
		return // an export that does not start at the first leaf cannot rebuild roots
	}
	if p.cp.Size == 0 {
		return
	}
	if bytes.Equal(v.roots[p.cp.Size-1], p.cp.Root) {
		v.matched = max(v.matched, p.cp.Size)
		v.report.Verified = v.matched
		return
	}
	v.report.Breaks = append(v.report.Breaks, Break{Kind: BreakRootMismatch, Line: p.line, Position: p.position, From: v.matched, To: p.cp.Size,
		Detail: fmt.Sprintf("the events do not reproduce the root of the checkpoint of size %d: one of leaves %d to %d was changed, inserted, removed or moved",
			p.cp.Size, v.matched, p.cp.Size-1)})
}

// rangeState is the compact range of the leaves seen, giving the root after each.
type rangeState struct{ r *compact.Range }

func (s *rangeState) append(leafHash []byte) []byte {
	_ = s.r.Append(leafHash, nil) // appending to a range that starts at 0 cannot fail
	root, _ := s.r.GetRootHash(nil)
	return root
}
