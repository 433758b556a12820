package credindex_test

import (
	"crypto/rand"
	"net/netip"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/projections/credindex"
)

// accessKeyIndex is an index with one organization, workspaces ws_1 and ws_2 and
// a sub-account acct_a whose access key it returns, events at t0 + i minutes.
func accessKeyIndex(t *testing.T, clock *fakeClock, more ...domain.Event) (*credindex.Index, string, func(...domain.Event)) {
	x, cred, apply, _ := accessKeyIndexTo(t, clock, more...)
	return x, cred, apply
}

// accessKeyIndexTo is accessKeyIndex that also applies events to a workspace's
// subject (memberships, keys), numbered after the others.
func accessKeyIndexTo(t *testing.T, clock *fakeClock, more ...domain.Event) (*credindex.Index, string, func(...domain.Event), func(string, ...domain.Event)) {
	t.Helper()
	x := credindex.New(nil, credindex.Config{Pepper: indexPepper, Clock: clock.Now})
	cred, _ := domain.GenerateCredential(rand.Reader, domain.KindAccessSecret)
	seq := uint64(0)
	applyTo := func(agg string, events ...domain.Event) {
		for _, e := range events {
			seq++
			x.Apply(eventstore.Record{Sequence: seq, Aggregate: agg, Event: e})
		}
	}
	apply := func(events ...domain.Event) {
		for _, e := range events {
			agg := "org_1"
			if w, ok := e.(domain.WorkspaceCreated); ok {
				agg = w.WorkspaceID
			}
			applyTo(agg, e)
		}
	}
	apply(domain.OrganizationCreated{OrganizationID: "org_1", PrimaryAccountID: "acct_p", At: t0},
		domain.AccountCreated{AccountID: "acct_a", At: t0},
		domain.AccessKeyCreated{AccountID: "acct_a", AccessKeyID: "AK1", SecretHash: domain.HashCredential(indexPepper, cred), At: t0},
		domain.WorkspaceCreated{WorkspaceID: "ws_1", OrganizationID: "org_1", At: t0},
		domain.WorkspaceCreated{WorkspaceID: "ws_2", OrganizationID: "org_1", At: t0})
	apply(more...)
	return x, cred.String(), apply, applyTo
}

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func verifyOn(x *credindex.Index, cred, ws string) credindex.Code {
	return x.Verify(credindex.Verification{Credential: cred, SourceIP: netip.MustParseAddr("10.0.0.1"), WorkspaceID: ws, Product: domain.BusinessMaaS}).Code
}

// TestRolesAuthorizeThroughTheirWorkspaces: two roles granting one workspace keep
// the account authorized until both stop; the history answers as of each instant.
func TestRolesAuthorizeThroughTheirWorkspaces(t *testing.T) {
	clock := &fakeClock{now: t0}
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	x, cred, apply := accessKeyIndex(t, clock,
		domain.RoleCreated{RoleID: "r1", At: at(1)}, domain.RoleUserIncluded{RoleID: "r1", AccountID: "acct_a", At: at(1)},
		domain.RoleWorkspaceAdded{RoleID: "r1", WorkspaceID: "ws_1", At: at(1)},
		domain.RoleCreated{RoleID: "r2", At: at(2)}, domain.RoleWorkspaceAdded{RoleID: "r2", WorkspaceID: "ws_1", At: at(2)},
		domain.RoleUserIncluded{RoleID: "r2", AccountID: "acct_a", At: at(2)})
	if c := verifyOn(x, cred, "ws_1"); c != credindex.CodeValid {
		t.Fatalf("through two roles: %s", c)
	}
	if c := verifyOn(x, cred, "ws_2"); c != credindex.CodeNotAuthorizedOnWorkspace {
		t.Fatalf("no role carries ws_2: %s", c)
	}
	apply(domain.RoleWorkspaceRemoved{RoleID: "r1", WorkspaceID: "ws_1", At: at(3)})
	if c := verifyOn(x, cred, "ws_1"); c != credindex.CodeValid {
		t.Fatalf("r2 still grants ws_1: %s", c)
	}
	apply(domain.RoleDeleted{RoleID: "r2", At: at(4)})
	if c := verifyOn(x, cred, "ws_1"); c != credindex.CodeNotAuthorizedOnWorkspace {
		t.Fatalf("no role left: %s", c)
	}
	apply(domain.RoleCreated{RoleID: "r1", At: at(5)}) // an old log's re-creation starts empty
	if c := verifyOn(x, cred, "ws_1"); c != credindex.CodeNotAuthorizedOnWorkspace {
		t.Fatalf("a re-created role: %s", c)
	}
	for m, want := range map[int]bool{0: false, 1: true, 3: true, 4: false, 5: false} {
		_, reason := x.AttributeAt("AK1", "ws_1", domain.BusinessMaaS, at(m).Add(30*time.Second))
		if (reason == "") != want {
			t.Errorf("minute %d: attributed %v (%s), want %v", m, reason == "", reason, want)
		}
	}
}

// TestRotatedKeysEndWithTheirGrace: the old key works until its grace ends, for
// verification and attribution; a second rotation ends it at once.
func TestRotatedKeysEndWithTheirGrace(t *testing.T) {
	clock := &fakeClock{now: t0}
	newCred, _ := domain.GenerateCredential(rand.Reader, domain.KindAccessSecret)
	x, old, apply := accessKeyIndex(t, clock, domain.RoleCreated{RoleID: "r", At: t0},
		domain.RoleUserIncluded{RoleID: "r", AccountID: "acct_a", At: t0}, domain.RoleWorkspaceAdded{RoleID: "r", WorkspaceID: "ws_1", At: t0})
	apply(domain.AccessKeyRotated{AccountID: "acct_a", PreviousAccessKeyID: "AK1", AccessKeyID: "AK2",
		SecretHash: domain.HashCredential(indexPepper, newCred), PreviousUntil: t0.Add(time.Hour), At: t0})
	clock.now = t0.Add(59 * time.Minute)
	if verifyOn(x, old, "ws_1") != credindex.CodeValid || verifyOn(x, newCred.String(), "ws_1") != credindex.CodeValid {
		t.Fatal("both secrets work during the grace")
	}
	clock.now = t0.Add(time.Hour)
	if c := verifyOn(x, old, "ws_1"); c != credindex.CodeDeleted {
		t.Fatalf("after the grace: %s", c)
	}
	for m, want := range map[time.Duration]string{59 * time.Minute: "", 61 * time.Minute: credindex.UsageCredentialNotActive} {
		if _, reason := x.AttributeAt("AK1", "ws_1", domain.BusinessMaaS, t0.Add(m)); reason != want {
			t.Errorf("attributed at +%v: %q, want %q", m, reason, want)
		}
	}
}

// TestASecondRotationEndsTheFirstOldKey: rotating again during a grace ends the
// secret that was in it at once; the one just replaced gets the new grace.
func TestASecondRotationEndsTheFirstOldKey(t *testing.T) {
	clock := &fakeClock{now: t0.Add(10 * time.Minute)}
	second, _ := domain.GenerateCredential(rand.Reader, domain.KindAccessSecret)
	third, _ := domain.GenerateCredential(rand.Reader, domain.KindAccessSecret)
	x, first, apply := accessKeyIndex(t, clock, domain.RoleCreated{RoleID: "r", At: t0},
		domain.RoleUserIncluded{RoleID: "r", AccountID: "acct_a", At: t0}, domain.RoleWorkspaceAdded{RoleID: "r", WorkspaceID: "ws_1", At: t0})
	apply(domain.AccessKeyRotated{AccountID: "acct_a", PreviousAccessKeyID: "AK1", AccessKeyID: "AK2",
		SecretHash: domain.HashCredential(indexPepper, second), PreviousUntil: t0.Add(time.Hour), At: t0},
		domain.AccessKeyRotated{AccountID: "acct_a", PreviousAccessKeyID: "AK2", AccessKeyID: "AK3",
			SecretHash: domain.HashCredential(indexPepper, third), PreviousUntil: t0.Add(time.Hour), At: t0.Add(5 * time.Minute)})
	for cred, want := range map[string]credindex.Code{first: credindex.CodeDeleted, second.String(): credindex.CodeValid, third.String(): credindex.CodeValid} {
		if c := verifyOn(x, cred, "ws_1"); c != want {
			t.Errorf("got %s, want %s", c, want)
		}
	}
	if _, reason := x.AttributeAt("AK1", "ws_1", domain.BusinessMaaS, t0.Add(6*time.Minute)); reason != credindex.UsageCredentialNotActive {
		t.Errorf("AK1 after the second rotation: %q", reason)
	}
	if _, reason := x.AttributeAt("AK1", "ws_1", domain.BusinessMaaS, t0.Add(4*time.Minute)); reason != "" {
		t.Errorf("AK1 before the second rotation: %q", reason)
	}
}

// TestLastUsedListsEachChangeOnce: an allowed call is listed once, a refused one
// never, and a failed write hands the uses back.
func TestLastUsedListsEachChangeOnce(t *testing.T) {
	clock := &fakeClock{now: t0.Add(90 * time.Second)}
	x, cred := indexWithKey(t, clock, 0)
	if len(x.LastUsed()) != 0 {
		t.Fatal("an unused key is listed")
	}
	x.Verify(credindex.Verification{Credential: cred, SourceIP: netip.MustParseAddr("10.0.0.1"), WorkspaceID: "ws_2", Product: domain.BusinessSearch})
	if len(x.LastUsed()) != 0 {
		t.Fatal("a refused call stamps the key")
	}
	call(x, cred)
	uses := x.LastUsed()
	if len(uses) != 1 || uses[0].KeyID != "key_1" || !uses[0].At.Equal(t0.Add(time.Minute)) {
		t.Fatalf("uses: %v", uses)
	}
	if again := x.LastUsed(); len(again) != 0 {
		t.Fatalf("listed twice: %v", again)
	}
	x.Unflushed(uses)
	if again := x.LastUsed(); len(again) != 1 {
		t.Fatalf("a failed write's uses come back: %v", again)
	}
}
