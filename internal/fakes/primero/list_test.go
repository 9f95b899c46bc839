package primero_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"casesync/internal/fakes/primero"

	"github.com/google/go-cmp/cmp"
)

// Record ids of the crafted cases. c3 and c4 share created_at, so the tie
// break shows.
const (
	c1 = "00000000-0000-4000-8000-000000000001"
	c2 = "00000000-0000-4000-8000-000000000002"
	c3 = "00000000-0000-4000-8000-000000000003"
	c4 = "00000000-0000-4000-8000-000000000004"
)

// crafted returns four imported cases whose values make each filter rule
// visible.
func crafted() []map[string]any {
	return []map[string]any{
		{
			"id": c1, "case_id": "aaaaaaaa-0000-4000-8000-000000000001", "short_id": "0000001", "case_id_display": "0000001",
			"created_at": "2024-01-01T00:00:00.000Z", "last_updated_at": "2024-03-01T10:00:00.100Z",
			"module_id": "primeromodule-cp", "status": "open", "record_state": true, "age": 12.0, "sex": "female",
			"date_of_birth": "2012-05-01", "consent_for_services": true, "protection_concerns": []any{"rape", "abandonment"},
			"location_current": "12010101", "national_id_no": "001", "oscar_number": "OSC-1", "unhcr_individual_no": "U-1",
			"owned_by": "mgrpnh", "owned_by_agency_id": "agency-mosvy", "associated_user_names": []any{"mgrpnh"},
			"name_first": "Sokha", "name_middle": nil,
		},
		{
			"id": c2, "case_id": "aaaaaaaa-0000-4000-8000-000000000002", "created_at": "2024-01-02T00:00:00.000Z",
			"last_updated_at": "2024-03-01T10:00:00.400Z", "module_id": "primeromodule-cp", "status": "closed",
			"record_state": true, "age": 15.0, "sex": "male", "consent_for_services": false, "location_current": "2010101",
			"national_id_no": "1", "owned_by": "mgrbtb", "owned_by_agency_id": "agency-mosvy",
			"associated_user_names": []any{"mgrbtb", "agency-cif-user"},
		},
		{
			"id": c3, "case_id": "aaaaaaaa-0000-4000-8000-000000000003", "created_at": "2024-01-03T00:00:00.000Z",
			"last_updated_at": "2024-03-02T00:00:00.000Z", "module_id": "primeromodule-cp", "status": "open",
			"record_state": false, "age": 9.0, "consent_for_services": true, "protection_concerns": []any{"child_labour"},
			"location_current": "12020101", "owned_by": "unhcr_cw", "owned_by_agency_id": "agency-unhcr",
			"associated_user_names": []any{"unhcr_cw"},
		},
		{
			"id": c4, "case_id": "aaaaaaaa-0000-4000-8000-000000000004", "created_at": "2024-01-03T00:00:00.000Z",
			"last_updated_at": "2024-02-01T00:00:00.000Z", "module_id": "primeromodule-cp", "status": "open",
			"record_state": true, "age": 10.0, "sex": "female", "owned_by": "openfn_cp_user",
			"owned_by_agency_id": "agency-unicef", "associated_user_names": []any{"openfn_cp_user"},
		},
	}
}

func listIDs(tb testing.TB, srv *httptest.Server, user, query string) ([]string, float64) {
	tb.Helper()
	r := call(tb, srv, "GET", "/api/v2/cases?"+query, user, nil)
	wantStatus(tb, r, http.StatusOK)
	meta, _ := r.json(tb)["metadata"].(map[string]any)
	total, _ := meta["total"].(float64)
	return ids(r.list(tb)), total
}

func TestServer_ListFilterGrammar(t *testing.T) {
	_, srv := start(t, primero.Options{CasesFrom: crafted()})
	all := []string{c4, c3, c2, c1}
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"no filter: created_at desc, ties by id, disabled included", "", all},
		{"record_state=true drops disabled cases", "record_state=true", []string{c4, c2, c1}},
		{"boolean", "consent_for_services=true", []string{c3, c1}},
		{"boolean false", "consent_for_services=false", []string{c2}},
		{"a capitalised boolean is a string and matches nothing", "consent_for_services=True", []string{}},
		{"integer", "age=12", []string{c1}},
		{"inclusive integer range", "age=10..12", []string{c4, c1}},
		{"open integer range", "age=12..", []string{c2, c1}},
		{"..X is not supported: the filter is dropped", "age=..12", all},
		{"comma is any-of", "sex=male,female", []string{c4, c2, c1}},
		{"array field matches any element", "protection_concerns=rape", []string{c1}},
		{"any-of on an array field", "protection_concerns=child_labour,abandonment", []string{c3, c1}},
		{"datetime range compares whole seconds", "last_updated_at=2024-03-01T10:00:00.400Z..", []string{c3, c2, c1}},
		{"datetime range past the second", "last_updated_at=2024-03-01T10:00:01Z..", []string{c3}},
		{"closed datetime range is inclusive", "last_updated_at=2024-03-01T10:00:00Z..2024-03-01T10:00:00Z", []string{c2, c1}},
		{"offset sent as %2B", "last_updated_at=2024-03-01T17:00:00%2B07:00..", []string{c3, c2, c1}},
		{"a raw + decodes to a space: unparseable, dropped", "last_updated_at=2024-03-01T17:00:00+07:00..", all},
		{"space instead of T", "last_updated_at=2024-03-01%2010:00:01..", []string{c3}},
		{"an impossible date range is dropped", "last_updated_at=2024-13-45..", all},
		{"date range on created_at", "created_at=2024-01-02..", []string{c4, c3, c2}},
		{"date range on a date field", "date_of_birth=2012-01-01..2012-12-31", []string{c1}},
		{"identifier filters are exact strings", "national_id_no=001", []string{c1}},
		{"identifier not destringified", "national_id_no=1", []string{c2}},
		{"identifier is case-sensitive", "oscar_number=osc-1", []string{}},
		{"identifier oscar_number", "oscar_number=OSC-1", []string{c1}},
		{"identifier unhcr_individual_no", "unhcr_individual_no=U-1", []string{c1}},
		{"case_id resolves to the record", "case_id=aaaaaaaa-0000-4000-8000-000000000002", []string{c2}},
		{"unknown key is ignored", "unknown_field=x", all},
		{"misspelt key is ignored", "sexx=male", all},
		{"adaptor's remote and scope are ignored", "remote=true&scope=%7B%7D", all},
		{"[n] arrays", "associated_user_names[0]=mgrbtb&associated_user_names[1]=unhcr_cw", []string{c3, c2}},
		{"[] arrays", "associated_user_names[]=agency-cif-user", []string{c2}},
		{"not[]", "not[status]=closed", []string{c4, c3, c1}},
		{"loc: matches descendants", "loc:location_current[0]=12", []string{c3, c1}},
		{"loc: a district", "loc:location_current=1201", []string{c1}},
		{"a plain location filter is exact, and all digits make it an integer", "location_current=12", []string{}},
		{"or[]", "or[sex]=male&or[age]=9", []string{c3, c2}},
		{"a value that breaks the SQL empties the list", "age=99999999999999999999", []string{}},
		{"query with id_search", "query=osc&id_search=true", []string{c1}},
		{"filters combine", "status=open&record_state=true&age=10..", []string{c4, c1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, total := listIDs(t, srv, "openfn_cp_user", tc.query)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if int(total) != len(tc.want) {
				t.Errorf("total = %v, want %d", total, len(tc.want))
			}
		})
	}
}

func TestServer_ListOrder(t *testing.T) {
	_, srv := start(t, primero.Options{CasesFrom: crafted()})
	tests := []struct {
		query string
		want  []string
	}{
		{"order=asc", []string{c1, c2, c3, c4}},
		{"order=ASC", []string{c1, c2, c3, c4}},
		{"order=DeSc", []string{c4, c3, c2, c1}},
		{"order=bogus", []string{c1, c2, c3, c4}}, // anything but desc is asc
		{"order_by=last_updated_at", []string{c3, c2, c1, c4}},
		{"order_by=age&order=asc", []string{c3, c4, c1, c2}},
		{"order_by=sex&order=asc", []string{c1, c4, c2, c3}}, // a missing value (SQL NULL) sorts last
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			got, _ := listIDs(t, srv, "openfn_cp_user", tc.query)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServer_ListPaging(t *testing.T) {
	_, srv := start(t, primero.Options{Cases: 45, Seed: 3})
	tests := []struct {
		name             string
		opts             primero.Options
		query            string
		items            int
		total, per, page float64
	}{
		{"default per is 20", primero.Options{}, "", 20, 45, 20, 1},
		{"last page", primero.Options{}, "page=3", 5, 45, 20, 3},
		{"past the end: empty with the true total", primero.Options{}, "page=4", 0, 45, 20, 4},
		{"per is capped at 1000 and echoed clamped", primero.Options{}, "per=10000", 45, 45, 1000, 1},
		{"per=0 is allowed", primero.Options{}, "per=0", 0, 45, 0, 1},
		{"page=0 gives a negative offset: the SQL fails", primero.Options{}, "page=0", 0, 0, 20, 0},
		{"garbage page is 0", primero.Options{}, "page=abc", 0, 0, 20, 0},
		{"negative per", primero.Options{}, "per=-5", 0, 0, -5, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, srv, "GET", "/api/v2/cases?"+tc.query, "openfn_cp_user", nil)
			wantStatus(t, r, http.StatusOK)
			if got := len(r.list(t)); got != tc.items {
				t.Errorf("items = %d, want %d", got, tc.items)
			}
			want := map[string]any{"total": tc.total, "per": tc.per, "page": tc.page}
			if diff := cmp.Diff(want, r.json(t)["metadata"]); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("legacy uncapped per", func(t *testing.T) {
		_, legacy := start(t, primero.Options{Cases: 45, Seed: 3, LegacyUncapped: true})
		r := call(t, legacy, "GET", "/api/v2/cases?per=10000", "openfn_cp_user", nil)
		if got := r.json(t)["metadata"].(map[string]any)["per"]; got != float64(10000) {
			t.Errorf("per = %v, want 10000", got)
		}
	})
	t.Run("paging visits every case once, in list order", func(t *testing.T) {
		whole, _ := listIDs(t, srv, "openfn_cp_user", "per=1000")
		var paged []string
		for page := 1; ; page++ {
			got, _ := listIDs(t, srv, "openfn_cp_user", fmt.Sprintf("per=7&page=%d", page))
			if len(got) == 0 {
				break
			}
			paged = append(paged, got...)
		}
		if diff := cmp.Diff(whole, paged); diff != "" {
			t.Errorf("paged ids (-want +got):\n%s", diff)
		}
	})
	t.Run("the counters count the records each page sent", func(t *testing.T) {
		s, srv := start(t, primero.Options{Cases: 45, Seed: 3})
		for page := 1; page <= 8; page++ { // 7 pages of up to 7, then an empty one
			listIDs(t, srv, "openfn_cp_user", fmt.Sprintf("per=7&page=%d", page))
		}
		if got := s.Counters().ServedRecords()["GET /api/v2/cases"]; got != 45 {
			t.Errorf("served %d records, want 45", got)
		}
	})
}

func TestServer_ListFields(t *testing.T) {
	_, srv := start(t, primero.Options{CasesFrom: crafted()})
	keysOf := func(m map[string]any) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"fields=case_id,sex", []string{"case_id", "enabled", "id", "last_updated_at", "sex"}},
		{"fields=case_id,no_such_field", []string{"case_id", "enabled", "id", "last_updated_at"}},
		{"fields=short", []string{"age", "alert_count", "created_at", "enabled", "id", "last_updated_at", "module_id",
			"owned_by", "owned_by_agency_id", "record_in_scope", "sex", "short_id", "case_id_display", "status"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := call(t, srv, "GET", "/api/v2/cases?order=asc&"+tc.query, "openfn_cp_user", nil)
			want := append([]string(nil), tc.want...)
			sort.Strings(want)
			if diff := cmp.Diff(want, keysOf(r.list(t)[0])); diff != "" {
				t.Errorf("keys of c1 (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("stored null is served, never-set is absent", func(t *testing.T) {
		items := call(t, srv, "GET", "/api/v2/cases?order=asc", "openfn_cp_user", nil).list(t)
		if v, ok := items[0]["name_middle"]; !ok || v != nil {
			t.Errorf("c1 name_middle = %v (present %v), want stored null", v, ok)
		}
		if _, ok := items[1]["name_middle"]; ok {
			t.Errorf("c2 has name_middle, which was never set")
		}
	})
}

func TestServer_ListScope(t *testing.T) {
	_, srv := start(t, primero.Options{CasesFrom: crafted()})
	tests := []struct {
		name, user, query string
		want              []string
	}{
		{"all", "openfn_cp_user", "", []string{c4, c3, c2, c1}},
		{"agency: the case's users include one of my agency", "unicef_reader", "", []string{c4}},
		{"group: the case's users share my group", "mgrpnh", "", []string{c2, c1}},
		{"self: I am associated", "unhcr_cw", "", []string{c3}},
		{"self as a referral recipient", "agency-cif-user", "", []string{c2}},
		{"id_search widens the scope", "unhcr_cw", "query=OSC&id_search=true", []string{c1}},
		{"an identifier the role cannot read is not a filter", "cp_restricted", "oscar_number=OSC-1", []string{c4, c3, c2, c1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := listIDs(t, srv, tc.user, tc.query)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("no case read permission is 403", func(t *testing.T) {
		r := call(t, srv, "GET", "/api/v2/cases", "no_case_access", nil)
		wantStatus(t, r, http.StatusForbidden)
		want := map[string]any{"status": float64(403), "resource": "/api/v2/cases", "message": "Forbidden"}
		if diff := cmp.Diff(want, errorOf(t, r)); diff != "" {
			t.Errorf("error (-want +got):\n%s", diff)
		}
	})
}

func TestServer_ShowCase(t *testing.T) {
	_, srv := start(t, primero.Options{CasesFrom: crafted()})
	tests := []struct {
		name, user, id string
		status         int
		err            map[string]any
	}{
		{"found", "openfn_cp_user", c1, http.StatusOK, nil},
		{"unknown uuid", "openfn_cp_user", "11111111-2222-4333-8444-555555555555", http.StatusNotFound, map[string]any{
			"status": float64(404), "resource": "/api/v2/cases/11111111-2222-4333-8444-555555555555", "message": "Not Found",
			"detail": "Couldn't find Child with 'id'=11111111-2222-4333-8444-555555555555"}},
		{"not a uuid", "openfn_cp_user", "abc", http.StatusNotFound, map[string]any{
			"status": float64(404), "resource": "/api/v2/cases/abc", "message": "Not Found", "detail": "Couldn't find Child with 'id'=abc"}},
		{"case_id is not the record id", "openfn_cp_user", "aaaaaaaa-0000-4000-8000-000000000001", http.StatusNotFound, nil},
		{"outside my scope", "unhcr_cw", c1, http.StatusForbidden, map[string]any{
			"status": float64(403), "resource": "/api/v2/cases/" + c1, "message": "Forbidden"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, srv, "GET", "/api/v2/cases/"+tc.id, tc.user, nil)
			wantStatus(t, r, tc.status)
			if tc.status == http.StatusOK {
				d := r.data(t)
				if d["id"] != tc.id || d["case_id"] != "aaaaaaaa-0000-4000-8000-000000000001" || d["enabled"] != true {
					t.Errorf("show = %v", d)
				}
				return
			}
			if tc.err != nil {
				if diff := cmp.Diff(tc.err, errorOf(t, r)); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestServer_UnknownRouteIs404Envelope(t *testing.T) {
	_, srv := start(t, primero.Options{})
	r := call(t, srv, "GET", "/api/v2/nothing_here", "openfn_cp_user", nil)
	wantStatus(t, r, http.StatusNotFound)
	e := errorOf(t, r)
	if e["message"] != "Not Found" || !strings.Contains(e["detail"].(string), "No route matches") {
		t.Errorf("error = %v", e)
	}
}

// TestServer_ListPagesSeeChanges: the pages after a listing's first are cut
// from the matches the first page found (the fake no longer scans every
// case per page), so they must still answer as a fresh query would: a
// change between two pages shows on the next, and another user's or
// another query's listing is its own.
func TestServer_ListPagesSeeChanges(t *testing.T) {
	s, srv := start(t, primero.Options{CasesFrom: crafted()})
	const window = "last_updated_at=2024-01-01T00:00:00Z..2024-12-31T00:00:00Z"
	page := func(user, query string, n int) ([]string, int) {
		got, total := listIDs(t, srv, user, fmt.Sprintf("%s&per=2&page=%d", query, n))
		return got, int(total)
	}
	tests := []struct {
		name string
		step func(t *testing.T)
	}{
		{"pages of one listing", func(t *testing.T) {
			p1, t1 := page("openfn_cp_user", window, 1)
			p2, t2 := page("openfn_cp_user", window, 2)
			if diff := cmp.Diff([]string{c4, c3, c2, c1}, append(p1, p2...)); diff != "" || t1 != 4 || t2 != 4 {
				t.Errorf("pages (-want +got):\n%s totals %d, %d", diff, t1, t2)
			}
		}},
		{"a change between pages shows on the next", func(t *testing.T) {
			page("openfn_cp_user", window, 1)
			// c2 leaves the window: the second page is c1 alone.
			s.Touch(c2, map[string]any{"last_updated_at": "2025-06-01T00:00:00.000Z"})
			p2, total := page("openfn_cp_user", window, 2)
			if diff := cmp.Diff([]string{c1}, p2); diff != "" || total != 3 {
				t.Errorf("page 2 after the change (-want +got):\n%s total %d, want 3", diff, total)
			}
		}},
		{"another query is its own listing", func(t *testing.T) {
			page("openfn_cp_user", window, 1)
			if got, total := page("openfn_cp_user", "record_state=true", 2); total != 3 || len(got) != 1 {
				t.Errorf("record_state=true page 2: %v, total %d, want one of 3", got, total)
			}
		}},
		{"another user is its own listing", func(t *testing.T) {
			page("openfn_cp_user", "", 1)
			all, _ := listIDs(t, srv, "openfn_cp_user", "per=10")
			mine, _ := listIDs(t, srv, "unhcr_cw", "per=10")
			if len(mine) >= len(all) {
				t.Errorf("unhcr_cw sees %v, openfn_cp_user %v: want the narrower scope", mine, all)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.step)
	}
}
