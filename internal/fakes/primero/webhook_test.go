package primero_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"casesync/internal/fakes/primero"

	"github.com/google/go-cmp/cmp"
)

// hit is one request a webhook receiver got.
type hit struct {
	header http.Header
	body   map[string]any
}

// receiver answers status to every POST and reports each one on the
// returned channel.
func receiver(tb testing.TB, status int) (*httptest.Server, <-chan hit) {
	tb.Helper()
	ch := make(chan hit, 64)
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		ch <- hit{header: r.Header.Clone(), body: m}
		w.WriteHeader(status)
	}))
	tb.Cleanup(rs.Close)
	return rs, ch
}

func next(tb testing.TB, ch <-chan hit) hit {
	tb.Helper()
	select {
	case h := <-ch:
		return h
	case <-time.After(5 * time.Second):
		tb.Fatalf("no webhook delivery within 5s")
		return hit{}
	}
}

func TestServer_ForwardingOnCreateAndUpdate(t *testing.T) {
	rs, ch := receiver(t, http.StatusOK)
	s, srv := start(t, primero.Options{ForwardURL: rs.URL + "/inbox"})
	id := create(t, srv, map[string]any{"national_id_no": "1399900518123"})["id"].(string)
	h := next(t, ch)
	if got := h.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := h.header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("cache-control = %q", got)
	}
	d := h.body["data"].(map[string]any)
	if d["record_id"] != id || d["record_type"] != "case" || d["hostname"] != "primero.fake" || d["national_id_no"] != "1399900518123" {
		t.Errorf("body = %v", d)
	}
	for _, k := range []string{"id", "enabled"} {
		if _, ok := d[k]; ok {
			t.Errorf("webhook body has %q", k)
		}
	}
	wantStatus(t, call(t, srv, "PATCH", "/api/v2/cases/"+id, "openfn_cp_user", map[string]any{"data": map[string]any{"name_other": "Kit"}}), http.StatusOK)
	if got := next(t, ch).body["data"].(map[string]any)["name_other"]; got != "Kit" {
		t.Errorf("update body name_other = %v", got)
	}
	s.WaitDeliveries()
	var events []string
	for _, dl := range s.Deliveries() {
		events = append(events, dl.Event+" "+dl.Status)
	}
	// Deliveries run on their own goroutines and log when the receiver
	// has answered, so two in quick succession may log in either order.
	slices.Sort(events)
	if diff := cmp.Diff([]string{"case.create sent", "case.update sent"}, events); diff != "" {
		t.Errorf("delivery log (-want +got):\n%s", diff)
	}
}

func TestServer_WebhookAuthAndNoRetry(t *testing.T) {
	tests := []struct {
		name   string
		hook   primero.Webhook
		status int
		check  func(t *testing.T, h http.Header)
		want   string
	}{
		{"api key", primero.Webhook{AuthType: primero.WebhookAPIKey, Secret: "k-123"}, 200,
			func(t *testing.T, h http.Header) {
				if h.Get("X-Api-Key") != "k-123" {
					t.Errorf("x-api-key = %q", h.Get("X-Api-Key"))
				}
			}, "sent"},
		{"basic auth", primero.Webhook{AuthType: primero.WebhookBasicAuth, Secret: "hook:pw"}, 200,
			func(t *testing.T, h http.Header) {
				r := &http.Request{Header: h}
				if u, p, ok := r.BasicAuth(); !ok || u != "hook" || p != "pw" {
					t.Errorf("basic auth = %q %q %v", u, p, ok)
				}
			}, "sent"},
		{"a failed delivery is not retried", primero.Webhook{}, 500, func(*testing.T, http.Header) {}, "failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, ch := receiver(t, tc.status)
			tc.hook.URL = rs.URL
			tc.hook.Events = []string{primero.EventCaseCreate}
			s, srv := start(t, primero.Options{Webhooks: []primero.Webhook{tc.hook}})
			create(t, srv, nil)
			tc.check(t, next(t, ch).header)
			s.WaitDeliveries()
			if len(ch) != 0 {
				t.Errorf("%d more deliveries: no retry expected", len(ch))
			}
			dl := s.Deliveries()
			if len(dl) != 1 || dl[0].Status != tc.want || dl[0].HTTPStatus != tc.status {
				t.Errorf("deliveries = %+v", dl)
			}
		})
	}
	t.Run("an unreachable receiver is a failed delivery", func(t *testing.T) {
		rs, _ := receiver(t, 200)
		url := rs.URL
		rs.Close()
		s, srv := start(t, primero.Options{ForwardURL: url})
		create(t, srv, nil)
		s.WaitDeliveries()
		if dl := s.Deliveries(); len(dl) != 1 || dl[0].Status != "failed" || dl[0].HTTPStatus != 0 {
			t.Errorf("deliveries = %+v", dl)
		}
	})
}

func TestServer_WebhooksOnlyForModulesThatUseThem(t *testing.T) {
	rs, ch := receiver(t, 200)
	s, srv := start(t, primero.Options{ForwardURL: rs.URL})
	create(t, srv, map[string]any{"module_id": "primeromodule-gbv"})
	s.WaitDeliveries()
	if len(ch) != 0 || len(s.Deliveries()) != 0 {
		t.Errorf("a GBV case fired a webhook; only modules with use_webhooks_for case do")
	}
}

func TestServer_SyncButtonAndWriteBack(t *testing.T) {
	rs, ch := receiver(t, 200)
	s, srv := start(t, primero.Options{Webhooks: []primero.Webhook{{URL: rs.URL, Events: []string{primero.EventCasePost, primero.EventCaseUpdate}}}})
	id := create(t, srv, nil)["id"].(string)
	wantStatus(t, call(t, srv, "POST", "/api/v2/cases/"+id+"/sync", "mgrpnh", nil), http.StatusForbidden)
	r := call(t, srv, "POST", "/api/v2/cases/"+id+"/sync", "openfn_cp_user", nil)
	wantStatus(t, r, http.StatusOK)
	want := map[string]any{"record_id": id, "record_type": "case", "synced_at": nil, "sync_status": "sending"}
	if diff := cmp.Diff(want, r.data(t)); diff != "" {
		t.Errorf("sync answer (-want +got):\n%s", diff)
	}
	next(t, ch)
	s.WaitDeliveries()
	show := func() map[string]any { return call(t, srv, "GET", "/api/v2/cases/"+id, "openfn_cp_user", nil).data(t) }
	if got := show()["sync_status"]; got != "sent" {
		t.Errorf("after delivery sync_status = %v, want sent", got)
	}
	tests := []struct {
		name       string
		mark       map[string]any
		wantStatus string
		syncedAt   bool
	}{
		{"synced", map[string]any{"mark_synced": true, "mark_synced_url": rs.URL, "mark_synced_status": "synced"}, "synced", true},
		{"explicit failure", map[string]any{"mark_synced": true, "mark_synced_url": rs.URL, "mark_synced_status": "failed"}, "failed", true},
		{"mark_synced false means failed", map[string]any{"mark_synced": false, "mark_synced_url": rs.URL}, "failed", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := show()["last_updated_at"].(string)
			wantStatus(t, call(t, srv, "PATCH", "/api/v2/cases/"+id, "openfn_cp_user", map[string]any{"data": tc.mark}), http.StatusOK)
			// The write-back is an update: it fires case.update again.
			echo := next(t, ch).body["data"].(map[string]any)
			if echo["record_id"] != id {
				t.Errorf("echo for %v", echo["record_id"])
			}
			s.WaitDeliveries()
			got := show()
			if got["sync_status"] != tc.wantStatus {
				t.Errorf("sync_status = %v, want %v", got["sync_status"], tc.wantStatus)
			}
			if _, ok := got["synced_at"]; ok != tc.syncedAt {
				t.Errorf("synced_at present = %v", ok)
			}
			if got["last_updated_at"].(string) <= before {
				t.Errorf("the write-back is a save and bumps last_updated_at")
			}
			stored, _ := s.Case(id)
			for _, k := range []string{"mark_synced", "mark_synced_url", "mark_synced_status"} {
				if _, ok := stored[k]; ok {
					t.Errorf("%s stored; Primero strips it", k)
				}
			}
		})
	}
	t.Run("without sync_external the keys are dropped silently", func(t *testing.T) {
		before := show()["sync_status"]
		mine := create(t, srv, map[string]any{"owned_by": "agency-cif-user"})["id"].(string)
		s.WaitDeliveries()
		for len(ch) > 0 {
			<-ch
		}
		r := call(t, srv, "PATCH", "/api/v2/cases/"+mine, "agency-cif-user", map[string]any{"data": map[string]any{"mark_synced": true, "name_other": "x"}})
		wantStatus(t, r, http.StatusOK)
		s.WaitDeliveries()
		c, _ := s.Case(mine)
		if _, ok := c["sync_status"]; ok {
			t.Errorf("sync_status set by a user without sync_external")
		}
		if show()["sync_status"] != before {
			t.Errorf("another case's sync status moved")
		}
	})
}
