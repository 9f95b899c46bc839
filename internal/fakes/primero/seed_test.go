package primero_test

import (
	"bytes"
	"encoding/csv"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"casesync/internal/fakes/primero"

	"github.com/google/go-cmp/cmp"
)

func TestServer_SeedIsDeterministic(t *testing.T) {
	a, _ := start(t, primero.Options{Cases: 120, Seed: 11})
	b, _ := start(t, primero.Options{Cases: 120, Seed: 11})
	c, _ := start(t, primero.Options{Cases: 120, Seed: 12})
	if diff := cmp.Diff(a.Cases(), b.Cases()); diff != "" {
		t.Errorf("same seed, different cases (-a +b):\n%s", diff)
	}
	if cmp.Equal(a.Cases(), c.Cases()) {
		t.Errorf("different seeds gave the same cases")
	}
	first := a.Cases()[0]["id"].(string)
	if diff := cmp.Diff(a.Referrals(first), b.Referrals(first)); diff != "" {
		t.Errorf("same seed, different referrals (-a +b):\n%s", diff)
	}
}

// provinceOf reads the province of an NCDD code stored without its
// leading zero.
func provinceOf(code string) int {
	n, _ := strconv.Atoi(code[:len(code)-6])
	return n
}

func TestServer_SeedMixFeedsBothDeployments(t *testing.T) {
	var vm struct {
		Services map[string][]struct {
			Subtype string `json:"service_subtype"`
		} `json:"oscar_service_name_to_primero_service"`
	}
	fixtureJSON(t, "config/cambodia_integration_value_maps.json", &vm)
	subtypes := map[string]bool{}
	for _, list := range vm.Services {
		for _, p := range list {
			subtypes[p.Subtype] = true
		}
	}
	owners := map[int]string{}
	rows, err := csv.NewReader(bytes.NewReader(fixture(t, "testdata/cambodia_province_code_to_primero_owner.csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows[1:] {
		p, _ := strconv.Atoi(row[0])
		if _, dup := owners[p]; !dup {
			owners[p] = row[1] // the first of the duplicated 22s is mgrstg, the intended owner of 19
		}
	}
	owners[19], owners[22] = "mgrstg", "mgromc"

	s, _ := start(t, primero.Options{Cases: 400, Seed: 5})
	counts := map[string]int{}
	provinces := map[int]bool{}
	unhcrNos := map[string]bool{}
	for _, c := range s.Cases() {
		for _, k := range []string{"sex", "date_of_birth", "risk_level", "owned_by", "owned_by_agency_id", "case_id", "location_current"} {
			if c[k] == nil {
				t.Fatalf("case %s lacks %s", c["id"], k)
			}
		}
		loc := c["location_current"].(string)
		refs := s.Referrals(c["id"].(string))
		services, _ := c["services_section"].([]any)
		if no, ok := c["unhcr_individual_no"].(string); ok {
			if unhcrNos[no] {
				t.Errorf("unhcr_individual_no %s repeated", no)
			}
			unhcrNos[no] = true
			if c["protection_concerns"] == nil || c["unhcr_id_no"] == nil {
				t.Errorf("UNHCR case %s lacks protection_concerns or unhcr_id_no", c["id"])
			}
			for _, sv := range services {
				row := sv.(map[string]any)
				switch {
				case row["service_implementing_agency"] == "UNHCR":
					counts["unhcr referral"]++
					if !slices.ContainsFunc(refs, func(r map[string]any) bool { return r["service_record_id"] == row["unique_id"] }) {
						t.Errorf("UNHCR service %s has no referral", row["unique_id"])
					}
				case row["progres_interventionnumber"] != nil:
					counts["ping inbound"]++
					if parts := strings.Split(row["progres_interventionnumber"].(string), ","); len(parts) != 3 {
						t.Errorf("progres_interventionnumber %v has %d parts", row["progres_interventionnumber"], len(parts))
					}
				}
			}
			continue
		}
		if strings.HasPrefix(loc, "0") || len(loc) < 7 || len(loc) > 8 {
			t.Errorf("location_current %q is not an NCDD village code without its leading zero", loc)
		}
		p := provinceOf(loc)
		provinces[p] = true
		if c["owned_by"] != owners[p] {
			t.Errorf("case in province %d owned by %v, want %s", p, c["owned_by"], owners[p])
		}
		referral := false
		for _, sv := range services {
			row := sv.(map[string]any)
			sub, _ := row["service_subtype"].([]any)
			for _, x := range sub {
				if !subtypes[x.(string)] {
					t.Errorf("service_subtype %v is not in the Cambodia value maps", x)
				}
			}
			switch row["service_response_type"] {
			case "referral_to_oscar":
				referral = true
				agency := row["service_implementing_agency"].(string)
				org := strings.TrimPrefix(agency, "agency-")
				if !slices.Contains([]string{"cif", "fco", "mtp"}, org) {
					t.Errorf("implementing agency %s is not an OSCaR tenant", agency)
				}
				i := slices.IndexFunc(refs, func(r map[string]any) bool { return r["service_record_id"] == row["unique_id"] })
				if c["consent_for_services"] != true {
					counts["no consent"]++
					if i >= 0 {
						t.Errorf("a case without consent has a referral")
					}
					continue
				}
				if i < 0 {
					t.Errorf("referral_to_oscar service %s has no referral", row["unique_id"])
					continue
				}
				ref := refs[i]
				if ref["transitioned_to"] != agency+"-user" || ref["transitioned_to_agency"] != agency {
					t.Errorf("referral %v does not go to %s", ref["transitioned_to"], agency)
				}
				counts["referral "+ref["status"].(string)]++
				if ref["created_at"].(string) > c["last_updated_at"].(string) {
					t.Errorf("case %s is older than its referral", c["id"])
				}
			case "referral_from_oscar":
				counts["from oscar"]++
				if row["oscar_referral_id_a4ac8a5"] == nil || c["oscar_number"] == nil {
					t.Errorf("referral_from_oscar row without OSCaR ids: %v", row)
				}
			}
		}
		if c["oscar_number"] != nil && !referral {
			counts["update_links"]++
		}
	}
	for p := 1; p <= 25; p++ {
		if !provinces[p] {
			t.Errorf("province %d has no case", p)
		}
	}
	for _, k := range []string{"referral in_progress", "referral accepted", "no consent", "update_links", "from oscar", "unhcr referral", "ping inbound"} {
		if counts[k] == 0 {
			t.Errorf("the mix has no %q case", k)
		}
	}
	t.Logf("mix of 400: %v", counts)
}

func TestServer_SeedTimesAreFixed(t *testing.T) {
	s, _ := start(t, primero.Options{Cases: 200, Seed: 2, Now: time.Now})
	lo := primero.SeedBase.Add(-180 * 24 * time.Hour).Format(time.RFC3339)
	hi := primero.SeedBase.Add(24 * time.Hour).Format(time.RFC3339)
	for _, c := range s.Cases() {
		created, updated := c["created_at"].(string), c["last_updated_at"].(string)
		if created < lo || updated > hi || updated < created {
			t.Errorf("case %s: created %s, updated %s outside [%s, %s]", c["id"], created, updated, lo, hi)
		}
	}
}

// nameStrings collects every string under a key that holds a person's name.
func nameStrings(v any, key string, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			nameStrings(e, k, out)
		}
	case []any:
		for _, e := range x {
			nameStrings(e, key, out)
		}
	case string:
		k := strings.ToLower(key)
		if strings.Contains(k, "name") && !strings.Contains(k, "user_name") {
			for _, w := range strings.Fields(x) {
				out[strings.ToLower(w)] = true
			}
		}
	}
}

func TestServer_SeedNamesAreInvented(t *testing.T) {
	names := map[string]bool{}
	for _, f := range []string{
		"testdata/case_record_full_2021.json", "testdata/case_record_services_care_arrangements.json",
		"testdata/cases_list_data_array_2021.json", "testdata/cases_list_data_array_cambodia_referral_to_oscar.json",
		"testdata/case_post_request_unhcr.json", "testdata/get_clients_response_2021.json",
		"testdata/primero_case_with_unhcr_referral_service.json", "testdata/ping_retrieve_pending_referrals_response.json",
	} {
		var v any
		fixtureJSON(t, f, &v)
		nameStrings(v, "", names)
	}
	s, _ := start(t, primero.Options{Cases: 500, Seed: 9})
	for _, c := range s.Cases() {
		for _, k := range []string{"name_first", "name_last"} {
			if n, _ := c[k].(string); names[strings.ToLower(n)] {
				t.Errorf("seeded %s %q appears in a fixture", k, n)
			}
		}
	}
}

// TestServer_SeedsAreValidRecords posts seeded cases back to a fresh fake:
// every field the generator writes must exist on the forms and hold a value
// the validation accepts.
func TestServer_SeedsAreValidRecords(t *testing.T) {
	seeded, _ := start(t, primero.Options{Cases: 60, Seed: 4})
	_, srv := start(t, primero.Options{})
	for _, c := range seeded.Cases() {
		data := map[string]any{}
		for k, v := range c {
			data[k] = v
		}
		delete(data, "id")
		r := call(t, srv, "POST", "/api/v2/cases", "openfn_cp_user", map[string]any{"data": data})
		if r.status != http.StatusOK {
			t.Fatalf("seeded case %s rejected: %d %s", c["id"], r.status, r.raw)
		}
	}
}

func TestServer_CursorListingMatchesSnapshot(t *testing.T) {
	s, srv := start(t, primero.Options{Cases: 300, Seed: 8})
	const cursor = "2025-05-01T00:00:00.000Z"
	var want []string
	for _, c := range s.Cases() {
		if c["last_updated_at"].(string)[:19] >= cursor[:19] {
			want = append(want, c["id"].(string))
		}
	}
	got, total := listIDs(t, srv, "openfn_cp_user", "per=1000&last_updated_at="+cursor+"..")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cursor listing (-want +got):\n%s", diff)
	}
	if int(total) != len(want) {
		t.Errorf("total = %v, want %d", total, len(want))
	}
}
