package credindex_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/projections/credindex"
)

// TestASnapshotRestoresTheSameIndex: an index restored from a snapshot encodes as
// the original and decides as it does, deleted keys, disabled accounts,
// memberships, roles, rotations, QPS and history included; a snapshot of another
// format or a corrupt one is refused and leaves the index empty.
func TestASnapshotRestoresTheSameIndex(t *testing.T) {
	clock := &fakeClock{now: t0.Add(10 * time.Minute)}
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	key := func() (domain.Credential, string) {
		c, _ := domain.GenerateCredential(rand.Reader, domain.KindSearchKey)
		return c, domain.HashCredential(indexPepper, c)
	}
	live, liveHash := key()
	gone, goneHash := key()
	rotated, rotatedHash := key()
	x, ak, apply, applyTo := accessKeyIndexTo(t, clock,
		domain.RoleCreated{RoleID: "r", At: at(1)}, domain.RoleUserIncluded{RoleID: "r", AccountID: "acct_a", At: at(1)},
		domain.RoleWorkspaceAdded{RoleID: "r", WorkspaceID: "ws_2", At: at(1)},
		domain.AccountCreated{AccountID: "acct_b", At: at(2)}, domain.AccountDisabled{AccountID: "acct_b", At: at(3)})
	applyTo("ws_1", domain.MemberAuthorized{AccountID: "acct_a", At: at(1)}, domain.MemberAuthorized{AccountID: "acct_b", At: at(1)},
		domain.MemberRevoked{AccountID: "acct_b", At: at(2)})
	apply(domain.AccessKeyRotated{AccountID: "acct_a", PreviousAccessKeyID: "AK1", AccessKeyID: "AK2", SecretHash: rotatedHash,
		PreviousUntil: at(30), At: at(4)})
	applyTo("ws_1", domain.APIKeyCreated{KeyID: "key_live", BusinessType: domain.BusinessSearch, QPSLimit: 7, Allowlist: []string{"10.0.0.1-10.0.0.9"},
		SecretHash: liveHash, At: at(5)},
		domain.APIKeyCreated{KeyID: "key_gone", BusinessType: domain.BusinessSearch, SecretHash: goneHash, At: at(5)},
		domain.APIKeyDeleted{KeyID: "key_gone", At: at(6)})

	var first bytes.Buffer
	pos, err := x.WriteSnapshot(context.Background(), &first)
	// The snapshot names its position's event; the test's log gives events no id but
	// its own: the check sees what the snapshot recorded.
	var checked [2]any
	sameLog := func(p uint64, id string) error { checked = [2]any{p, id}; return nil }
	if err != nil || pos == 0 {
		t.Fatalf("snapshot at %d: %v", pos, err)
	}
	y := credindex.New(nil, credindex.Config{Pepper: indexPepper, Clock: clock.Now})
	if got, err := y.RestoreSnapshot(bytes.NewReader(first.Bytes()), sameLog); err != nil || got != pos {
		t.Fatalf("restore: %d %v", got, err)
	}
	if checked[0] != pos {
		t.Fatalf("the restore did not check the log at the snapshot's position: %v", checked)
	}
	var second bytes.Buffer
	if _, err := y.WriteSnapshot(context.Background(), &second); err != nil || !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Fatalf("the restored index encodes differently (%v)", err)
	}
	for _, c := range []struct {
		cred, ws string
		product  domain.BusinessType
	}{{live.String(), "ws_1", domain.BusinessSearch}, {gone.String(), "ws_1", domain.BusinessSearch}, {ak, "ws_1", domain.BusinessMaaS},
		{ak, "ws_2", domain.BusinessMaaS}, {rotated.String(), "ws_2", domain.BusinessMaaS}} {
		if a, b := verifyAs(x, c.cred, c.ws, c.product), verifyAs(y, c.cred, c.ws, c.product); a != b {
			t.Errorf("%s on %s: %s before, %s restored", c.cred[:8], c.ws, a, b)
		}
	}
	clock.now = at(31) // the rotated-away key's grace ends in both
	if a, b := verifyAs(x, ak, "ws_1", domain.BusinessMaaS), verifyAs(y, ak, "ws_1", domain.BusinessMaaS); a != credindex.CodeDeleted || b != a {
		t.Fatalf("after the grace: %s, %s restored", a, b)
	}
	for _, m := range []int{0, 2, 5, 7} {
		_, r1 := x.AttributeAt("key_gone", "ws_1", domain.BusinessSearch, at(m).Add(time.Second))
		_, r2 := y.AttributeAt("key_gone", "ws_1", domain.BusinessSearch, at(m).Add(time.Second))
		_, r3 := x.AttributeAt("AK1", "ws_2", domain.BusinessMaaS, at(m).Add(time.Second))
		_, r4 := y.AttributeAt("AK1", "ws_2", domain.BusinessMaaS, at(m).Add(time.Second))
		if r1 != r2 || r3 != r4 {
			t.Errorf("minute %d: attribution %q/%q, %q/%q restored", m, r1, r2, r3, r4)
		}
	}
	// What follows the snapshot applies to the restored index as to the original.
	y.Apply(eventstore.Record{Sequence: pos + 1, Aggregate: "ws_1", Event: domain.APIKeyDeleted{KeyID: "key_live", At: at(40)}})
	if c := verifyAs(y, live.String(), "ws_1", domain.BusinessSearch); c != credindex.CodeDeleted {
		t.Fatalf("a deletion after the snapshot: %s", c)
	}

	whole := first.Bytes()
	for _, bad := range []io.Reader{
		bytes.NewReader(whole[:len(whole)/2]), bytes.NewReader(whole[:len(whole)-1]), strings.NewReader("not a snapshot"),
		io.MultiReader(bytes.NewReader(whole), strings.NewReader("x")),                          // more than the snapshot
		io.MultiReader(bytes.NewReader(whole), iotest.ErrReader(errors.New("digest mismatch"))), // the store's check fails at the end
	} {
		z := credindex.New(nil, credindex.Config{Pepper: indexPepper, Clock: clock.Now})
		if _, err := z.RestoreSnapshot(bad, sameLog); err == nil {
			t.Fatal("a corrupt snapshot was restored")
		}
		if c := verifyAs(z, live.String(), "ws_1", domain.BusinessSearch); c != credindex.CodeNotFound {
			t.Fatalf("a refused snapshot left state: %s", c)
		}
	}
	if _, err := x.RestoreSnapshot(bytes.NewReader(first.Bytes()), sameLog); err == nil {
		t.Fatal("a snapshot restored over applied events")
	}
	z := credindex.New(nil, credindex.Config{Pepper: indexPepper, Clock: clock.Now})
	otherLog := func(uint64, string) error { return errors.New("another event there") }
	if _, err := z.RestoreSnapshot(bytes.NewReader(first.Bytes()), otherLog); err == nil {
		t.Fatal("another log's snapshot was restored")
	}
	if c := verifyAs(z, live.String(), "ws_1", domain.BusinessSearch); c != credindex.CodeNotFound {
		t.Fatalf("a refused snapshot left state: %s", c)
	}
}

func verifyAs(x *credindex.Index, cred, ws string, product domain.BusinessType) credindex.Code {
	return x.Verify(credindex.Verification{Credential: cred, SourceIP: netip.MustParseAddr("10.0.0.5"), WorkspaceID: ws, Product: product}).Code
}

// TestASnapshotOfManyKeysRestoresThemAll: keys are written in chunks decoded in
// parallel; a snapshot of more than two chunks restores every key, with its
// workspace, allowlist, limit and deletion.
func TestASnapshotOfManyKeysRestoresThemAll(t *testing.T) {
	clock := &fakeClock{now: t0.Add(time.Hour)}
	x := credindex.New(nil, credindex.Config{Pepper: indexPepper, Clock: clock.Now})
	const n = 70_000
	creds := make([]domain.Credential, 0, n)
	seq := uint64(0)
	apply := func(ws string, e domain.Event) {
		seq++
		x.Apply(eventstore.Record{Sequence: seq, Aggregate: ws, Event: e})
	}
	for w := range 7 {
		apply(fmt.Sprintf("ws_%d", w), domain.WorkspaceCreated{WorkspaceID: fmt.Sprintf("ws_%d", w), OrganizationID: "org_1", At: t0})
	}
	for i := range n {
		c, _ := domain.GenerateCredential(rand.Reader, domain.KindSearchKey)
		creds = append(creds, c)
		apply(fmt.Sprintf("ws_%d", i%7), domain.APIKeyCreated{KeyID: fmt.Sprintf("key_%06d", i), BusinessType: domain.BusinessSearch,
			QPSLimit: domain.QPS(i % 3), Allowlist: []string{fmt.Sprintf("10.0.%d.0/24", i%5)}, SecretHash: domain.HashCredential(indexPepper, c), At: t0})
		if i%11 == 0 {
			apply(fmt.Sprintf("ws_%d", i%7), domain.APIKeyDeleted{KeyID: fmt.Sprintf("key_%06d", i), At: t0.Add(time.Minute)})
		}
	}
	var snap bytes.Buffer
	if _, err := x.WriteSnapshot(context.Background(), &snap); err != nil {
		t.Fatal(err)
	}
	y := credindex.New(nil, credindex.Config{Pepper: indexPepper, Clock: clock.Now})
	if _, err := y.RestoreSnapshot(bytes.NewReader(snap.Bytes()), func(uint64, string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	for i, c := range creds {
		ws, ip := fmt.Sprintf("ws_%d", i%7), netip.MustParseAddr(fmt.Sprintf("10.0.%d.9", i%5))
		want := credindex.CodeValid
		if i%11 == 0 {
			want = credindex.CodeDeleted
		}
		v := credindex.Verification{Credential: c.String(), SourceIP: ip, WorkspaceID: ws, Product: domain.BusinessSearch}
		if got := y.Verify(v).Code; got != want {
			t.Fatalf("key %d: %s restored, want %s", i, got, want)
		}
		v.SourceIP = netip.MustParseAddr(fmt.Sprintf("10.0.%d.9", (i+1)%5))
		if got := y.Verify(v).Code; want == credindex.CodeValid && got != credindex.CodeIPNotAllowed {
			t.Fatalf("key %d from another network: %s", i, got)
		}
	}
}
