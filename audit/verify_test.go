package audit_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/domain"
)

const org = "org_01JAUDITTEST0000000000000"

// exportOf builds the export of an organization's log as the service writes it:
// events, each a leaf, and after every cpEvery of them a checkpoint signed by signer
// over the tree so far.
func exportOf(t *testing.T, signer *audit.Signer, events, cpEvery int) []audit.Event {
	t.Helper()
	var out []audit.Event
	r := audit.Ranges.NewEmptyRange(0)
	pos, previous := uint64(0), uint64(0)
	for i := range events {
		pos += 3 // other organizations' events sit between them
		leaf := uint64(i)
		e := audit.Event{SpecVersion: "1.0", ID: fmt.Sprintf("01JEVENT%018d", i), Source: "keyledger/test", Type: domain.TypeAPIKeyUpdated,
			Subject: "ws_1", Time: time.Date(2026, 12, 7, 10, 0, i, 0, time.UTC).Format(time.RFC3339Nano), DataContentType: "application/json",
			OrgID: org, Actor: "acc_1", RequestID: fmt.Sprintf("req-%d", i), Position: pos, LeafIndex: &leaf,
			Data: json.RawMessage(fmt.Sprintf(`{"key_id":"key_%d","note":"n%d"}`, i, i))}
		h, err := e.LeafHash()
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Append(h, nil); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
		if (i+1)%cpEvery == 0 {
			root, err := r.GetRootHash(nil)
			if err != nil {
				t.Fatal(err)
			}
			pos++
			out = append(out, checkpointEvent(t, signer, pos, r.End(), root, previous))
			previous = r.End()
		}
	}
	return out
}

func checkpointEvent(t *testing.T, signer *audit.Signer, pos, size uint64, root []byte, previous uint64) audit.Event {
	t.Helper()
	signed, err := signer.Sign(audit.Origin("keyledger.test", org), size, root, previous, pos-1)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(domain.CheckpointSigned{Size: size, RootHash: root, Note: signed, At: time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)})
	return audit.Event{SpecVersion: "1.0", ID: fmt.Sprintf("checkpoint-%d", size), Source: "keyledger/test", Type: domain.TypeCheckpointSigned,
		Subject: org, Time: "2026-12-07T11:00:00Z", DataContentType: "application/json", OrgID: org, Position: pos, Data: data}
}

func ndjson(t *testing.T, events []audit.Event) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func newSigner(t *testing.T, name string) (*audit.Signer, note.Verifiers) {
	t.Helper()
	skey, vkey, err := audit.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	if s.VerifierKey() != vkey {
		t.Fatalf("derived verifier key %q, generated %q", s.VerifierKey(), vkey)
	}
	known, err := audit.Verifiers(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, known
}

func verify(t *testing.T, export []byte, known note.Verifiers) audit.Report {
	t.Helper()
	rep, err := audit.Verify(bytes.NewReader(export), known)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// lineOf is the export line (from 1) of the event with the given id.
func lineOf(t *testing.T, events []audit.Event, id string) int {
	t.Helper()
	for i, e := range events {
		if e.ID == id {
			return i + 1
		}
	}
	t.Fatalf("no event %s", id)
	return 0
}

func TestAnUntouchedExportVerifiesClean(t *testing.T) {
	signer, known := newSigner(t, "keyledger.test")
	events := exportOf(t, signer, 100, 10)
	rep := verify(t, ndjson(t, events), known)
	if !rep.OK() || rep.Events != 100 || rep.Checkpoints != 10 || rep.Verified != 100 || rep.Organization != org {
		t.Fatalf("report %+v", rep)
	}
}

func TestACheckpointOfAnotherKeyIsForged(t *testing.T) {
	signer, _ := newSigner(t, "keyledger.test")
	_, otherKnown := newSigner(t, "keyledger.test")
	rep := verify(t, ndjson(t, exportOf(t, signer, 20, 10)), otherKnown)
	if len(rep.Breaks) != 2 || rep.Breaks[0].Kind != audit.BreakForgedCheckpoint || rep.Breaks[0].Line != 11 {
		t.Fatalf("breaks %v", rep.Breaks)
	}
}

func TestRotatedKeysKeepOldCheckpointsVerifiable(t *testing.T) {
	old, _ := newSigner(t, "keyledger.test")
	current, _ := newSigner(t, "keyledger.test")
	events := exportOf(t, old, 20, 10)
	// The checkpoint of size 20 is signed again by the new key after a rotation.
	r := audit.Ranges.NewEmptyRange(0)
	for _, e := range events {
		if e.LeafIndex != nil {
			h, _ := e.LeafHash()
			_ = r.Append(h, nil)
		}
	}
	root, _ := r.GetRootHash(nil)
	events = append(events, checkpointEvent(t, current, 1000, 20, root, 20))
	known, err := audit.Verifiers(old.VerifierKey(), current.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if rep := verify(t, ndjson(t, events), known); !rep.OK() || rep.Checkpoints != 3 {
		t.Fatalf("report %+v", rep)
	}
	onlyNew, _ := audit.Verifiers(current.VerifierKey())
	if rep := verify(t, ndjson(t, events), onlyNew); rep.OK() {
		t.Fatal("checkpoints of a key not given verified")
	}
}

// TestEveryCorruptionIsDetectedWhereItIs corrupts copies of an export in each way an
// operator with write access to the log could, and checks that the verification
// names the break and where it is.
func TestEveryCorruptionIsDetectedWhereItIs(t *testing.T) {
	signer, known := newSigner(t, "keyledger.test")
	clean := exportOf(t, signer, 40, 10) // checkpoints after leaves 10, 20, 30, 40
	ev := func(leaf int) string { return fmt.Sprintf("01JEVENT%018d", leaf) }

	cases := []struct {
		name    string
		corrupt func(es []audit.Event) []audit.Event
		kind    string
		line    func(es []audit.Event) int
		from    uint64
		to      uint64
	}{
		{
			name: "one byte of a payload changed",
			corrupt: func(es []audit.Event) []audit.Event {
				i := lineOf(t, es, ev(14)) - 1
				es[i].Data = json.RawMessage(strings.Replace(string(es[i].Data), "n14", "n15", 1))
				return es
			},
			// The checkpoint of size 20 no longer matches; leaves 10..19 are where to look.
			kind: audit.BreakRootMismatch, line: func(es []audit.Event) int { return lineOf(t, es, "checkpoint-20") }, from: 10, to: 20,
		},
		{
			name: "a metadata field changed",
			corrupt: func(es []audit.Event) []audit.Event {
				es[lineOf(t, es, ev(3))-1].Actor = "acc_mallory"
				return es
			},
			kind: audit.BreakRootMismatch, line: func(es []audit.Event) int { return lineOf(t, es, "checkpoint-10") }, from: 0, to: 10,
		},
		{
			name: "an event dropped",
			corrupt: func(es []audit.Event) []audit.Event {
				i := lineOf(t, es, ev(25)) - 1
				return append(es[:i:i], es[i+1:]...)
			},
			kind: audit.BreakLeafGap, line: func(es []audit.Event) int { return lineOf(t, es, ev(26)) }, from: 25, to: 26,
		},
		{
			name: "two events swapped",
			corrupt: func(es []audit.Event) []audit.Event {
				i, j := lineOf(t, es, ev(31))-1, lineOf(t, es, ev(32))-1
				es[i], es[j] = es[j], es[i]
				return es
			},
			// Leaf 32 stands where leaf 31 was due.
			kind: audit.BreakLeafGap, line: func(es []audit.Event) int { return lineOf(t, es, ev(32)) }, from: 31, to: 32,
		},
		{
			name: "two events swapped with their positions and indices",
			corrupt: func(es []audit.Event) []audit.Event {
				i, j := lineOf(t, es, ev(31))-1, lineOf(t, es, ev(32))-1
				es[i].Position, es[j].Position = es[j].Position, es[i].Position
				es[i].LeafIndex, es[j].LeafIndex = es[j].LeafIndex, es[i].LeafIndex
				es[i], es[j] = es[j], es[i]
				return es
			},
			kind: audit.BreakRootMismatch, line: func(es []audit.Event) int { return lineOf(t, es, "checkpoint-40") }, from: 30, to: 40,
		},
		{
			name: "a forged event inserted with indices and positions renumbered",
			corrupt: func(es []audit.Event) []audit.Event {
				i := lineOf(t, es, ev(5)) - 1
				forged := es[i]
				forged.ID, forged.Data = "01JFORGED000000000000000000", json.RawMessage(`{"key_id":"key_x"}`)
				out := append(append(append([]audit.Event{}, es[:i]...), forged), es[i:]...)
				for k := i + 1; k < len(out); k++ {
					out[k].Position++
					if out[k].LeafIndex != nil {
						n := *out[k].LeafIndex + 1
						out[k].LeafIndex = &n
					}
				}
				return out
			},
			kind: audit.BreakRootMismatch, line: func(es []audit.Event) int { return lineOf(t, es, "checkpoint-10") }, from: 0, to: 10,
		},
		{
			name: "a checkpoint forged",
			corrupt: func(es []audit.Event) []audit.Event {
				i := lineOf(t, es, "checkpoint-30") - 1
				var data domain.CheckpointSigned
				_ = json.Unmarshal(es[i].Data, &data)
				data.Note = strings.Replace(data.Note, "\n30\n", "\n31\n", 1)
				es[i].Data, _ = json.Marshal(data)
				return es
			},
			kind: audit.BreakForgedCheckpoint, line: func(es []audit.Event) int { return lineOf(t, es, "checkpoint-30") },
		},
		{
			name: "a checkpoint dropped",
			corrupt: func(es []audit.Event) []audit.Event {
				i := lineOf(t, es, "checkpoint-20") - 1
				return append(es[:i:i], es[i+1:]...)
			},
			kind: audit.BreakCheckpointMissing, line: func(es []audit.Event) int { return lineOf(t, es, "checkpoint-30") },
		},
		{
			name: "a fork: a second checkpoint of one size with another root",
			corrupt: func(es []audit.Event) []audit.Event {
				fork := checkpointEvent(t, signer, 10_000, 20, audit.Hasher.HashLeaf([]byte("another history")), 10)
				fork.ID = "checkpoint-fork"
				return append(es, fork)
			},
			kind: audit.BreakFork, line: func(es []audit.Event) int { return lineOf(t, es, "checkpoint-fork") },
		},
		{
			name: "the tail of the events cut below the last checkpoint",
			corrupt: func(es []audit.Event) []audit.Event {
				cp := es[len(es)-1]
				i := lineOf(t, es, ev(35)) - 1
				return append(es[:i:i], cp)
			},
			kind: audit.BreakEventsMissing, line: func(es []audit.Event) int { return len(es) }, from: 35, to: 40,
		},
		{
			// Passed off as a partial export, whose roots cannot be rebuilt.
			name: "every leaf index shifted by one and a payload changed",
			corrupt: func(es []audit.Event) []audit.Event {
				for k := range es {
					if es[k].LeafIndex != nil {
						n := *es[k].LeafIndex + 1
						es[k].LeafIndex = &n
					}
				}
				i := lineOf(t, es, ev(14)) - 1
				es[i].Data = json.RawMessage(strings.Replace(string(es[i].Data), "n14", "n15", 1))
				return es
			},
			kind: audit.BreakNotFromStart, line: func(es []audit.Event) int { return 1 }, from: 0, to: 1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es := c.corrupt(append([]audit.Event(nil), clean...))
			rep := verify(t, ndjson(t, es), known)
			if rep.OK() {
				t.Fatal("the corruption was not detected")
			}
			b := rep.Breaks[0]
			if b.Kind != c.kind || b.Line != c.line(es) || b.From != c.from || b.To != c.to {
				t.Fatalf("first break %+v, want %s at line %d (leaves %d..%d); all: %v", b, c.kind, c.line(es), c.from, c.to, rep.Breaks)
			}
			if b.Position != es[b.Line-1].Position {
				t.Fatalf("break at position %d, line %d holds position %d", b.Position, b.Line, es[b.Line-1].Position)
			}
		})
	}
}

// TestALineSaysOneThing: a line whose member is given twice, or in another case
// ("Data" beside "data"), which readers would take differently, is malformed.
func TestALineSaysOneThing(t *testing.T) {
	signer, known := newSigner(t, "keyledger.test")
	export := ndjson(t, exportOf(t, signer, 10, 10))
	lines := strings.SplitAfter(string(export), "\n")
	for _, extra := range []string{`,"data":{"x":1}}`, `,"Data":{"x":1}}`} {
		changed := strings.TrimSuffix(strings.TrimSuffix(lines[2], "\n"), "}") + extra + "\n"
		doctored := strings.Join(append(append(append([]string{}, lines[:2]...), changed), lines[3:]...), "")
		rep := verify(t, []byte(doctored), known)
		if rep.OK() || rep.Breaks[0].Kind != audit.BreakMalformed || rep.Breaks[0].Line != 3 {
			t.Fatalf("a line with %s: breaks %v", extra, rep.Breaks)
		}
	}
}

// TestAPartialExportVerifiesAsOne: an export from a later position checks order,
// signatures and chaining when it is declared partial; verified whole, it is a break.
func TestAPartialExportVerifiesAsOne(t *testing.T) {
	signer, known := newSigner(t, "keyledger.test")
	es := exportOf(t, signer, 40, 10)
	tail := ndjson(t, es[lineOf(t, es, "checkpoint-20"):])
	if rep, err := audit.VerifyPartial(bytes.NewReader(tail), known); err != nil || !rep.OK() || rep.Events != 20 {
		t.Fatalf("the tail verified as partial: %+v %v", rep, err)
	}
	if rep := verify(t, tail, known); rep.OK() || rep.Breaks[0].Kind != audit.BreakNotFromStart {
		t.Fatalf("the tail verified as whole: %+v", rep)
	}
}

func TestAMalformedLineIsABreakNotAnError(t *testing.T) {
	signer, known := newSigner(t, "keyledger.test")
	export := ndjson(t, exportOf(t, signer, 10, 10))
	export = append([]byte("not json\n"), export...)
	rep := verify(t, export, known)
	if len(rep.Breaks) == 0 || rep.Breaks[0].Kind != audit.BreakMalformed || rep.Breaks[0].Line != 1 {
		t.Fatalf("breaks %v", rep.Breaks)
	}
}

// TestACheckpointSaysItsPreviousSizeAndItsPosition: both extension lines are read
// back, and a checkpoint that has neither (the first, signed before positions were
// kept) has zeros.
func TestACheckpointSaysItsPreviousSizeAndItsPosition(t *testing.T) {
	signer, known := newSigner(t, "keyledger.test")
	root := bytes.Repeat([]byte{7}, 32)
	for _, c := range []struct{ previous, position uint64 }{{0, 0}, {0, 12}, {3, 0}, {3, 1 << 40}} {
		signed, err := signer.Sign("keyledger.test/"+org, 5, root, c.previous, c.position)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := audit.OpenCheckpoint([]byte(signed), known, "keyledger.test/"+org)
		if err != nil || cp.Size != 5 || !bytes.Equal(cp.Root, root) || cp.Previous != c.previous || cp.Position != c.position {
			t.Fatalf("%+v: read back %+v %v", c, cp, err)
		}
	}
}
