package primero_test

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"casesync/internal/fakes/primero"
)

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// shapeDiff compares two JSON values by keys, types and nesting, not by
// value. allowExtra lists keys the fake may add (newer Primero versions).
func shapeDiff(path string, want, got any, allowExtra map[string]bool, out *[]string) {
	wt, gt := jsonType(want), jsonType(got)
	if wt != gt {
		*out = append(*out, fmt.Sprintf("%s: %s, want %s", path, gt, wt))
		return
	}
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				*out = append(*out, fmt.Sprintf("%s/%s: missing", path, k))
				continue
			}
			shapeDiff(path+"/"+k, wv, gv, allowExtra, out)
		}
		for k := range g {
			if _, ok := w[k]; !ok && !allowExtra[k] {
				*out = append(*out, fmt.Sprintf("%s/%s: extra key", path, k))
			}
		}
	case []any:
		g := got.([]any)
		if len(w) != len(g) {
			*out = append(*out, fmt.Sprintf("%s: %d items, want %d", path, len(g), len(w)))
		}
		for i := 0; i < min(len(w), len(g)); i++ {
			shapeDiff(fmt.Sprintf("%s/%d", path, i), w[i], g[i], allowExtra, out)
		}
	}
}

func reportShape(t *testing.T, want, got any, allowExtra map[string]bool) {
	t.Helper()
	var diffs []string
	shapeDiff("", want, got, allowExtra, &diffs)
	sort.Strings(diffs)
	for _, d := range diffs {
		t.Error(d)
	}
}

// TestServer_ContractCaseResponses seeds the fake with each fixture case
// and reads it back: the answer must have the fixture's keys, types and
// nesting, computed keys included.
func TestServer_ContractCaseResponses(t *testing.T) {
	tests := []struct {
		name, file, user string
		list, show       bool
	}{
		{"Cambodia list item, integration user", "testdata/cases_list_data_array_cambodia_referral_to_oscar.json", "openfn_cp_user", true, true},
		{"2021 list item", "testdata/cases_list_data_array_2021.json", "cp_admin", true, false},
		{"full 2021 record", "testdata/case_record_full_2021.json", "cp_admin", false, true},
		{"record with services and care arrangements", "testdata/case_record_services_care_arrangements.json", "cp_admin", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want map[string]any
			raw := fixture(t, tc.file)
			if strings.HasPrefix(strings.TrimSpace(string(raw)), "[") {
				var arr []map[string]any
				fixtureJSON(t, tc.file, &arr)
				want = arr[0]
			} else {
				fixtureJSON(t, tc.file, &want)
			}
			_, srv := start(t, primero.Options{CasesFrom: []map[string]any{want}})
			if tc.list {
				r := call(t, srv, "GET", "/api/v2/cases", tc.user, nil)
				wantStatus(t, r, http.StatusOK)
				reportShape(t, want, r.list(t)[0], nil)
			}
			if tc.show {
				r := call(t, srv, "GET", "/api/v2/cases/"+want["id"].(string), tc.user, nil)
				wantStatus(t, r, http.StatusOK)
				reportShape(t, want, r.data(t), nil)
			}
		})
	}
}

func TestServer_ContractReferralsIndex(t *testing.T) {
	var body struct {
		Data []any `json:"data"`
	}
	fixtureJSON(t, "testdata/referrals_index_response.json", &body)
	recordID := body.Data[0].(map[string]any)["record_id"].(string)
	_, srv := start(t, primero.Options{CasesFrom: []map[string]any{{
		"id": recordID, "module_id": "primeromodule-cp", "owned_by": "openfn_testing", "created_at": "2021-09-27T12:00:00.000Z",
		"consent_for_services": true, "disclosure_other_orgs": true, "referrals": body.Data,
	}}})
	r := call(t, srv, "GET", "/api/v2/cases/"+recordID+"/referrals", "openfn_cp_user", nil)
	wantStatus(t, r, http.StatusOK)
	// Current Primero adds user_can_accept_or_reject; the 2021 fixture predates it.
	reportShape(t, map[string]any{"data": body.Data}, r.json(t), map[string]bool{"user_can_accept_or_reject": true})
}

// fixtureKeyTypes collects, per key path, the JSON types the fixtures use;
// subform rows are keyed by the subform name.
func fixtureKeyTypes(v any, prefix string, out map[string]map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := prefix + "/" + k
			if out[p] == nil {
				out[p] = map[string]bool{}
			}
			if e != nil {
				out[p][jsonType(e)] = true
			}
			if arr, ok := e.([]any); ok {
				for _, row := range arr {
					if _, isObj := row.(map[string]any); isObj {
						fixtureKeyTypes(row, p+"[]", out)
					}
				}
			}
		}
	case []any:
		for _, e := range x {
			fixtureKeyTypes(e, prefix, out)
		}
	}
}

// TestServer_ContractSyntheticCases checks the generated cases against the
// fixtures: every key is a fixture key or a configured field, and wherever
// a fixture shows a key's type, the fake uses the same.
func TestServer_ContractSyntheticCases(t *testing.T) {
	types := map[string]map[string]bool{}
	for _, f := range []string{
		"testdata/case_record_full_2021.json", "testdata/case_record_services_care_arrangements.json",
		"testdata/cases_list_data_array_2021.json", "testdata/cases_list_data_array_cambodia_referral_to_oscar.json",
		"testdata/primero_case_with_unhcr_referral_service.json",
	} {
		var v any
		fixtureJSON(t, f, &v)
		fixtureKeyTypes(v, "", types)
	}
	_, srv := start(t, primero.Options{Cases: 200, Seed: 21})
	known := map[string]bool{}
	for _, f := range call(t, srv, "GET", "/api/v2/forms?record_type=case", "openfn_cp_user", nil).list(t) {
		for _, fd := range f["fields"].([]any) {
			name := fd.(map[string]any)["name"].(string)
			if f["is_nested"] == true {
				known["/"+f["unique_id"].(string)+"[]/"+name] = true
			} else {
				known["/"+name] = true
			}
		}
	}
	// Summary fields Primero computes on transitions; not on any form.
	for _, k := range []string{"/referred_users", "/referred_users_present", "/last_updated_by", "/services_section[]/unique_id"} {
		known[k] = true
	}
	seen := map[string]bool{}
	var check func(prefix string, m map[string]any)
	check = func(prefix string, m map[string]any) {
		for k, v := range m {
			p := prefix + "/" + k
			want, inFixture := types[p]
			if !inFixture && !known[p] {
				if !seen[p] {
					t.Errorf("%s: neither a fixture key nor a configured field", p)
					seen[p] = true
				}
				continue
			}
			if v != nil && len(want) > 0 && !want[jsonType(v)] && !seen[p] {
				t.Errorf("%s: %s, fixtures use %v", p, jsonType(v), want)
				seen[p] = true
			}
			if arr, ok := v.([]any); ok {
				for _, row := range arr {
					if rm, ok := row.(map[string]any); ok {
						check(p+"[]", rm)
					}
				}
			}
		}
	}
	for _, c := range call(t, srv, "GET", "/api/v2/cases?per=1000", "openfn_cp_user", nil).list(t) {
		check("", c)
	}
	// Referral items have the fixture's keys.
	var refs struct {
		Data []map[string]any `json:"data"`
	}
	fixtureJSON(t, "testdata/referrals_index_response.json", &refs)
	cases := call(t, srv, "GET", "/api/v2/cases?per=5", "openfn_cp_user", nil).list(t)
	for _, c := range cases {
		for _, ref := range call(t, srv, "GET", "/api/v2/cases/"+c["id"].(string)+"/referrals", "openfn_cp_user", nil).list(t) {
			reportShape(t, refs.Data[0], ref, map[string]bool{"user_can_accept_or_reject": true})
		}
	}
}

func TestServer_ContractWebhookBody(t *testing.T) {
	var full struct {
		Data map[string]any `json:"data"`
	}
	fixtureJSON(t, "testdata/primero_sync_webhook_full.json", &full)
	stored := map[string]any{}
	for k, v := range full.Data {
		switch k {
		case "record_id", "record_type", "hostname", "record_in_scope", "alert_count":
		default:
			stored[k] = v
		}
	}
	stored["id"] = full.Data["record_id"]
	rs, ch := receiver(t, 200)
	s, _ := start(t, primero.Options{CasesFrom: []map[string]any{stored}, ForwardURL: rs.URL, Hostname: "demo-care-thai-kids.primero.org"})
	s.Touch(full.Data["record_id"].(string), nil)
	got := next(t, ch).body
	reportShape(t, map[string]any{"data": full.Data}, got, nil)

	var minimal struct {
		Data map[string]any `json:"data"`
	}
	fixtureJSON(t, "testdata/primero_sync_webhook_minimal.json", &minimal)
	for k := range minimal.Data {
		if _, ok := got["data"].(map[string]any)[k]; !ok {
			t.Errorf("webhook body lacks %s, which the minimal fixture has", k)
		}
	}
}

func TestServer_ContractLookups(t *testing.T) {
	var want struct {
		Data []map[string]any `json:"data"`
	}
	fixtureJSON(t, "config/lookups_default_config.json", &want)
	_, srv := start(t, primero.Options{})
	r := call(t, srv, "GET", "/api/v2/lookups?per=1000", "openfn_cp_user", nil)
	body := r.json(t)
	meta := body["metadata"].(map[string]any)
	if meta["per"] != float64(1000) || meta["page"] != float64(1) {
		t.Errorf("metadata = %v", meta)
	}
	got := map[string]map[string]any{}
	for _, l := range r.list(t) {
		got[l["unique_id"].(string)] = l
	}
	for _, wl := range want.Data {
		gl := got[wl["unique_id"].(string)]
		if gl == nil {
			t.Errorf("lookup %s missing", wl["unique_id"])
			continue
		}
		// Same shape for the lookup and its first value; the fake adds
		// deployment values, never removes a default one.
		gv, wv := gl["values"].([]any), wl["values"].([]any)
		var diffs []string
		shapeDiff("/"+wl["unique_id"].(string), map[string]any{"id": wl["id"], "name": wl["name"], "locked": wl["locked"], "unique_id": wl["unique_id"]},
			map[string]any{"id": gl["id"], "name": gl["name"], "locked": gl["locked"], "unique_id": gl["unique_id"]}, nil, &diffs)
		shapeDiff("/"+wl["unique_id"].(string)+"/values/0", wv[0], gv[0], nil, &diffs)
		for _, d := range diffs {
			t.Error(d)
		}
		ids := map[any]bool{}
		for _, v := range gv {
			ids[v.(map[string]any)["id"]] = true
		}
		for _, v := range wv {
			if !ids[v.(map[string]any)["id"]] {
				t.Errorf("%s lost the default value %v", wl["unique_id"], v.(map[string]any)["id"])
			}
		}
	}
}
