package primero_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"casesync/internal/fakes/primero"

	"github.com/google/go-cmp/cmp"
)

func TestServer_TouchBumpsAndMerges(t *testing.T) {
	s, srv := start(t, primero.Options{Cases: 10, Seed: 6})
	c := s.Cases()[3]
	id := c["id"].(string)
	s.Touch(id, map[string]any{"risk_level": "high", "name_nickname": "Touched"})
	after, _ := s.Case(id)
	if after["risk_level"] != "high" || after["name_nickname"] != "Touched" || after["case_id"] != c["case_id"] {
		t.Errorf("after Touch: %v %v %v", after["risk_level"], after["name_nickname"], after["case_id"])
	}
	if after["last_updated_at"] != "2025-07-15T09:30:00.000Z" {
		t.Errorf("last_updated_at = %v, want the fake's clock", after["last_updated_at"])
	}
	// A cursor taken before the touch now finds the case.
	got, _ := listIDs(t, srv, "openfn_cp_user", "last_updated_at=2025-07-15T09:30:00Z..")
	if diff := cmp.Diff([]string{id}, got); diff != "" {
		t.Errorf("cursor listing (-want +got):\n%s", diff)
	}
}

func TestServer_ResetAndClock(t *testing.T) {
	s, srv := start(t, primero.Options{Cases: 8, Seed: 6})
	initial := s.Cases()
	tok := bearerLogin(t, srv, "openfn_cp_user")
	s.Advance(90 * time.Minute)
	if got := s.Now(); !got.Equal(fixedNow.Add(90 * time.Minute)) {
		t.Errorf("Now = %v", got)
	}
	d := create(t, srv, nil)
	if d["created_at"] != "2025-07-15T11:00:00.000Z" {
		t.Errorf("created_at = %v, want the advanced clock", d["created_at"])
	}
	s.Reset()
	if diff := cmp.Diff(initial, s.Cases()); diff != "" {
		t.Errorf("Reset did not restore the seed (-want +got):\n%s", diff)
	}
	if !s.Now().Equal(fixedNow) {
		t.Errorf("Reset kept the clock offset")
	}
	r := callWith(t, srv, "GET", "/api/v2/cases", nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) })
	wantStatus(t, r, http.StatusUnauthorized)
}

func TestServer_InjectedIDSource(t *testing.T) {
	n := 0
	ids := func() string {
		n++
		return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
	}
	_, srv := start(t, primero.Options{NewID: ids})
	d := create(t, srv, nil)
	want := map[string]any{"id": "00000000-0000-4000-8000-000000000001", "case_id": "00000000-0000-4000-8000-000000000002"}
	got := map[string]any{"id": d["id"], "case_id": d["case_id"]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}

func TestServer_FakeHookRoutes(t *testing.T) {
	s, srv := start(t, primero.Options{CasesFrom: referralCases("in_progress", "accepted")})
	tok := bearerLogin(t, srv, "openfn_cp_user")
	tests := []struct {
		name, method, path string
		status             int
		check              func(t *testing.T, r reply)
	}{
		{"advance the clock", "POST", "/__fake/clock?advance=1h", 200, func(t *testing.T, r reply) {
			if r.json(t)["now"] != "2025-07-15T10:30:00.000Z" {
				t.Errorf("now = %v", r.json(t)["now"])
			}
		}},
		{"a bad duration", "POST", "/__fake/clock?advance=soon", 422, nil},
		{"accept a referral as its recipient", "POST", "/__fake/referrals/" + ref1 + "?user=agency-cif-user&status=accepted", 200, func(t *testing.T, r reply) {
			if r.json(t)["changed"] != true {
				t.Errorf("body = %s", r.raw)
			}
			if got := s.Referrals(caseR)[0]["status"]; got != "accepted" {
				t.Errorf("referral status = %v", got)
			}
		}},
		{"an illegal move changes nothing", "POST", "/__fake/referrals/" + ref1 + "?user=agency-cif-user&status=accepted", 200, func(t *testing.T, r reply) {
			if r.json(t)["changed"] != false {
				t.Errorf("body = %s", r.raw)
			}
		}},
		{"unknown referral", "POST", "/__fake/referrals/nope?user=agency-cif-user&status=accepted", 404, nil},
		{"expire tokens", "POST", "/__fake/expire-tokens", 204, func(t *testing.T, r reply) {
			got := callWith(t, srv, "GET", "/api/v2/cases", nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) })
			wantStatus(t, got, http.StatusUnauthorized)
		}},
		{"request log", "GET", "/__fake/requests", 200, func(t *testing.T, r reply) {
			if len(r.list(t)) < 5 {
				t.Errorf("log = %s", r.raw)
			}
		}},
		{"reset", "POST", "/__fake/reset", 204, func(t *testing.T, r reply) {
			if got := s.Referrals(caseR)[0]["status"]; got != "in_progress" {
				t.Errorf("after reset the referral is %v", got)
			}
		}},
		{"never under /api/v2: an unknown route", "POST", "/api/v2/__fake/reset", 404, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, srv, tc.method, tc.path, "", nil)
			wantStatus(t, r, tc.status)
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func TestServer_WebhookConfigAPI(t *testing.T) {
	_, srv := start(t, primero.Options{ForwardURL: "http://127.0.0.1:9/inbox"})
	r := call(t, srv, "GET", "/api/v2/webhooks", "openfn_cp_user", nil)
	wantStatus(t, r, http.StatusOK)
	if got := r.list(t); len(got) != 1 || got[0]["url"] != "http://127.0.0.1:9/inbox" {
		t.Errorf("webhooks = %v", got)
	}
	body := map[string]any{"data": map[string]any{"events": []any{"case.create"}, "url": "http://127.0.0.1:9/other", "role_unique_id": "role-integration"}}
	wantStatus(t, call(t, srv, "POST", "/api/v2/webhooks", "openfn_cp_user", body), http.StatusOK)
	r = call(t, srv, "POST", "/api/v2/webhooks", "openfn_cp_user", body)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantStatus(t, call(t, srv, "GET", "/api/v2/webhooks", "mgrpnh", nil), http.StatusForbidden)
	wantStatus(t, call(t, srv, "DELETE", "/api/v2/webhooks/2", "openfn_cp_user", nil), http.StatusOK)
	wantStatus(t, call(t, srv, "DELETE", "/api/v2/webhooks/2", "openfn_cp_user", nil), http.StatusNotFound)
}
