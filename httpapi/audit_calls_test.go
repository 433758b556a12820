package httpapi_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/eventstore"
)

// TestAuditCallsFollowedFromATime: a page selected by from hands out cursors that
// keep selecting by it. A record made before from but stored after one the client
// read (an instance whose clock lags, a slow background publish) is in none of the
// pages that follow, whether or not the client repeats from.
func TestAuditCallsFollowedFromATime(t *testing.T) {
	h := start(t)
	_, bobSecret := h.subAccount("bob")
	h.expect(h.call(bobSecret, "GET", "/v1/audit", nil), 403, "forbidden") // refused: kept
	var read []map[string]any
	h.eventually("the refusal kept", func() bool {
		read = h.as("GET", "/v1/audit/calls", nil).items()
		return len(read) == 1
	})
	made, err := time.Parse(time.RFC3339Nano, read[0]["time"].(string))
	if err != nil {
		t.Fatal(err)
	}

	// Stored after it, made a second before it.
	ctx := context.Background()
	js := h.svc.Store().JetStream()
	st, err := js.Stream(ctx, eventstore.AuditStream)
	if err != nil {
		t.Fatal(err)
	}
	last, err := st.GetLastMsgForSubject(ctx, eventstore.AuditSubjectOf(h.admin.OrganizationID))
	if err != nil {
		t.Fatal(err)
	}
	late := nats.NewMsg(last.Subject)
	late.Data = last.Data
	for k, v := range last.Header {
		if strings.HasPrefix(k, "ce-") || k == "content-type" { // not the direct get's own
			late.Header[k] = v
		}
	}
	late.Header.Set(eventstore.HeaderID, ulid.Make().String())
	late.Header.Set(eventstore.HeaderTime, made.Add(-time.Second).Format(time.RFC3339Nano))
	if _, err := js.PublishMsg(ctx, late); err != nil {
		t.Fatal(err)
	}
	if all := h.as("GET", "/v1/audit/calls", nil).items(); len(all) != 2 {
		t.Fatalf("the planted record is not read: %v", all)
	}

	first := h.as("GET", "/v1/audit/calls?limit=1&from="+url.QueryEscape(made.Format(time.RFC3339Nano)), nil)
	h.expect(first, 200, "")
	if items := first.items(); len(items) != 1 || items[0]["event_id"] != read[0]["event_id"] {
		t.Fatalf("from the refusal's time: %s", first.Raw)
	}
	for _, cursor := range []string{first.str("next_cursor"), first.items()[0]["cursor"].(string)} {
		r := h.as("GET", "/v1/audit/calls?cursor="+url.QueryEscape(cursor), nil)
		h.expect(r, 200, "")
		if len(r.items()) != 0 {
			t.Fatalf("following %q without from: %s", cursor, r.Raw)
		}
	}
}
