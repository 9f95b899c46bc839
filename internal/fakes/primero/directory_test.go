package primero_test

import (
	"net/http"
	"slices"
	"sort"
	"testing"

	"casesync/internal/fakes/primero"

	"github.com/google/go-cmp/cmp"
)

func TestServer_UsersIndex(t *testing.T) {
	_, srv := start(t, primero.Options{Users: []primero.User{{UserName: "extra_user", Agency: "agency-new", Role: "role-agency-recipient"}}})
	tests := []struct {
		name, query string
		items       int
		per         float64
		names       []string
	}{
		{"default per 20", "", 20, 20, nil},
		{"per above the cap gets 1000", "per=100000&page=1", -1, 1000, nil},
		{"user_name is exact", "user_name=mgrpnh", 1, 20, []string{"mgrpnh"}},
		{"user_name exact, not a prefix", "user_name=mgr", 0, 20, nil},
		{"disabled filter", "disabled[]=true", 1, 20, []string{"retired_user"}},
		{"query is a substring", "query=focal", 1, 20, []string{"unhcr_focal"}},
		{"an extra user with a new agency", "user_name=extra_user", 1, 20, []string{"extra_user"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, srv, "GET", "/api/v2/users?"+tc.query, "openfn_cp_user", nil)
			wantStatus(t, r, http.StatusOK)
			items := r.list(t)
			if tc.items < 0 {
				tc.items = int(r.json(t)["metadata"].(map[string]any)["total"].(float64))
			}
			if len(items) != tc.items {
				t.Errorf("items = %d, want %d", len(items), tc.items)
			}
			meta := r.json(t)["metadata"].(map[string]any)
			if meta["per"] != tc.per || meta["total_enabled"] == nil {
				t.Errorf("metadata = %v", meta)
			}
			if tc.names != nil {
				var got []string
				for _, it := range items {
					got = append(got, it["user_name"].(string))
				}
				if diff := cmp.Diff(tc.names, got); diff != "" {
					t.Errorf("names (-want +got):\n%s", diff)
				}
			}
		})
	}
	t.Run("item shape has no secrets", func(t *testing.T) {
		items := call(t, srv, "GET", "/api/v2/users?user_name=mgrstg", "openfn_cp_user", nil).list(t)
		var keys []string
		for k := range items[0] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		want := []string{"agency_id", "disabled", "email", "full_name", "id", "location", "module_unique_ids", "phone", "position",
			"reporting_location_code", "role_group_permission", "role_unique_id", "user_group_unique_ids", "user_name"}
		if diff := cmp.Diff(want, keys); diff != "" {
			t.Errorf("keys (-want +got):\n%s", diff)
		}
		if items[0]["location"] != "19" {
			t.Errorf("mgrstg location = %v, want Stung Treng (19)", items[0]["location"])
		}
	})
	t.Run("show and 403", func(t *testing.T) {
		wantStatus(t, call(t, srv, "GET", "/api/v2/users/1", "openfn_cp_user", nil), http.StatusOK)
		wantStatus(t, call(t, srv, "GET", "/api/v2/users/999", "openfn_cp_user", nil), http.StatusNotFound)
		wantStatus(t, call(t, srv, "GET", "/api/v2/users", "cp_restricted", nil), http.StatusForbidden)
	})
	t.Run("refer-to lists receivers of the module, never the caller", func(t *testing.T) {
		r := call(t, srv, "GET", "/api/v2/users/refer-to?record_type=case&record_module_id=primeromodule-cp&agency=agency-cif", "openfn_cp_user", nil)
		wantStatus(t, r, http.StatusOK)
		var got []string
		for _, it := range r.list(t) {
			got = append(got, it["user_name"].(string))
		}
		if diff := cmp.Diff([]string{"agency-cif-user"}, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

func TestServer_DefaultUsers(t *testing.T) {
	_, srv := start(t, primero.Options{})
	var names []string
	for _, it := range call(t, srv, "GET", "/api/v2/users?per=1000", "openfn_cp_user", nil).list(t) {
		names = append(names, it["user_name"].(string))
	}
	for _, want := range []string{"openfn_cp_user", "mgrpnh", "mgrkdl", "mgrstg", "mgromc", "mgrtakeo", "agency-cif-user", "agency-fco-user", "agency-mtp-user", "unhcr_cw"} {
		if !slices.Contains(names, want) {
			t.Errorf("default user %s missing", want)
		}
	}
	for _, who := range []string{"mgrpnh", "agency-mtp-user"} {
		wantStatus(t, call(t, srv, "GET", "/api/v2/cases", who, nil), http.StatusOK)
	}
	t.Run("custom integration credentials", func(t *testing.T) {
		_, srv := start(t, primero.Options{Login: "svc_sync", Password: "s3cret"})
		r := callWith(t, srv, "GET", "/api/v2/cases", nil, func(r *http.Request) { r.SetBasicAuth("svc_sync", "s3cret") })
		wantStatus(t, r, http.StatusOK)
	})
}

func TestServer_ReadOnlyDirectories(t *testing.T) {
	_, srv := start(t, primero.Options{})
	t.Run("agencies", func(t *testing.T) {
		r := call(t, srv, "GET", "/api/v2/agencies?per=100", "openfn_cp_user", nil)
		var ids []string
		for _, it := range r.list(t) {
			ids = append(ids, it["unique_id"].(string))
			if _, ok := it["name"].(map[string]any)["en"]; !ok {
				t.Errorf("agency name is not localised: %v", it)
			}
		}
		for _, want := range []string{"agency-unicef", "agency-unhcr", "agency-cif", "agency-fco", "agency-mtp"} {
			if !slices.Contains(ids, want) {
				t.Errorf("agency %s missing", want)
			}
		}
	})
	t.Run("locations with hierarchy, default per 100, no cap", func(t *testing.T) {
		r := call(t, srv, "GET", "/api/v2/locations?hierarchy=true", "openfn_cp_user", nil)
		if got := len(r.list(t)); got != 100 {
			t.Errorf("default page = %d, want 100", got)
		}
		all := call(t, srv, "GET", "/api/v2/locations?hierarchy=true&per=5000", "openfn_cp_user", nil).list(t)
		var village map[string]any
		provinces := 0
		for _, l := range all {
			if l["code"] == "1070101" {
				village = l
			}
			if l["type"] == "province" {
				provinces++
			}
		}
		if provinces != 25 {
			t.Errorf("provinces = %d, want 25", provinces)
		}
		if village == nil {
			t.Fatalf("village 1070101 (NCDD, no leading zero) missing")
		}
		if diff := cmp.Diff([]any{"KH", "1", "107", "10701", "1070101"}, village["hierarchy"]); diff != "" {
			t.Errorf("hierarchy (-want +got):\n%s", diff)
		}
	})
	t.Run("lookups carry the deployment values", func(t *testing.T) {
		r := call(t, srv, "GET", "/api/v2/lookups?per=1000", "openfn_cp_user", nil)
		values := map[string][]string{}
		for _, l := range r.list(t) {
			for _, v := range l["values"].([]any) {
				values[l["unique_id"].(string)] = append(values[l["unique_id"].(string)], v.(map[string]any)["id"].(string))
			}
		}
		checks := map[string]string{
			"lookup-service-response-type": "referral_to_oscar", "lookup-service-type": "social_work_case_work",
			"lookup-service-subtype": "social_work_case_work_community", "lookup-gender": "other_b25f252",
			"lookup-oscar-referral-status": "accepted_340953", "lookup-unhcr-referral-status": "pending",
		}
		for lookup, want := range checks {
			if !slices.Contains(values[lookup], want) {
				t.Errorf("%s lacks %s", lookup, want)
			}
		}
	})
	t.Run("forms by module", func(t *testing.T) {
		formIDs := func(mod string) []string {
			var out []string
			for _, f := range call(t, srv, "GET", "/api/v2/forms?record_type=case&module_id="+mod, "openfn_cp_user", nil).list(t) {
				out = append(out, f["unique_id"].(string))
			}
			return out
		}
		cp, gbv := formIDs("primeromodule-cp"), formIDs("primeromodule-gbv")
		if !slices.Contains(cp, "cambodia_oscar") || !slices.Contains(cp, "services_section") {
			t.Errorf("CP forms lack the deployment forms: %v", cp)
		}
		if slices.Contains(gbv, "cambodia_oscar") {
			t.Errorf("GBV forms include the Cambodia form")
		}
	})
	t.Run("modules", func(t *testing.T) {
		r := call(t, srv, "GET", "/api/v2/primero_modules", "openfn_cp_user", nil)
		for _, m := range r.list(t) {
			if m["unique_id"] == "primeromodule-cp" {
				if diff := cmp.Diff([]any{"case"}, m["use_webhooks_for"]); diff != "" {
					t.Errorf("use_webhooks_for (-want +got):\n%s", diff)
				}
				return
			}
		}
		t.Errorf("no CP module")
	})
	t.Run("health and instance info are public", func(t *testing.T) {
		wantStatus(t, call(t, srv, "GET", "/health", "", nil), http.StatusNoContent)
		wantStatus(t, call(t, srv, "GET", "/api/v2/primero", "", nil), http.StatusOK)
	})
}
