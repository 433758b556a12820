package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Origin is the checkpoint origin of an organization's log: the deployment's
// prefix and the organization id.
func Origin(prefix, orgID string) string { return prefix + "/" + orgID }

// previousLine is the checkpoint's extension line naming the size of the
// organization's previous checkpoint, which chains them: a checkpoint dropped from
// the middle of an export shows as a size no earlier checkpoint had.
const previousLine = "keyledger-previous "

// positionLine is the extension line naming the log position the tree holds the
// organization's events up to: a starting witness resumes from its checkpoints
// rather than from the log's beginning.
const positionLine = "keyledger-position "

// Checkpoint is a parsed, verified checkpoint.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
	// Previous is the size of the organization's checkpoint before it (0: none).
	Previous uint64
	// Position is the log position up to which the tree holds the organization's
	// events (0: not said, as in checkpoints signed before it was).
	Position uint64
	// KeyHash names the key that signed it.
	KeyHash uint32
}

// Signer signs checkpoints with an Ed25519 key in the note format.
type Signer struct {
	signer   note.Signer
	verifier string
}

// GenerateKey makes a signing key (PRIVATE+KEY+name+hash+key) and its verifier key
// (name+hash+key), as `keyledger dev` does.
func GenerateKey(name string) (skey, vkey string, err error) {
	return note.GenerateKey(rand.Reader, name)
}

// NewSigner reads a note signing key.
func NewSigner(skey string) (*Signer, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	vkey, err := verifierKey(skey, s.Name())
	if err != nil {
		return nil, err
	}
	return &Signer{signer: s, verifier: vkey}, nil
}

// verifierKey derives the verifier key of an Ed25519 note signing key
// ("PRIVATE+KEY+<name>+<hash>+<base64 of 0x01 and the 32-byte seed>").
func verifierKey(skey, name string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	key, err := base64.StdEncoding.DecodeString(parts[len(parts)-1])
	if err != nil || len(key) != 1+ed25519.SeedSize || key[0] != 1 {
		return "", errors.New("audit signing key: not an Ed25519 note key")
	}
	return note.NewEd25519VerifierKey(name, ed25519.NewKeyFromSeed(key[1:]).Public().(ed25519.PublicKey))
}

// VerifierKey is the public key that verifies this signer's checkpoints, in the
// note verifier format.
func (s *Signer) VerifierKey() string { return s.verifier }

// Sign returns the signed note of a checkpoint: the tree of the given size and root,
// holding the organization's events up to log position position.
func (s *Signer) Sign(origin string, size uint64, root []byte, previous, position uint64) (string, error) {
	text := string(log.Checkpoint{Origin: origin, Size: size, Hash: root}.Marshal())
	if previous > 0 {
		text += previousLine + strconv.FormatUint(previous, 10) + "\n"
	}
	if position > 0 {
		text += positionLine + strconv.FormatUint(position, 10) + "\n"
	}
	b, err := note.Sign(&note.Note{Text: text}, s.signer)
	return string(b), err
}

// SaysPosition tells, without verifying it, whether a signed checkpoint names the
// log position its tree reaches (checkpoints signed before it did do not): what a
// checkpoint's shape says, for a reader without the key that signed it
// (OpenCheckpoint verifies, then parses).
func SaysPosition(signed string) bool {
	text, _, _ := strings.Cut(signed, "\n\n") // the note's text ends at its blank line
	return strings.Contains(text, "\n"+positionLine)
}

// Verifiers reads verifier keys (the current one and those of rotated keys).
func Verifiers(vkeys ...string) (note.Verifiers, error) {
	var vs []note.Verifier
	for _, k := range vkeys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("verifier key %q: %w", k, err)
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return nil, errors.New("no verifier key")
	}
	return note.VerifierList(vs...), nil
}

// OpenCheckpoint verifies a signed checkpoint with any of the known keys and
// parses it; origin, when not empty, must match.
func OpenCheckpoint(signed []byte, known note.Verifiers, origin string) (Checkpoint, error) {
	n, err := note.Open(signed, known)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	var cp log.Checkpoint
	rest, err := cp.Unmarshal([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, err
	}
	if origin != "" && cp.Origin != origin {
		return Checkpoint{}, fmt.Errorf("checkpoint of %q, expected %q", cp.Origin, origin)
	}
	out := Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: cp.Hash, KeyHash: n.Sigs[0].Hash}
	for _, line := range strings.Split(strings.TrimSuffix(string(rest), "\n"), "\n") {
		var field *uint64
		if v, ok := strings.CutPrefix(line, previousLine); ok {
			field, line = &out.Previous, v
		} else if v, ok := strings.CutPrefix(line, positionLine); ok {
			field, line = &out.Position, v
		} else {
			continue // an extension line of someone else's
		}
		if *field, err = strconv.ParseUint(line, 10, 64); err != nil {
			return Checkpoint{}, fmt.Errorf("checkpoint: malformed extension line: %w", err)
		}
	}
	return out, nil
}
