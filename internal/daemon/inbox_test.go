package daemon_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"casesync/internal/daemon"
)

const fetchInbox = `{path: "/hooks/primero", secret: {secret: "INBOX_SECRET"}, header: "x-api-key", key: ".data.record_id",
		fetch: {path: "/api/v2/cases/{$key}", records: "[.data]"}, max_bytes: 4096}`

const bodyInbox = `{path: "/hooks/primero", secret: {secret: "INBOX_SECRET"}, key: ".data", max_bytes: 65536}`

// referredCases lists the record ids of cases the pipeline writes.
func referredCases(e *env) []string {
	var ids []string
	for _, c := range e.sb.Primero.Cases() {
		if c["consent_for_services"] != true {
			continue
		}
		svcs, _ := c["services_section"].([]any)
		for _, s := range svcs {
			if m, _ := s.(map[string]any); m["service_response_type"] == "referral_to_oscar" {
				ids = append(ids, c["id"].(string))
				break
			}
		}
	}
	return ids
}

func (e *env) pending() int {
	e.tb.Helper()
	items, err := e.store.InboxPending(context.Background(), pipeline, 0)
	if err != nil {
		e.tb.Fatal(err)
	}
	return len(items)
}

// waitProcessed waits until n deliveries have been processed.
func (e *env) waitProcessed(n int) {
	e.tb.Helper()
	for done := 0; done < n; {
		done += e.waitKind(daemon.EventInboxProcessed).N
	}
}

func secretHeader(e *env) map[string]string {
	s, _ := e.sb.Secret("INBOX_SECRET")
	return map[string]string{"x-api-key": s}
}

func TestInbox_AuthLimitsAndResponses(t *testing.T) {
	e := newEnv(t, envOptions{dep: deployment{inbox: fetchInbox}, noRun: true})
	secret, _ := e.sb.Secret("INBOX_SECRET")
	ok := `{"data": {"record_id": "` + referredCases(e)[0] + `"}}`
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("primero:"+secret))
	for _, tc := range []struct {
		name string
		body string
		hdr  map[string]string
		want int
	}{
		{"no secret", ok, nil, http.StatusUnauthorized},
		{"wrong secret", ok, map[string]string{"x-api-key": secret + "x"}, http.StatusUnauthorized},
		{"secret in another header", ok, map[string]string{"X-Casesync-Secret": secret}, http.StatusUnauthorized},
		{"wrong basic password", ok, map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("primero:nope"))}, http.StatusUnauthorized},
		{"too large", `{"data": {"record_id": "x"}, "pad": "` + strings.Repeat("x", 5000) + `"}`, secretHeader(e), http.StatusRequestEntityTooLarge},
		{"not JSON", `{"data":`, secretHeader(e), http.StatusBadRequest},
		{"no key", `{"data": {}}`, secretHeader(e), http.StatusUnprocessableEntity},
		{"header secret", ok, secretHeader(e), http.StatusAccepted},
		{"repeated delivery", ok, map[string]string{"Authorization": basic}, http.StatusOK},
		{"basic auth", `{"data": {"record_id": "` + referredCases(e)[1] + `"}}`, map[string]string{"Authorization": basic}, http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.post("/hooks/primero", tc.body, tc.hdr).StatusCode; got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
	resp, err := http.Get(e.srv.URL + "/hooks/primero")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET inbox: %d, want 405", resp.StatusCode)
	}
	m := e.metrics()
	for _, line := range []string{
		`casesync_inbox_deliveries_total{pipeline="cases_to_oscar",result="accepted"} 2`,
		`casesync_inbox_deliveries_total{pipeline="cases_to_oscar",result="duplicate"} 1`,
		`casesync_inbox_deliveries_total{pipeline="cases_to_oscar",result="unauthorized"} 4`,
		`casesync_inbox_deliveries_total{pipeline="cases_to_oscar",result="too_large"} 1`,
		`casesync_inbox_pending{pipeline="cases_to_oscar"} 2`,
	} {
		if !containsLine(m, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}

// Deliveries are stored before the answer, processed once each (also when
// repeated), and a restart processes what was pending.
func TestInbox_PersistsThenProcessesOnce(t *testing.T) {
	e := newEnv(t, envOptions{dep: deployment{inbox: fetchInbox}, noRun: true})
	ids := referredCases(e)[:20]
	for i, id := range ids {
		body := fmt.Sprintf(`{"data": {"record_id": %q, "n": %d}}`, id, i)
		if got := e.post("/hooks/primero", body, secretHeader(e)).StatusCode; got != http.StatusAccepted {
			t.Fatalf("delivery %d: %d", i, got)
		}
		// Stored before the 202: no worker runs yet, so it is pending.
		if n := e.pending(); n != i+1 {
			t.Fatalf("after delivery %d: %d pending, want %d", i, n, i+1)
		}
	}
	for i, id := range ids[:5] { // the sender retries five
		body := fmt.Sprintf(`{"data": {"record_id": %q, "n": %d}}`, id, i)
		if got := e.post("/hooks/primero", body, secretHeader(e)).StatusCode; got != http.StatusOK {
			t.Fatalf("repeated delivery %d: %d, want 200", i, got)
		}
	}
	if n := e.pending(); n != 20 {
		t.Fatalf("%d pending after repeats, want 20", n)
	}

	before := len(externalIDs(e))
	e.run() // as after a restart: the pending deliveries are processed
	e.waitProcessed(20)
	if n := e.pending(); n != 0 {
		t.Errorf("%d deliveries still pending", n)
	}
	fetched := map[string]int{}
	for _, r := range e.sb.Primero.Requests() {
		if r.Method == "GET" && strings.HasPrefix(r.Path, "/api/v2/cases/") {
			fetched[strings.TrimPrefix(r.Path, "/api/v2/cases/")]++
		}
	}
	for _, id := range ids {
		if fetched[id] != 1 {
			t.Errorf("case %s fetched %d times, want once", id, fetched[id])
		}
	}
	if got := len(externalIDs(e)) - before; got != 20 {
		t.Errorf("OSCaR holds %d new referrals, want the 20 delivered", got)
	}
	if n := e.sb.Oscar.Counters().Duplicates.Load(); n != 0 {
		t.Errorf("%d duplicates at OSCaR", n)
	}
	for _, r := range e.runs() {
		if r.Trigger != "inbox" || r.Status != "succeeded" {
			t.Errorf("run %d: trigger %s status %s", r.ID, r.Trigger, r.Status)
		}
	}
}

// Without fetch, the delivered record itself goes through the pipeline.
func TestInbox_DeliveredRecordWithoutFetch(t *testing.T) {
	e := newEnv(t, envOptions{dep: deployment{inbox: bodyInbox}})
	before := len(externalIDs(e)) // the fake's seeded referrals
	ids := referredCases(e)[:3]
	for _, id := range ids {
		c, _ := e.sb.Primero.Case(id)
		b, _ := json.Marshal(map[string]any{"data": c})
		if got := e.post("/hooks/primero", string(b), map[string]string{"X-Casesync-Secret": mustSecret(e)}).StatusCode; got != http.StatusAccepted {
			t.Fatalf("delivery: %d", got)
		}
	}
	e.waitProcessed(3)
	if got := len(externalIDs(e)) - before; got != 3 {
		t.Errorf("OSCaR holds %d new referrals, want 3", got)
	}
	for _, r := range e.sb.Primero.Requests() {
		if r.Method == "GET" && strings.HasPrefix(r.Path, "/api/v2/cases") {
			t.Errorf("the source was read (%s %s) although the record was delivered", r.Method, r.Path)
		}
	}
}

func mustSecret(e *env) string {
	s, _ := e.sb.Secret("INBOX_SECRET")
	return s
}
