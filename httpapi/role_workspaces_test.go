package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/httpapi"
)

// memberSummary renders a member list as "account:direct:role,role" items.
func memberSummary(r response) string {
	out := ""
	for _, m := range r.items() {
		roles := ""
		for _, x := range m["roles"].([]any) {
			roles += x.(map[string]any)["name"].(string) + ","
		}
		direct := m["direct"] == true && m["authorized_at"] != nil || m["direct"] == false && m["authorized_at"] == nil
		out += fmt.Sprintf("%v:%v:%v:%s ", m["name"], m["direct"], direct, roles)
	}
	return out
}

// TestRolesAuthorizeWorkspaces: a role carrying workspaces authorizes its users
// there, for management calls, /v1/me, the member list and the AK's verification,
// on the very next request and on every instance; taking the workspace out of the
// role refuses the AK there on the next call.
func TestRolesAuthorizeWorkspaces(t *testing.T) {
	h := start(t)
	_, second := h.instance(httpapi.Config{})
	w1, w2 := h.workspace("prod"), h.workspace("staging")
	alice, aliceAK := h.subAccount("alice")
	h.subAccount("bob")
	all := []string{httpapi.HeaderConsistency, "all-instances"}

	r := h.as("POST", "/v1/roles", map[string]any{"name": "ops", "permissions": []string{"api_key:read"}, "users": []string{alice},
		"workspaces": []string{w1}}, all...)
	h.expect(r, 201, "")
	role := r.str("id")
	if fmt.Sprint(r.Body["workspaces"]) != "["+w1+"]" {
		t.Fatalf("role: %s", r.Raw)
	}
	h.applied(r)
	waitApplied(h, r.Header.Get(httpapi.HeaderPosition))
	h.decision(h.verify(second, aliceAK, w1, "maas", "10.0.0.1"), "VALID", true)
	h.decision(h.verify(nil, aliceAK, w2, "maas", "10.0.0.1"), "NOT_AUTHORIZED_ON_WORKSPACE", false)

	// Management: the role's permission on the role's workspace, membership alone
	// showing the workspace (no workspace:read), nothing elsewhere.
	h.expect(h.call(aliceAK, "GET", "/v1/workspaces/"+w1+"/api-keys", nil), 200, "")
	h.expect(h.call(aliceAK, "GET", "/v1/workspaces/"+w2+"/api-keys", nil), 403, "not_a_member")
	h.expect(h.call(aliceAK, "GET", "/v1/workspaces/"+w1, nil), 200, "")
	h.expect(h.call(aliceAK, "GET", "/v1/workspaces/"+w2, nil), 403, "not_a_member")
	list := h.call(aliceAK, "GET", "/v1/workspaces", nil, httpapi.HeaderPosition, r.Header.Get(httpapi.HeaderPosition))
	if h.expect(list, 200, ""); len(list.items()) != 1 || list.items()[0]["id"] != w1 {
		t.Fatalf("alice's workspaces: %s", list.Raw)
	}
	me := h.call(aliceAK, "GET", "/v1/me", nil)
	if fmt.Sprint(me.Body["workspaces"]) != "["+w1+"]" {
		t.Fatalf("me: %s", me.Raw)
	}

	// The member list says how each member is authorized; candidates the others.
	m := h.as("GET", "/v1/workspaces/"+w1+"/members?include=candidates", nil, httpapi.HeaderPosition, r.Header.Get(httpapi.HeaderPosition))
	h.expect(m, 200, "")
	if got := memberSummary(m); got != "alice:false:true:ops, " {
		t.Fatalf("members: %s (%s)", got, m.Raw)
	}
	if c := m.Body["candidates"].([]any); len(c) != 1 || c[0].(map[string]any)["name"] != "bob" {
		t.Fatalf("candidates: %s", m.Raw)
	}
	if _, ok := h.as("GET", "/v1/workspaces/"+w1+"/members", nil).Body["candidates"]; ok {
		t.Fatal("candidates unasked")
	}
	h.expect(h.call(aliceAK, "GET", "/v1/workspaces/"+w1+"/members?include=candidates", nil), 403, "forbidden")
	h.expect(h.as("GET", "/v1/workspaces/"+w1+"/members?include=everyone", nil), 400, "invalid_input")
	p := h.as("PUT", "/v1/workspaces/"+w1+"/members", map[string]any{"account_ids": []string{alice}})
	if h.expect(p, 200, ""); memberSummary(p) != "alice:true:true:ops, " {
		t.Fatalf("direct and through a role: %s", p.Raw)
	}
	h.expect(h.as("PUT", "/v1/workspaces/"+w1+"/members", map[string]any{"account_ids": []string{}}), 200, "")

	// The role loses the workspace: the next call on the second instance is refused.
	r = h.as("PATCH", "/v1/roles/"+role, map[string]any{"workspaces": []string{w2}}, all...)
	h.expect(r, 200, "")
	if r.Header.Get(httpapi.HeaderConsistency) != "all-instances" {
		t.Fatalf("not applied everywhere: %v", r.Header)
	}
	h.decision(h.verify(second, aliceAK, w1, "maas", "10.0.0.1"), "NOT_AUTHORIZED_ON_WORKSPACE", false)
	h.decision(h.verify(second, aliceAK, w2, "maas", "10.0.0.1"), "VALID", true)
	h.expect(h.call(aliceAK, "GET", "/v1/workspaces/"+w1+"/api-keys", nil), 403, "not_a_member")
	h.expect(h.call(aliceAK, "GET", "/v1/workspaces/"+w2+"/api-keys", nil), 200, "")

	// Alice leaves the role: nothing is left.
	r = h.as("PATCH", "/v1/roles/"+role, map[string]any{"users": []string{}}, all...)
	h.expect(r, 200, "")
	h.decision(h.verify(second, aliceAK, w2, "maas", "10.0.0.1"), "NOT_AUTHORIZED_ON_WORKSPACE", false)

	// Unknown workspaces, and another organization's, are refused and write nothing.
	other := h.bootstrap("other org")
	foreign := h.call(other.Secret, "POST", "/v1/workspaces", map[string]any{"name": "theirs"})
	h.expect(foreign, 201, "")
	before := h.position()
	for _, ws := range []string{foreign.str("id"), "ws_01JD0000000000000000000000", "nope"} {
		r := h.as("PATCH", "/v1/roles/"+role, map[string]any{"workspaces": []string{ws}})
		h.expect(r, 400, "invalid_input")
		if f := r.Body["fields"].([]any)[0].(map[string]any); f["field"] != "workspaces[0]" || f["code"] != "unknown_workspace" {
			t.Fatalf("%s: %s", ws, r.Raw)
		}
	}
	if h.position() != before {
		t.Fatal("a refused role change wrote to the log")
	}
}

// TestAccountWorkspacesAreSetAtOnce: PUT /v1/accounts/{id}/workspaces replaces an
// account's direct memberships on every workspace at once, all or nothing.
func TestAccountWorkspacesAreSetAtOnce(t *testing.T) {
	h := start(t)
	w1, w2, w3 := h.workspace("a"), h.workspace("b"), h.workspace("c")
	alice, aliceAK := h.subAccount("alice")
	path := "/v1/accounts/" + alice + "/workspaces"
	h.expect(h.as("PUT", "/v1/workspaces/"+w1+"/members", map[string]any{"account_ids": []string{alice}}), 200, "")

	logEnd := h.position()
	r := h.as("PUT", path, map[string]any{"workspace_ids": []string{w3, w2}}, httpapi.HeaderConsistency, "all-instances")
	h.expect(r, 200, "")
	if h.position() != logEnd+3 || r.Header.Get(httpapi.HeaderPosition) != fmt.Sprint(logEnd+3) {
		t.Fatalf("one revocation and two authorizations: %d → %d (%v)", logEnd, h.position(), r.Header)
	}
	if fmt.Sprint(r.Body["workspace_ids"]) != fmt.Sprint([]string{w2, w3}) {
		t.Fatalf("put: %s", r.Raw)
	}
	pos := r.Header.Get(httpapi.HeaderPosition)
	h.decision(h.verify(nil, aliceAK, w1, "maas", "10.0.0.1"), "NOT_AUTHORIZED_ON_WORKSPACE", false)
	h.decision(h.verify(nil, aliceAK, w2, "maas", "10.0.0.1"), "VALID", true)
	h.decision(h.verify(nil, aliceAK, w3, "maas", "10.0.0.1"), "VALID", true)
	g := h.as("GET", path, nil, httpapi.HeaderPosition, pos)
	if h.expect(g, 200, ""); fmt.Sprint(g.Body["workspace_ids"]) != fmt.Sprint([]string{w2, w3}) {
		t.Fatalf("get: %s", g.Raw)
	}
	m := h.as("GET", "/v1/workspaces/"+w1+"/members", nil, httpapi.HeaderPosition, pos)
	if len(m.items()) != 0 {
		t.Fatalf("w1 still lists alice: %s", m.Raw)
	}

	// Bad input names the entry and writes nothing.
	other := h.bootstrap("other org")
	foreign := h.call(other.Secret, "POST", "/v1/workspaces", map[string]any{"name": "theirs"}).str("id")
	before := h.position()
	for _, tc := range []struct {
		ids   []string
		field string
		code  string
	}{
		{[]string{w1, foreign}, "workspace_ids[1]", "unknown_workspace"},
		{[]string{w1, w1}, "workspace_ids[1]", "duplicate_entry"},
		{[]string{"nope"}, "workspace_ids[0]", "unknown_workspace"},
	} {
		r := h.as("PUT", path, map[string]any{"workspace_ids": tc.ids})
		h.expect(r, 400, "invalid_input")
		if f := r.Body["fields"].([]any)[0].(map[string]any); f["field"] != tc.field || f["code"] != tc.code {
			t.Fatalf("%v: %s", tc.ids, r.Raw)
		}
	}
	h.expect(h.as("PUT", path, map[string]any{}), 400, "invalid_input")
	h.expect(h.as("PUT", "/v1/accounts/acct_01JD0000000000000000000000/workspaces", map[string]any{"workspace_ids": []string{}}), 404, "account_not_found")
	h.expect(h.call(aliceAK, "PUT", path, map[string]any{"workspace_ids": []string{}}), 403, "forbidden")
	if h.position() != before {
		t.Fatal("refused input wrote to the log")
	}
}

// TestNoSelfAuthorization: a sub-account that manages a workspace through a role may
// authorize others there, never make itself a direct member (its access would then
// outlive the role).
func TestNoSelfAuthorization(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	alice, aliceAK := h.subAccount("alice")
	bob, _ := h.subAccount("bob")
	r := h.as("POST", "/v1/roles", map[string]any{"name": "managers", "permissions": []string{"workspace:update", "workspace:read", "account:read"},
		"users": []string{alice}, "workspaces": []string{ws}})
	h.expect(r, 201, "")
	before := h.position()
	h.expect(h.call(aliceAK, "PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{alice}}), 403, "self_authorization")
	h.expect(h.call(aliceAK, "PUT", "/v1/accounts/"+alice+"/workspaces", map[string]any{"workspace_ids": []string{ws}}), 403, "self_authorization")
	if h.position() != before {
		t.Fatal("a refused self-authorization wrote to the log")
	}
	h.expect(h.call(aliceAK, "PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{bob}}), 200, "")
	m := h.call(aliceAK, "GET", "/v1/workspaces/"+ws+"/members?include=candidates", nil, "X-Keyledger-Position", fmt.Sprint(h.position()))
	if h.expect(m, 200, ""); memberSummary(m) != "alice:false:true:managers, bob:true:true: " || len(m.Body["candidates"].([]any)) != 0 {
		t.Fatalf("members: %s", m.Raw)
	}
}

// TestAccountWorkspacesAnswerHoldsAtItsPosition: PUT /v1/accounts/{id}/workspaces
// answers the set it wrote at its position, and the log at that position agrees,
// even when, between the views' read and the append, another instance authorizes
// the account on a workspace outside the set, revokes it from one in the set that
// it already was on, or revokes and authorizes it again there (all land before
// the append, so the set is to replace them; the last leaves nothing to write in
// a second round, whose answer must still be past the first round's write).
func TestAccountWorkspacesAnswerHoldsAtItsPosition(t *testing.T) {
	h := start(t)
	// The other instance's writes run while the PUT's append waits in the proxy:
	// the PUT's instance is given the time (a loaded machine may take a second).
	proxy, _, srv := h.proxiedWriting(10 * time.Second)
	a, b, c, x := h.workspace("a"), h.workspace("b"), h.workspace("c"), h.workspace("x")
	bob, _ := h.subAccount("bob")
	path := "/v1/accounts/" + bob + "/workspaces"
	type members struct {
		ws       string
		accounts []string
	}
	for _, tc := range []struct {
		what        string
		before, put []string
		meanwhile   []members
	}{
		{"authorized on a workspace outside the set", []string{a, b}, []string{a, b, c}, []members{{x, []string{bob}}}},
		{"revoked from a workspace in the set it was on", []string{a, b}, []string{a, b, c}, []members{{a, []string{}}}},
		{"revoked and authorized again on one in the set", []string{a, b, c}, []string{a, b}, []members{{a, []string{}}, {a, []string{bob}}}},
	} {
		r := h.as("PUT", path, map[string]any{"workspace_ids": tc.before})
		h.expect(r, 200, "")
		h.applied(r)
		// Just before the PUT's append (its change on c) reaches NATS, the other
		// instance writes. The hook runs on the proxy's goroutine: it only records.
		var once sync.Once
		var statuses []int
		proxy.StallWhere(func(subject string, _ []byte) bool {
			if subject == "keyledger.events.workspace."+c {
				once.Do(func() {
					for _, m := range tc.meanwhile {
						body, _ := json.Marshal(map[string]any{"account_ids": m.accounts})
						req, _ := http.NewRequest("PUT", h.http.URL+"/v1/workspaces/"+m.ws+"/members", bytes.NewReader(body))
						req.Header.Set("Authorization", "Bearer "+h.admin.Secret)
						req.Header.Set("Content-Type", "application/json")
						status := 0
						if res, err := http.DefaultClient.Do(req); err == nil {
							status = res.StatusCode
							res.Body.Close()
						}
						statuses = append(statuses, status)
					}
				})
			}
			return false
		})
		r = h.on(srv, h.admin.Secret, "PUT", path, map[string]any{"workspace_ids": tc.put})
		proxy.StallWhere(nil)
		if fmt.Sprint(statuses) != fmt.Sprint(slices.Repeat([]int{200}, len(tc.meanwhile))) {
			t.Fatalf("%s: the other instance's writes answered %v", tc.what, statuses)
		}
		h.expect(r, 200, "")
		want := fmt.Sprint(tc.put)
		if got := fmt.Sprint(r.Body["workspace_ids"]); got != want {
			t.Fatalf("%s: answered %s, asked for %s", tc.what, got, want)
		}
		// Nothing was written after the answer: the views at its position are the log's.
		if pos := r.Header.Get(httpapi.HeaderPosition); pos != fmt.Sprint(h.position()) {
			t.Fatalf("%s: the answer's position %s is not the log's end %d", tc.what, pos, h.position())
		}
		g := h.as("GET", path, nil, httpapi.HeaderPosition, r.Header.Get(httpapi.HeaderPosition))
		if h.expect(g, 200, ""); fmt.Sprint(g.Body["workspace_ids"]) != want {
			t.Fatalf("%s: the log at the answer's position has %s; the answer said %s", tc.what, g.Body["workspace_ids"], want)
		}
	}
}

// TestASubAccountSetsWorkspacesWithinItsSight: a sub-account managing workspaces
// through a role sets another account's memberships only where it is authorized
// itself: it needs account:read to address the account, a workspace it is not on
// is refused whether or not the account is a member there (no oracle), the answer
// names none of those, and memberships there are left as they are.
func TestASubAccountSetsWorkspacesWithinItsSight(t *testing.T) {
	h := start(t)
	mine, theirs := h.workspace("mine"), h.workspace("theirs")
	alice, aliceAK := h.subAccount("alice")
	tom, _ := h.subAccount("tom")
	path := "/v1/accounts/" + tom + "/workspaces"
	r := h.as("POST", "/v1/roles", map[string]any{"name": "managers", "permissions": []string{"workspace:update", "workspace:read"},
		"users": []string{alice}, "workspaces": []string{mine}})
	h.expect(r, 201, "")
	role := r.str("id")
	h.expect(h.as("PUT", path, map[string]any{"workspace_ids": []string{theirs}}), 200, "")

	before := h.position()
	h.expect(h.call(aliceAK, "PUT", path, map[string]any{"workspace_ids": []string{mine}}), 403, "forbidden") // no account:read
	h.expect(h.as("PATCH", "/v1/roles/"+role, map[string]any{"permissions": []string{"workspace:update", "workspace:read", "account:read"}}), 200, "")
	for _, ids := range [][]string{{mine, theirs}, {theirs}} { // tom is a member of theirs: refused all the same
		h.expect(h.call(aliceAK, "PUT", path, map[string]any{"workspace_ids": ids}, httpapi.HeaderPosition, h.positionHeader()), 403, "not_a_member")
	}
	if h.position() != before+1 {
		t.Fatal("a refused PUT wrote to the log")
	}
	r = h.call(aliceAK, "PUT", path, map[string]any{"workspace_ids": []string{mine}})
	h.expect(r, 200, "")
	if fmt.Sprint(r.Body["workspace_ids"]) != fmt.Sprint([]string{mine}) {
		t.Fatalf("the answer names a workspace alice is not on: %s", r.Raw)
	}
	g := h.as("GET", path, nil, httpapi.HeaderPosition, r.Header.Get(httpapi.HeaderPosition))
	if want := fmt.Sprint(sortedIDs(mine, theirs)); fmt.Sprint(g.Body["workspace_ids"]) != want {
		t.Fatalf("tom's membership where alice is not was changed: %s, want %s", g.Raw, want)
	}
	r = h.call(aliceAK, "PUT", path, map[string]any{"workspace_ids": []string{}})
	h.expect(r, 200, "")
	g = h.as("GET", path, nil, httpapi.HeaderPosition, r.Header.Get(httpapi.HeaderPosition))
	if fmt.Sprint(g.Body["workspace_ids"]) != fmt.Sprint([]string{theirs}) {
		t.Fatalf("after alice emptied what she sees: %s", g.Raw)
	}
}

func sortedIDs(ids ...string) []string {
	slices.Sort(ids)
	return ids
}
