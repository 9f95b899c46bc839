package primero_test

import (
	"net/http"
	"sort"
	"testing"

	"casesync/internal/fakes/primero"

	"github.com/google/go-cmp/cmp"
)

const (
	caseR = "00000000-0000-4000-8000-00000000ca5e"
	caseN = "00000000-0000-4000-8000-00000000ca5f"
	svcA  = "5c2d4f6c-7a78-43b5-ac40-eb097be5000a"
	svcB  = "5c2d4f6c-7a78-43b5-ac40-eb097be5000b"
	ref1  = "1e5be7bd-7357-4790-a880-ccaca3f40001"
	ref2  = "1e5be7bd-7357-4790-a880-ccaca3f40002"
)

// referralCases is a referred case (ref1 in_progress to cif on service A,
// ref2 with the given status to fco on service B) and a case without
// consent.
func referralCases(ref1Status, ref2Status string) []map[string]any {
	return []map[string]any{
		{
			"id": caseR, "case_id": "bbbbbbbb-0000-4000-8000-000000000001", "created_at": "2025-05-01T00:00:00.000Z",
			"last_updated_at": "2025-05-02T00:00:00.000Z", "module_id": "primeromodule-cp", "status": "open", "record_state": true,
			"owned_by": "mgrpnh", "owned_by_agency_id": "agency-mosvy", "consent_for_services": true, "disclosure_other_orgs": true,
			"assigned_user_names":   []any{"agency-cif-user", "agency-fco-user"},
			"associated_user_names": []any{"mgrpnh", "agency-cif-user", "agency-fco-user"},
			"services_section": []any{
				map[string]any{"unique_id": svcA, "service_type": "family_based_care", "service_response_type": "referral_to_oscar",
					"service_implementing_agency": "agency-cif", "service_status_referred": true},
				map[string]any{"unique_id": svcB, "service_type": "counselling", "service_response_type": "referral_to_oscar",
					"service_implementing_agency": "agency-fco", "service_status_referred": true},
			},
			"referrals": []any{
				map[string]any{"id": ref1, "type": "Referral", "status": ref1Status, "transitioned_to": "agency-cif-user",
					"transitioned_to_agency": "agency-cif", "transitioned_by": "mgrpnh", "service": "family_based_care",
					"service_record_id": svcA, "remote": false, "consent_overridden": false, "created_at": "2025-05-01T12:00:00.000Z"},
				map[string]any{"id": ref2, "type": "Referral", "status": ref2Status, "transitioned_to": "agency-fco-user",
					"transitioned_to_agency": "agency-fco", "transitioned_by": "mgrpnh", "service": "counselling",
					"service_record_id": svcB, "notes": "", "remote": false, "consent_overridden": false,
					"created_at": "2025-05-01T13:00:00.000Z"},
			},
		},
		{
			"id": caseN, "case_id": "bbbbbbbb-0000-4000-8000-000000000002", "created_at": "2025-05-01T00:00:00.000Z",
			"last_updated_at": "2025-05-02T00:00:00.000Z", "module_id": "primeromodule-cp", "status": "open", "record_state": true,
			"owned_by": "mgrpnh", "consent_for_services": false, "disclosure_other_orgs": true,
			"associated_user_names": []any{"mgrpnh"},
		},
	}
}

func TestServer_ReferralsIndexScope(t *testing.T) {
	_, srv := start(t, primero.Options{CasesFrom: referralCases("in_progress", "accepted")})
	tests := []struct {
		name, user, id string
		status         int
		want           []string
		canRespond     []bool
	}{
		{"all-scope user sees every referral", "openfn_cp_user", caseR, 200, []string{ref1, ref2}, []bool{false, false}},
		{"owner sees every referral", "mgrpnh", caseR, 200, []string{ref1, ref2}, []bool{false, false}},
		{"a recipient sees its own", "agency-cif-user", caseR, 200, []string{ref1}, []bool{true}},
		{"outside the case's scope", "unhcr_cw", caseR, 403, nil, nil},
		{"unknown case", "openfn_cp_user", "11111111-2222-4333-8444-555555555555", 404, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, srv, "GET", "/api/v2/cases/"+tc.id+"/referrals", tc.user, nil)
			wantStatus(t, r, tc.status)
			if tc.status != 200 {
				return
			}
			if _, ok := r.json(t)["metadata"]; ok {
				t.Errorf("referral lists have no metadata")
			}
			items := r.list(t)
			if diff := cmp.Diff(tc.want, ids(items)); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			var can []bool
			for _, it := range items {
				can = append(can, it["user_can_accept_or_reject"].(bool))
			}
			if diff := cmp.Diff(tc.canRespond, can); diff != "" {
				t.Errorf("user_can_accept_or_reject (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServer_CreateReferral(t *testing.T) {
	tests := []struct {
		name    string
		user    string
		caseID  string
		body    map[string]any
		status  int
		errWant map[string]any
	}{
		{"no consent", "openfn_cp_user", caseN, map[string]any{"transitioned_to": "agency-cif-user"}, 422,
			map[string]any{"status": float64(422), "resource": "/api/v2/cases/" + caseN + "/referrals", "message": []any{"transition.errors.consent"}, "detail": "consent"}},
		{"no consent but overridden", "openfn_cp_user", caseN, map[string]any{"transitioned_to": "agency-cif-user", "consent_overridden": true}, 200, nil},
		{"unknown recipient", "openfn_cp_user", caseR, map[string]any{"transitioned_to": "ghost"}, 422,
			map[string]any{"status": float64(422), "resource": "/api/v2/cases/" + caseR + "/referrals", "message": []any{"transition.errors.to_user_can_receive"}, "detail": "transitioned_to"}},
		{"recipient cannot receive referrals", "openfn_cp_user", caseR, map[string]any{"transitioned_to": "cp_restricted"}, 422, nil},
		{"recipient is the sender", "openfn_cp_user", caseR, map[string]any{"transitioned_to": "openfn_cp_user"}, 422, nil},
		{"recipient disabled", "openfn_cp_user", caseR, map[string]any{"transitioned_to": "retired_user"}, 422, nil},
		{"recipient lacks the case's module", "openfn_cp_user", caseR, map[string]any{"transitioned_to": "gbv_cw"}, 422, nil},
		{"remote needs no real user", "openfn_cp_user", caseR, map[string]any{"transitioned_to": "someone@elsewhere", "remote": true, "transitioned_to_remote": "elsewhere"}, 200, nil},
		{"no referral permission", "agency-cif-user", caseR, map[string]any{"transitioned_to": "unhcr_focal"}, 403, nil},
		{"no data", "openfn_cp_user", caseR, nil, 422, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := start(t, primero.Options{CasesFrom: referralCases("in_progress", "accepted")})
			var body any = map[string]any{}
			if tc.body != nil {
				body = map[string]any{"data": tc.body}
			}
			r := call(t, srv, "POST", "/api/v2/cases/"+tc.caseID+"/referrals", tc.user, body)
			wantStatus(t, r, tc.status)
			if tc.errWant != nil {
				if diff := cmp.Diff(tc.errWant, errorOf(t, r)); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestServer_CreateReferralSideEffects(t *testing.T) {
	s, srv := start(t, primero.Options{CasesFrom: []map[string]any{referralCases("in_progress", "accepted")[0]}})
	before, _ := s.Case(caseR)
	// Add a third service, then refer it to UNHCR.
	const svcC = "5c2d4f6c-7a78-43b5-ac40-eb097be5000c"
	wantStatus(t, call(t, srv, "PATCH", "/api/v2/cases/"+caseR, "openfn_cp_user", map[string]any{"data": map[string]any{
		"services_section": []any{map[string]any{"unique_id": svcC, "service_type": "legal_support", "service_implementing_agency": "UNHCR"}},
	}}), http.StatusOK)
	r := call(t, srv, "POST", "/api/v2/cases/"+caseR+"/referrals", "openfn_cp_user", map[string]any{"data": map[string]any{
		"transitioned_to": "unhcr_focal", "service": "legal_support", "service_record_id": svcC, "notes": "please help",
	}})
	wantStatus(t, r, http.StatusOK)
	d := r.data(t)
	rec, _ := d["record"].(map[string]any)
	delete(d, "record")
	want := map[string]any{
		"id": d["id"], "type": "Referral", "status": "in_progress", "record_id": caseR, "record_type": "case",
		"transitioned_to": "unhcr_focal", "transitioned_to_agency": "agency-unhcr", "notes": "please help",
		"transitioned_by": "openfn_cp_user", "transitioned_by_user_agency": "agency-unicef", "service": "legal_support",
		"service_record_id": svcC, "remote": false, "consent_overridden": false, "consent_individual_transfer": false,
		"created_at": "2025-07-15T09:30:00.000Z", "record_access_denied": false, "user_can_accept_or_reject": false,
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("transition (-want +got):\n%s", diff)
	}
	var recKeys []string
	for k := range rec {
		recKeys = append(recKeys, k)
	}
	sort.Strings(recKeys)
	wantKeys := []string{"assigned_user_names", "associated_user_names", "enabled", "id", "last_updated_at", "referred_users", "services_section"}
	if diff := cmp.Diff(wantKeys, recKeys); diff != "" {
		t.Errorf("record echo keys (-want +got):\n%s", diff)
	}
	after, _ := s.Case(caseR)
	rows := after["services_section"].([]any)
	if rows[2].(map[string]any)["service_status_referred"] != true {
		t.Errorf("service C not marked referred: %v", rows[2])
	}
	if diff := cmp.Diff([]any{"agency-cif-user", "agency-fco-user", "unhcr_focal"}, after["assigned_user_names"]); diff != "" {
		t.Errorf("assigned (-want +got):\n%s", diff)
	}
	if after["last_updated_at"].(string) <= before["last_updated_at"].(string) {
		t.Errorf("a referral must bump last_updated_at")
	}
	if got := len(s.Referrals(caseR)); got != 3 {
		t.Errorf("referrals = %d, want 3", got)
	}
}

func TestServer_ReferralStateMachine(t *testing.T) {
	tests := []struct {
		name       string
		from       string
		method     string
		body       map[string]any
		wantStatus string
		changed    bool
	}{
		{"accept", "in_progress", "PATCH", map[string]any{"status": "accepted"}, "accepted", true},
		{"reject", "in_progress", "PATCH", map[string]any{"status": "rejected", "rejected_reason": "no capacity"}, "rejected", true},
		{"done straight from in_progress is a no-op", "in_progress", "PATCH", map[string]any{"status": "done"}, "in_progress", false},
		{"done after accepted", "accepted", "PATCH", map[string]any{"status": "done", "rejection_note": "service delivered"}, "done", true},
		{"accept twice is a no-op", "accepted", "PATCH", map[string]any{"status": "accepted"}, "accepted", false},
		{"reject after accepted is a no-op", "accepted", "PATCH", map[string]any{"status": "rejected"}, "accepted", false},
		{"accept after rejected is a no-op", "rejected", "PATCH", map[string]any{"status": "accepted"}, "rejected", false},
		{"unknown status is a no-op", "in_progress", "PATCH", map[string]any{"status": "bogus"}, "in_progress", false},
		{"revoke", "in_progress", "DELETE", nil, "revoked", true},
		{"revoke an accepted referral", "accepted", "DELETE", nil, "revoked", true},
		{"accept after revoked is a no-op", "revoked", "PATCH", map[string]any{"status": "accepted"}, "revoked", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := start(t, primero.Options{CasesFrom: referralCases(tc.from, "in_progress")})
			before, _ := s.Case(caseR)
			var body any
			if tc.body != nil {
				body = map[string]any{"data": tc.body}
			}
			r := call(t, srv, tc.method, "/api/v2/cases/"+caseR+"/referrals/"+ref1, "openfn_cp_user", body)
			wantStatus(t, r, http.StatusOK)
			d := r.data(t)
			if d["status"] != tc.wantStatus {
				t.Errorf("status = %v, want %v", d["status"], tc.wantStatus)
			}
			if _, ok := d["record"].(map[string]any); !ok {
				t.Errorf("no record echo: %s", r.raw)
			}
			after, _ := s.Case(caseR)
			bumped := after["last_updated_at"] != before["last_updated_at"]
			if bumped != tc.changed {
				t.Errorf("last_updated_at bumped = %v, want %v", bumped, tc.changed)
			}
			if !tc.changed {
				if diff := cmp.Diff(before, after); diff != "" {
					t.Errorf("a no-op changed the case (-before +after):\n%s", diff)
				}
			}
		})
	}
}

func TestServer_ReferralSideEffectsOfResponses(t *testing.T) {
	t.Run("reject removes the recipient unless another live referral needs them", func(t *testing.T) {
		cases := referralCases("in_progress", "in_progress")
		// ref2 goes to cif as well.
		refs := cases[0]["referrals"].([]any)
		refs[1].(map[string]any)["transitioned_to"] = "agency-cif-user"
		s, srv := start(t, primero.Options{CasesFrom: cases})
		reject := func(rid string) {
			wantStatus(t, call(t, srv, "PATCH", "/api/v2/cases/"+caseR+"/referrals/"+rid, "openfn_cp_user",
				map[string]any{"data": map[string]any{"status": "rejected", "rejected_reason": "no"}}), http.StatusOK)
		}
		reject(ref1)
		c, _ := s.Case(caseR)
		if diff := cmp.Diff([]any{"agency-cif-user", "agency-fco-user"}, c["assigned_user_names"]); diff != "" {
			t.Errorf("after the first reject (-want +got):\n%s", diff)
		}
		reject(ref2)
		c, _ = s.Case(caseR)
		if diff := cmp.Diff([]any{"agency-fco-user"}, c["assigned_user_names"]); diff != "" {
			t.Errorf("after the second reject (-want +got):\n%s", diff)
		}
		got := s.Referrals(caseR)[0]
		if got["rejected_reason"] != "no" || got["responded_at"] == nil {
			t.Errorf("rejected referral = %v", got)
		}
	})
	t.Run("done implements the service and copies the note", func(t *testing.T) {
		s, srv := start(t, primero.Options{CasesFrom: referralCases("accepted", "in_progress")})
		wantStatus(t, call(t, srv, "PATCH", "/api/v2/cases/"+caseR+"/referrals/"+ref1, "agency-cif-user",
			map[string]any{"data": map[string]any{"status": "done", "rejection_note": "delivered"}}), http.StatusOK)
		c, _ := s.Case(caseR)
		row := c["services_section"].([]any)[0].(map[string]any)
		got := []any{row["service_implemented"], row["service_implemented_day_time"], row["note_on_referral_from_provider"]}
		if diff := cmp.Diff([]any{"implemented", "2025-07-15T09:30:00.000Z", "delivered"}, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("the fixtures' PATCH bodies: extra keys are ignored", func(t *testing.T) {
		for _, f := range []struct{ file, status string }{
			{"testdata/referral_patch_accept_request.json", "accepted"},
			{"testdata/referral_patch_reject_request.json", "rejected"},
		} {
			var body map[string]any
			fixtureJSON(t, f.file, &body)
			_, srv := start(t, primero.Options{CasesFrom: referralCases("in_progress", "in_progress")})
			r := call(t, srv, "PATCH", "/api/v2/cases/"+caseR+"/referrals/"+ref1, "openfn_cp_user", body)
			wantStatus(t, r, http.StatusOK)
			d := r.data(t)
			if d["status"] != f.status || d["id"] != ref1 || d["record_id"] != caseR {
				t.Errorf("%s: answer = %v", f.file, d)
			}
		}
	})
}

func TestServer_ReferralFoundGlobally(t *testing.T) {
	_, srv := start(t, primero.Options{CasesFrom: append(referralCases("in_progress", "in_progress"), crafted()...)})
	tests := []struct {
		name, user, path string
		status           int
	}{
		{"the case in the URL is not consulted", "openfn_cp_user", "/api/v2/cases/" + c1 + "/referrals/" + ref1, 200},
		{"unknown referral", "openfn_cp_user", "/api/v2/cases/" + caseR + "/referrals/11111111-2222-4333-8444-555555555555", 404},
		{"recipient with receive_referral", "agency-cif-user", "/api/v2/cases/" + caseR + "/referrals/" + ref2, 200},
		{"cannot read the case", "unhcr_cw", "/api/v2/cases/" + caseR + "/referrals/" + ref1, 403},
		{"can read but neither write nor receive", "cp_restricted", "/api/v2/cases/" + caseR + "/referrals/" + ref1, 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, srv, "PATCH", tc.path, tc.user, map[string]any{"data": map[string]any{"status": "accepted"}})
			wantStatus(t, r, tc.status)
			if tc.status == 404 {
				if got := errorOf(t, r)["detail"]; got != "Couldn't find Referral with 'id'=11111111-2222-4333-8444-555555555555" {
					t.Errorf("detail = %v", got)
				}
			}
		})
	}
}

func TestServer_TransfersAssignsTransitions(t *testing.T) {
	s, srv := start(t, primero.Options{CasesFrom: referralCases("in_progress", "accepted")})
	// Transfers need only disclosure: caseN has it without consent.
	r := call(t, srv, "POST", "/api/v2/cases/"+caseN+"/transfers", "openfn_cp_user", map[string]any{"data": map[string]any{"transitioned_to": "unhcr_cw"}})
	wantStatus(t, r, http.StatusOK)
	tid := r.data(t)["id"].(string)
	if r.data(t)["type"] != "Transfer" {
		t.Errorf("type = %v", r.data(t)["type"])
	}
	c, _ := s.Case(caseN)
	if c["transfer_status"] != "in_progress" || c["owned_by"] != "mgrpnh" {
		t.Errorf("before accept: transfer_status %v, owned_by %v", c["transfer_status"], c["owned_by"])
	}
	r = call(t, srv, "PATCH", "/api/v2/cases/"+caseN+"/transfers/"+tid, "openfn_cp_user", map[string]any{"data": map[string]any{"status": "accepted"}})
	wantStatus(t, r, http.StatusOK)
	c, _ = s.Case(caseN)
	if c["owned_by"] != "unhcr_cw" || c["owned_by_agency_id"] != "agency-unhcr" || c["previously_owned_by"] != "mgrpnh" {
		t.Errorf("accepting a transfer makes the recipient the owner: %v %v %v", c["owned_by"], c["owned_by_agency_id"], c["previously_owned_by"])
	}
	// A referral id is not a transfer id.
	wantStatus(t, call(t, srv, "PATCH", "/api/v2/cases/"+caseR+"/transfers/"+ref1, "openfn_cp_user", map[string]any{"data": map[string]any{"status": "accepted"}}), http.StatusNotFound)

	r = call(t, srv, "POST", "/api/v2/cases/"+caseR+"/assigns", "openfn_cp_user", map[string]any{"data": map[string]any{"transitioned_to": "mgrkdl", "notes": "cover"}})
	wantStatus(t, r, http.StatusOK)
	c, _ = s.Case(caseR)
	if c["owned_by"] != "mgrkdl" || c["owned_by_location"] != "8" {
		t.Errorf("an assign changes the owner at once: %v %v", c["owned_by"], c["owned_by_location"])
	}
	types := func(path string) []string {
		var out []string
		for _, it := range call(t, srv, "GET", path, "openfn_cp_user", nil).list(t) {
			out = append(out, it["type"].(string))
		}
		return out
	}
	if diff := cmp.Diff([]string{"Referral", "Referral", "Assign"}, types("/api/v2/cases/"+caseR+"/transitions")); diff != "" {
		t.Errorf("transitions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Assign"}, types("/api/v2/cases/"+caseR+"/transitions?types=Assign,Transfer")); diff != "" {
		t.Errorf("transitions of some types (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Transfer"}, types("/api/v2/cases/"+caseN+"/transfers")); diff != "" {
		t.Errorf("transfers (-want +got):\n%s", diff)
	}
}

func TestServer_BulkReferrals(t *testing.T) {
	_, srv := start(t, primero.Options{CasesFrom: referralCases("in_progress", "accepted")})
	r := call(t, srv, "POST", "/api/v2/cases/referrals", "openfn_cp_user", map[string]any{"data": map[string]any{
		"ids": []any{caseR, caseN, "11111111-2222-4333-8444-555555555555"}, "transitioned_to": "unhcr_focal",
	}})
	wantStatus(t, r, http.StatusOK)
	body := r.json(t)
	if got := len(body["data"].([]any)); got != 1 {
		t.Errorf("created = %d, want 1", got)
	}
	var statuses []float64
	for _, e := range body["errors"].([]any) {
		statuses = append(statuses, e.(map[string]any)["status"].(float64))
	}
	if diff := cmp.Diff([]float64{422, 404}, statuses); diff != "" {
		t.Errorf("error statuses (-want +got):\n%s", diff)
	}
}

func TestServer_RespondReferralHook(t *testing.T) {
	s, _ := start(t, primero.Options{CasesFrom: referralCases("in_progress", "accepted")})
	changed, err := s.RespondReferral(ref1, "agency-cif-user", "accepted", "")
	if err != nil || !changed {
		t.Fatalf("first accept: changed %v, err %v", changed, err)
	}
	changed, err = s.RespondReferral(ref1, "agency-cif-user", "accepted", "")
	if err != nil || changed {
		t.Errorf("second accept: changed %v, err %v; want a no-op", changed, err)
	}
	if _, err := s.RespondReferral("nope", "agency-cif-user", "accepted", ""); err == nil {
		t.Errorf("unknown referral: no error")
	}
}
