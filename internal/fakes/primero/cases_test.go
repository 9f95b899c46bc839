package primero_test

import (
	"net/http"
	"regexp"
	"sort"
	"sync"
	"testing"
	"time"

	"casesync/internal/fakes/primero"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var reUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestServer_CreateCaseServerFields(t *testing.T) {
	s, srv := start(t, primero.Options{})
	d := create(t, srv, map[string]any{"favourite_colour": "blue", "national_id_no": "007"})
	caseID, _ := d["case_id"].(string)
	if !reUUID.MatchString(caseID) || !reUUID.MatchString(d["id"].(string)) || caseID == d["id"] {
		t.Fatalf("id %v and case_id %v must be two different UUIDs", d["id"], caseID)
	}
	want := map[string]any{
		"id": d["id"], "enabled": true, "case_id": caseID, "short_id": caseID[len(caseID)-7:],
		"case_id_display": caseID[len(caseID)-7:], "created_at": "2025-07-15T09:30:00.000Z", "created_by": "openfn_cp_user",
		"created_organization": "agency-unicef", "owned_by": "openfn_cp_user", "owned_by_agency_id": "agency-unicef",
		"owned_by_groups": []any{"usergroup-primero-cp"}, "owned_by_location": "KH",
		"associated_user_names": []any{"openfn_cp_user"}, "assigned_user_names": []any{}, "status": "open",
		"record_state": true, "workflow": "new", "case_status_reopened": false, "registration_date": "2025-07-15",
		"last_updated_by": "openfn_cp_user", "last_updated_at": "2025-07-15T09:30:00.000Z",
		"module_id": "primeromodule-cp", "name_first": "Tovi", "name_last": "Rasok", "sex": "female", "age": float64(9),
		"date_of_birth": "2016-02-01", "consent_for_services": true, "disclosure_other_orgs": true,
		"national_id_no": "007", // numeric-looking strings stay strings
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("create answer (-want +got):\n%s", diff)
	}
	stored, _ := s.Case(d["id"].(string))
	if _, ok := stored["favourite_colour"]; ok {
		t.Errorf("an unknown field was stored")
	}
	if stored["unique_identifier"] != caseID {
		t.Errorf("unique_identifier = %v, want the server-made case_id", stored["unique_identifier"])
	}
	if got := s.Counters().Writes()["create"]; got != 1 {
		t.Errorf("create writes = %d", got)
	}
}

func TestServer_CreateCaseVariants(t *testing.T) {
	const clientID = "12345678-1234-4234-8234-123456789abc"
	tests := []struct {
		name   string
		body   any
		status int
		check  func(t *testing.T, s *primero.Server, r reply)
	}{
		{
			name: "client id: 204, no body, that id is used", body: newCase(map[string]any{"id": clientID}), status: http.StatusNoContent,
			check: func(t *testing.T, s *primero.Server, r reply) {
				if len(r.raw) != 0 {
					t.Errorf("body = %s", r.raw)
				}
				if _, ok := s.Case(clientID); !ok {
					t.Errorf("case %s not stored", clientID)
				}
			},
		},
		{
			name: "client case_id is kept; unique_identifier differs", body: newCase(map[string]any{"case_id": "cccccccc-1234-4234-8234-123456789abc"}), status: http.StatusOK,
			check: func(t *testing.T, s *primero.Server, r reply) {
				d := r.data(t)
				if d["case_id"] != "cccccccc-1234-4234-8234-123456789abc" || d["short_id"] != "6789abc" {
					t.Errorf("case_id/short_id = %v/%v", d["case_id"], d["short_id"])
				}
				c, _ := s.Case(d["id"].(string))
				if c["unique_identifier"] == c["case_id"] {
					t.Errorf("unique_identifier equals a supplied case_id")
				}
			},
		},
		{
			name: "missing data creates an empty case", body: map[string]any{}, status: http.StatusOK,
			check: func(t *testing.T, s *primero.Server, r reply) {
				d := r.data(t)
				if d["status"] != "open" || d["owned_by"] != "openfn_cp_user" || d["case_id"] == nil {
					t.Errorf("empty case = %v", d)
				}
			},
		},
		{
			name: "no module_id: form fields dropped, core kept", body: map[string]any{"data": map[string]any{"name_first": "Tovi", "status": "open", "oscar_number": "X"}}, status: http.StatusOK,
			check: func(t *testing.T, s *primero.Server, r reply) {
				c, _ := s.Case(r.data(t)["id"].(string))
				if _, ok := c["name_first"]; ok {
					t.Errorf("name_first kept without a module")
				}
				if _, ok := c["oscar_number"]; ok {
					t.Errorf("oscar_number kept without a module")
				}
			},
		},
		{
			name: "GBV module: the Cambodia form is not on it", body: newCase(map[string]any{"module_id": "primeromodule-gbv", "oscar_number": "X", "sex": "male"}), status: http.StatusOK,
			check: func(t *testing.T, s *primero.Server, r reply) {
				c, _ := s.Case(r.data(t)["id"].(string))
				if _, ok := c["oscar_number"]; ok {
					t.Errorf("oscar_number kept on a GBV case")
				}
				if c["sex"] != "male" {
					t.Errorf("sex = %v, want it kept (basic_identity is on GBV)", c["sex"])
				}
			},
		},
		{
			name: "deployment fields are writable", status: http.StatusOK,
			body: newCase(map[string]any{
				"oscar_number": "01ABC", "oscar_short_id": "abc-12", "mosvy_number": "123", "oscar_status": "Active",
				"services_section": []any{map[string]any{
					"service_type": "social_work_case_work", "service_subtype": []any{"social_work_case_work_community"},
					"service_response_type": "referral_from_oscar", "oscar_referral_id_a4ac8a5": "1193",
					"referral_status_edf41f2": "pending_310366", "unhcr_referral_status": "pending",
					"progres_interventionnumber": "X-1,Y,Z", "service_request_agency": "UNHCR", "service_referral": "external_referral",
					"service_implementing_agency": "agency-cif",
				}},
			}),
			check: func(t *testing.T, s *primero.Server, r reply) {
				c, _ := s.Case(r.data(t)["id"].(string))
				row := c["services_section"].([]any)[0].(map[string]any)
				for _, k := range []string{"oscar_referral_id_a4ac8a5", "referral_status_edf41f2", "unhcr_referral_status", "progres_interventionnumber", "service_subtype"} {
					if _, ok := row[k]; !ok {
						t.Errorf("service field %s dropped", k)
					}
				}
				for _, k := range []string{"oscar_number", "oscar_short_id", "mosvy_number", "oscar_status"} {
					if _, ok := c[k]; !ok {
						t.Errorf("case field %s dropped", k)
					}
				}
				if !reUUID.MatchString(row["unique_id"].(string)) {
					t.Errorf("row unique_id = %v, want a fresh UUID", row["unique_id"])
				}
				if c["workflow"] != "referral_from_oscar" {
					t.Errorf("workflow = %v", c["workflow"])
				}
			},
		},
		{
			name: "known owner fills the owner fields", body: newCase(map[string]any{"owned_by": "mgrkdl"}), status: http.StatusOK,
			check: func(t *testing.T, s *primero.Server, r reply) {
				d := r.data(t)
				got := map[string]any{"owned_by": d["owned_by"], "owned_by_agency_id": d["owned_by_agency_id"],
					"owned_by_groups": d["owned_by_groups"], "owned_by_location": d["owned_by_location"], "associated_user_names": d["associated_user_names"]}
				want := map[string]any{"owned_by": "mgrkdl", "owned_by_agency_id": "agency-mosvy", "owned_by_groups": []any{"usergroup-mosvy"},
					"owned_by_location": "8", "associated_user_names": []any{"mgrkdl"}}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("owner fields (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "unknown owner reverts to null on create", body: newCase(map[string]any{"owned_by": "nobody_here"}), status: http.StatusOK,
			check: func(t *testing.T, s *primero.Server, r reply) {
				if v, ok := r.data(t)["owned_by"]; !ok || v != nil {
					t.Errorf("owned_by = %v, want null", v)
				}
			},
		},
		{
			name: "client created_at is kept", body: newCase(map[string]any{"created_at": "2025-01-02T03:04:05.678Z"}), status: http.StatusOK,
			check: func(t *testing.T, s *primero.Server, r reply) {
				if got := r.data(t)["created_at"]; got != "2025-01-02T03:04:05.678Z" {
					t.Errorf("created_at = %v", got)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := start(t, primero.Options{})
			r := call(t, srv, "POST", "/api/v2/cases", "openfn_cp_user", tc.body)
			wantStatus(t, r, tc.status)
			tc.check(t, s, r)
		})
	}
}

func TestServer_CreateConflicts(t *testing.T) {
	const id = "12345678-1234-4234-8234-123456789abc"
	const caseID = "cccccccc-1234-4234-8234-123456789abc"
	tests := []struct {
		name   string
		second map[string]any
	}{
		{"duplicate data.id", newCase(map[string]any{"id": id})},
		{"duplicate data.case_id", newCase(map[string]any{"case_id": caseID})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := start(t, primero.Options{})
			wantStatus(t, call(t, srv, "POST", "/api/v2/cases", "openfn_cp_user", newCase(map[string]any{"id": id, "case_id": caseID})), http.StatusNoContent)
			r := call(t, srv, "POST", "/api/v2/cases", "openfn_cp_user", tc.second)
			wantStatus(t, r, http.StatusConflict)
			want := map[string]any{"status": float64(409), "resource": "/api/v2/cases", "message": "Conflict: A record with this id already exists"}
			if diff := cmp.Diff(want, errorOf(t, r)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if got := s.Counters().Duplicates.Load(); got != 1 {
				t.Errorf("Duplicates = %d, want 1", got)
			}
			if got := len(s.Cases()); got != 1 {
				t.Errorf("cases = %d, want 1", got)
			}
		})
	}
	t.Run("a repeated external identifier is created but counted", func(t *testing.T) {
		s, srv := start(t, primero.Options{})
		create(t, srv, map[string]any{"unhcr_individual_no": "U-9"})
		create(t, srv, map[string]any{"unhcr_individual_no": "U-9"})
		if got := s.Counters().Duplicates.Load(); got != 1 {
			t.Errorf("Duplicates = %d, want 1", got)
		}
	})
}

func TestServer_ValidationPointers(t *testing.T) {
	row := func(kv ...any) map[string]any {
		m := map[string]any{"service_type": "food"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return map[string]any{"services_section": []any{m}}
	}
	tests := []struct {
		name  string
		extra map[string]any
		want  []string
	}{
		{"age as a string", map[string]any{"age": "18"}, []string{"/age"}},
		{"age with a fraction", map[string]any{"age": 18.5}, []string{"/age"}},
		{"age beyond 32 bits", map[string]any{"age": 3_000_000_000}, []string{"/age"}},
		{"tick box as a string", map[string]any{"consent_for_services": "true"}, []string{"/consent_for_services"}},
		{"tick box null", map[string]any{"consent_for_services": nil}, []string{"/consent_for_services"}},
		{"date with slashes", map[string]any{"date_of_birth": "2012/01/01"}, []string{"/date_of_birth"}},
		{"empty date", map[string]any{"date_of_birth": ""}, []string{"/date_of_birth"}},
		{"timestamp in a date field", map[string]any{"date_of_birth": "2012-01-01T00:00:00Z"}, []string{"/date_of_birth"}},
		{"date of birth in a future year", map[string]any{"date_of_birth": "2999-01-01"}, []string{"/date_of_birth"}},
		{"date only in a datetime field", row("service_response_day_time", "2021-10-01"), []string{"/services_section/0/service_response_day_time"}},
		{"option not in the lookup", map[string]any{"sex": "unicorn"}, []string{"/sex"}},
		{"multi-select item not in the lookup", map[string]any{"protection_concerns": []any{"rape", "nope"}}, []string{"/protection_concerns/1"}},
		{"upper-case subform unique_id", row("unique_id", "ABCDEF00-0000-4000-8000-000000000000"), []string{"/services_section/0/unique_id"}},
		{"_destroy not a boolean", row("_destroy", "yes"), []string{"/services_section/0/_destroy"}},
		{"unknown key inside a subform row", row("no_such_field", 1), []string{"/services_section/0/no_such_field"}},
		{"core status outside its enum", map[string]any{"status": "pending"}, []string{"/status"}},
		{"unknown module", map[string]any{"module_id": "primeromodule-xyz"}, []string{"/module_id"}},
		{"several at once, sorted", map[string]any{"sex": "x", "age": "1"}, []string{"/age", "/sex"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := start(t, primero.Options{})
			r := call(t, srv, "POST", "/api/v2/cases", "openfn_cp_user", newCase(tc.extra))
			wantStatus(t, r, http.StatusUnprocessableEntity)
			want := map[string]any{"status": float64(422), "resource": "/api/v2/cases", "message": "Invalid Record JSON", "detail": toAny(tc.want)}
			if diff := cmp.Diff(want, errorOf(t, r)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("accepted values", func(t *testing.T) {
		_, srv := start(t, primero.Options{})
		create(t, srv, map[string]any{"name_middle": nil, "age": nil, "date_of_birth": nil, "sex": "other_b25f252",
			"services_section": []any{map[string]any{"service_type": "food", "service_response_day_time": "2021-10-01T00:00:00Z", "_destroy": false}}})
	})
	t.Run("the UNHCR request fixture fails on its string age only", func(t *testing.T) {
		var body map[string]any
		fixtureJSON(t, "testdata/case_post_request_unhcr.json", &body)
		_, srv := start(t, primero.Options{})
		r := call(t, srv, "POST", "/api/v2/cases", "openfn_cp_user", body)
		wantStatus(t, r, http.StatusUnprocessableEntity)
		if diff := cmp.Diff([]any{"/age"}, errorOf(t, r)["detail"]); diff != "" {
			t.Errorf("pointers (-want +got):\n%s", diff)
		}
		body["data"].(map[string]any)["age"] = 18
		wantStatus(t, call(t, srv, "POST", "/api/v2/cases", "openfn_cp_user", body), http.StatusOK)
	})
}

func toAny(xs []string) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

func TestServer_PatchMergeRules(t *testing.T) {
	const s1, s2 = "aaaaaaaa-0000-4000-8000-0000000000a1", "aaaaaaaa-0000-4000-8000-0000000000a2"
	base := map[string]any{
		"protection_concerns": []any{"rape", "abandonment"}, "name_nickname": "Vi", "national_id_no": "N1",
		"services_section": []any{
			map[string]any{"unique_id": s1, "service_type": "food", "service_referral_notes": "one", "service_response_type": "service_provision"},
			map[string]any{"unique_id": s2, "service_type": "counselling", "service_referral_notes": "two"},
		},
	}
	tests := []struct {
		name  string
		patch map[string]any
		check func(t *testing.T, before, after map[string]any)
	}{
		{"keys not sent are kept, sent keys overwrite, null overwrites", map[string]any{"name_first": "Rasa", "name_nickname": nil},
			func(t *testing.T, before, after map[string]any) {
				if after["name_first"] != "Rasa" || after["name_nickname"] != nil || after["name_last"] != "Rasok" {
					t.Errorf("after = %v / %v / %v", after["name_first"], after["name_nickname"], after["name_last"])
				}
				if _, ok := after["name_nickname"]; !ok {
					t.Errorf("null must be stored, not deleted")
				}
			}},
		{"subform row matched by unique_id is deep-merged", map[string]any{"services_section": []any{map[string]any{"unique_id": s2, "service_referral_notes": "updated"}}},
			func(t *testing.T, before, after map[string]any) {
				rows := after["services_section"].([]any)
				if len(rows) != 2 {
					t.Fatalf("rows = %d", len(rows))
				}
				r2 := rows[1].(map[string]any)
				if r2["service_referral_notes"] != "updated" || r2["service_type"] != "counselling" {
					t.Errorf("row 2 = %v", r2)
				}
				if rows[0].(map[string]any)["service_referral_notes"] != "one" {
					t.Errorf("row 1 changed: %v", rows[0])
				}
			}},
		{"a row without unique_id is appended with a fresh one", map[string]any{"services_section": []any{map[string]any{"service_type": "shelter"}}},
			func(t *testing.T, before, after map[string]any) {
				rows := after["services_section"].([]any)
				if len(rows) != 3 {
					t.Fatalf("rows = %d, want 3", len(rows))
				}
				if id, _ := rows[2].(map[string]any)["unique_id"].(string); !reUUID.MatchString(id) {
					t.Errorf("new row unique_id = %v", id)
				}
			}},
		{"_destroy removes the row", map[string]any{"services_section": []any{map[string]any{"unique_id": s1, "_destroy": true}}},
			func(t *testing.T, before, after map[string]any) {
				rows := after["services_section"].([]any)
				if len(rows) != 1 || rows[0].(map[string]any)["unique_id"] != s2 {
					t.Errorf("rows = %v", rows)
				}
			}},
		{"services_section [] is a no-op", map[string]any{"services_section": []any{}},
			func(t *testing.T, before, after map[string]any) {
				if diff := cmp.Diff(before["services_section"], after["services_section"]); diff != "" {
					t.Errorf("rows changed (-before +after):\n%s", diff)
				}
			}},
		{"arrays of scalars are replaced whole", map[string]any{"protection_concerns": []any{"child_labour"}},
			func(t *testing.T, before, after map[string]any) {
				if diff := cmp.Diff([]any{"child_labour"}, after["protection_concerns"]); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}},
		{"immutable keys are dropped without error", map[string]any{"case_id": "dddddddd-0000-4000-8000-000000000000", "short_id": "x",
			"case_id_display": "x", "created_at": "2020-01-01T00:00:00Z", "created_by": "someone", "unique_identifier": "x", "id": "x"},
			func(t *testing.T, before, after map[string]any) {
				for _, k := range []string{"case_id", "short_id", "case_id_display", "created_at", "created_by", "unique_identifier", "id"} {
					if before[k] != after[k] {
						t.Errorf("%s changed from %v to %v", k, before[k], after[k])
					}
				}
			}},
		{"unknown top-level keys are dropped", map[string]any{"no_such_field": 1, "name_other": "Kit"},
			func(t *testing.T, before, after map[string]any) {
				if _, ok := after["no_such_field"]; ok {
					t.Errorf("unknown field stored")
				}
				if after["name_other"] != "Kit" {
					t.Errorf("name_other = %v", after["name_other"])
				}
			}},
		{"unknown owner keeps the previous one", map[string]any{"owned_by": "nobody_here"},
			func(t *testing.T, before, after map[string]any) {
				if after["owned_by"] != "openfn_cp_user" {
					t.Errorf("owned_by = %v", after["owned_by"])
				}
			}},
		{"known owner updates the owner fields", map[string]any{"owned_by": "agency-cif-user"},
			func(t *testing.T, before, after map[string]any) {
				got := []any{after["owned_by"], after["owned_by_agency_id"], after["associated_user_names"]}
				want := []any{"agency-cif-user", "agency-cif", []any{"agency-cif-user"}}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := start(t, primero.Options{})
			id := create(t, srv, base)["id"].(string)
			before, _ := s.Case(id)
			r := call(t, srv, "PATCH", "/api/v2/cases/"+id, "openfn_cp_user", map[string]any{"data": tc.patch})
			wantStatus(t, r, http.StatusOK)
			after, _ := s.Case(id)
			tc.check(t, before, after)
		})
	}
}

func TestServer_PatchAnswerAndErrors(t *testing.T) {
	_, srv := start(t, primero.Options{CasesFrom: crafted()})
	t.Run("answer holds id, enabled, the changed fields and last_updated_at", func(t *testing.T) {
		r := call(t, srv, "PATCH", "/api/v2/cases/"+c4, "openfn_cp_user", map[string]any{"data": map[string]any{"sex": "male", "age": 10}})
		wantStatus(t, r, http.StatusOK)
		d := r.data(t)
		var keys []string
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		// age was sent but did not change; last_updated_by is new on an imported record.
		want := []string{"enabled", "id", "last_updated_at", "last_updated_by", "sex"}
		if diff := cmp.Diff(want, keys); diff != "" {
			t.Errorf("keys (-want +got):\n%s", diff)
		}
	})
	tests := []struct {
		name, user, id string
		body           any
		status         int
		message        any
	}{
		{"missing data", "openfn_cp_user", c4, map[string]any{}, 422, "param is missing or the value is empty: data"},
		{"empty data", "openfn_cp_user", c4, map[string]any{"data": map[string]any{}}, 422, "param is missing or the value is empty: data"},
		{"data not an object", "openfn_cp_user", c4, map[string]any{"data": "x"}, 422, "param is missing or the value is empty: data"},
		{"unknown record", "openfn_cp_user", "11111111-2222-4333-8444-555555555555", map[string]any{"data": map[string]any{"sex": "male"}}, 404, "Not Found"},
		{"outside my scope", "unhcr_cw", c1, map[string]any{"data": map[string]any{"sex": "male"}}, 403, "Forbidden"},
		{"no write permission", "cp_restricted", c1, map[string]any{"data": map[string]any{"sex": "male"}}, 403, "Forbidden"},
		{"invalid value", "openfn_cp_user", c4, map[string]any{"data": map[string]any{"age": "ten"}}, 422, "Invalid Record JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, srv, "PATCH", "/api/v2/cases/"+tc.id, tc.user, tc.body)
			wantStatus(t, r, tc.status)
			if got := errorOf(t, r)["message"]; got != tc.message {
				t.Errorf("message = %v, want %v", got, tc.message)
			}
		})
	}
}

func TestServer_PatchUsesStoredModule(t *testing.T) {
	s, srv := start(t, primero.Options{})
	id := create(t, srv, map[string]any{"module_id": "primeromodule-gbv"})["id"].(string)
	r := call(t, srv, "PATCH", "/api/v2/cases/"+id, "openfn_cp_user", map[string]any{"data": map[string]any{
		"module_id": "primeromodule-cp", "oscar_number": "X",
	}})
	wantStatus(t, r, http.StatusOK)
	c, _ := s.Case(id)
	if _, ok := c["oscar_number"]; ok {
		t.Errorf("oscar_number written on a GBV case: the stored module gates the fields")
	}
}

func TestServer_LastUpdatedAtStrictlyIncreases(t *testing.T) {
	// The clock stands still; saves still move forward.
	s, srv := start(t, primero.Options{Cases: 5})
	seeded := s.Cases()[0]["id"].(string)
	id := create(t, srv, nil)["id"].(string)
	var stamps []string
	for i := 0; i < 3; i++ {
		for _, target := range []string{id, seeded} {
			r := call(t, srv, "PATCH", "/api/v2/cases/"+target, "openfn_cp_user", map[string]any{"data": map[string]any{"name_other": "x"}})
			wantStatus(t, r, http.StatusOK)
			stamps = append(stamps, r.data(t)["last_updated_at"].(string))
		}
	}
	if !sort.StringsAreSorted(stamps) {
		t.Fatalf("stamps not increasing: %v", stamps)
	}
	for i := 1; i < len(stamps); i++ {
		if stamps[i] == stamps[i-1] {
			t.Fatalf("two saves share a stamp: %v", stamps)
		}
	}
	if stamps[0] != "2025-07-15T09:30:00.001Z" {
		t.Errorf("first PATCH stamp = %s, want 1 ms after the create at the fixed clock", stamps[0])
	}
}

func TestServer_DerivedFieldsOnSave(t *testing.T) {
	tests := []struct {
		name  string
		data  map[string]any
		check func(t *testing.T, c map[string]any)
	}{
		{"service_implemented follows the implemented time", map[string]any{"services_section": []any{
			map[string]any{"service_type": "food", "service_response_type": "care_plan", "service_response_day_time": "2025-07-01T00:00:00Z"},
			map[string]any{"service_type": "shelter", "service_response_type": "action_plan", "service_implemented_day_time": "2025-07-02T00:00:00Z"},
		}}, func(t *testing.T, c map[string]any) {
			rows := c["services_section"].([]any)
			got := []any{rows[0].(map[string]any)["service_implemented"], rows[1].(map[string]any)["service_implemented"], c["workflow"]}
			if diff := cmp.Diff([]any{"not_implemented", "implemented", "care_plan"}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		}},
		{"workflow is the latest not-implemented service's response type", map[string]any{"services_section": []any{
			map[string]any{"service_type": "food", "service_response_type": "referral_to_oscar", "service_response_day_time": "2025-07-03T00:00:00Z"},
			map[string]any{"service_type": "food", "service_response_type": "care_plan", "service_response_day_time": "2025-07-01T00:00:00Z"},
		}}, func(t *testing.T, c map[string]any) {
			if c["workflow"] != "referral_to_oscar" {
				t.Errorf("workflow = %v", c["workflow"])
			}
		}},
		{"all services implemented", map[string]any{"services_section": []any{
			map[string]any{"service_type": "food", "service_response_type": "care_plan", "service_implemented_day_time": "2025-07-02T00:00:00Z"},
		}}, func(t *testing.T, c map[string]any) {
			if c["workflow"] != "services_implemented" {
				t.Errorf("workflow = %v", c["workflow"])
			}
		}},
		{"closing sets workflow closed", map[string]any{"status": "closed"}, func(t *testing.T, c map[string]any) {
			if c["workflow"] != "closed" {
				t.Errorf("workflow = %v", c["workflow"])
			}
		}},
		{"associated users are the owner and the assigned", map[string]any{"assigned_user_names": []any{"mgrpnh", "unhcr_cw"}}, func(t *testing.T, c map[string]any) {
			if diff := cmp.Diff([]any{"openfn_cp_user", "mgrpnh", "unhcr_cw"}, c["associated_user_names"]); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := start(t, primero.Options{})
			id := create(t, srv, nil)["id"].(string)
			wantStatus(t, call(t, srv, "PATCH", "/api/v2/cases/"+id, "mgrpnh", map[string]any{"data": tc.data}), http.StatusForbidden)
			wantStatus(t, call(t, srv, "PATCH", "/api/v2/cases/"+id, "openfn_cp_user", map[string]any{"data": tc.data}), http.StatusOK)
			c, _ := s.Case(id)
			if c["last_updated_by"] != "openfn_cp_user" {
				t.Errorf("last_updated_by = %v", c["last_updated_by"])
			}
			tc.check(t, c)
		})
	}
	t.Run("name is rebuilt when the instance is configured to", func(t *testing.T) {
		s, srv := start(t, primero.Options{AutoName: true})
		id := create(t, srv, map[string]any{"name_middle": "Ka"})["id"].(string)
		c, _ := s.Case(id)
		if c["name"] != "Tovi Ka Rasok" {
			t.Errorf("name = %v", c["name"])
		}
	})
}

func TestServer_DeleteDisables(t *testing.T) {
	s, srv := start(t, primero.Options{CasesFrom: crafted()})
	wantStatus(t, call(t, srv, "DELETE", "/api/v2/cases/"+c1, "cp_restricted", nil), http.StatusForbidden)
	r := call(t, srv, "DELETE", "/api/v2/cases/"+c1, "openfn_cp_user", nil)
	wantStatus(t, r, http.StatusOK)
	if diff := cmp.Diff(map[string]any{"data": map[string]any{"id": c1}}, r.json(t)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := call(t, srv, "GET", "/api/v2/cases/"+c1, "openfn_cp_user", nil).data(t)["enabled"]; got != false {
		t.Errorf("enabled = %v", got)
	}
	got, _ := listIDs(t, srv, "openfn_cp_user", "record_state=true")
	if diff := cmp.Diff([]string{c4, c2}, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("enabled cases (-want +got):\n%s", diff)
	}
	if len(s.Cases()) != 4 {
		t.Errorf("the API never deletes a case")
	}
}

func TestServer_ConcurrentClients(t *testing.T) {
	s, srv := start(t, primero.Options{Cases: 50, Seed: 13, Now: time.Now})
	const workers, each = 4, 10
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r := call(t, srv, "POST", "/api/v2/cases", "openfn_cp_user", newCase(nil))
				if r.status != http.StatusOK {
					t.Errorf("create: %d", r.status)
					return
				}
				id := r.data(t)["id"].(string)
				if r := call(t, srv, "PATCH", "/api/v2/cases/"+id, "openfn_cp_user", map[string]any{"data": map[string]any{"name_other": "w"}}); r.status != http.StatusOK {
					t.Errorf("patch: %d", r.status)
				}
				if r := call(t, srv, "GET", "/api/v2/cases?per=100&last_updated_at=2025-01-01T00:00:00Z..", "openfn_cp_user", nil); r.status != http.StatusOK {
					t.Errorf("list: %d", r.status)
				}
			}
		}()
	}
	wg.Wait()
	if got := s.Counters().Writes(); got["create"] != workers*each || got["update"] != workers*each {
		t.Errorf("writes = %v", got)
	}
	stamps := map[string]bool{}
	for _, c := range s.Cases() {
		if _, seeded := c["name_other"]; !seeded {
			continue
		}
		st := c["last_updated_at"].(string)
		if stamps[st] {
			t.Errorf("two saves share last_updated_at %s", st)
		}
		stamps[st] = true
	}
}
