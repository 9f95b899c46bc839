package ping_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/internal/fakes/ping"
)

func TestServer_RetrieveShippingProcesses(t *testing.T) {
	srv, c := start(t, ping.Options{Interventions: 6, Decisions: 5})
	pending := srv.Pending()
	first := pending[0]["progres_lpinterventionid"].(string)
	second := pending[1]["progres_lpinterventionid"].(string)
	decisions := srv.Decisions()
	ref0 := decisions[0]["progres_interoperabilityreferralid"].(string)
	ref1 := decisions[1]["progres_interoperabilityreferralid"].(string)
	secondRows := len(rows(t, c.retrieve(ping.SHPInterventionDetail, "{record_ids}", second)))

	tests := []struct {
		name     string
		shp      string
		params   []string
		wantRows int
		check    func(t *testing.T, rows []map[string]any)
	}{
		{"SHP-2747 lists every pending intervention", ping.SHPPendingInterventions, nil, 6, func(t *testing.T, rows []map[string]any) {
			for _, r := range rows {
				if _, ok := r["progres_lpinterventionid"].(string); !ok {
					t.Errorf("row without progres_lpinterventionid: %v", r)
				}
				if _, ok := r["progres_individual.indiv.progres_givenname"]; !ok {
					t.Errorf("SHP-2747 must use its own alias 'indiv': %v", r)
				}
			}
		}},
		{"SHP-2358 multiplies rows by language x specific need", ping.SHPInterventionDetail, []string{"{record_ids}", first}, 4, func(t *testing.T, rows []map[string]any) {
			langs, needs := map[any]bool{}, map[any]bool{}
			for _, r := range rows {
				langs[r["progres_language.progres_languagecodeidname"]] = true
				needs[r["progres_specificneed.progres_spnsubcategory2name"]] = true
				if r["progres_interventionnumber"] != rows[0]["progres_interventionnumber"] {
					t.Errorf("joined rows of one intervention differ in number: %v", r["progres_interventionnumber"])
				}
				if _, ok := r["progres_individual.individuals.progres_givenname"]; !ok {
					t.Errorf("SHP-2358 must use its own alias 'individuals': %v", r)
				}
				if _, ok := r["progres_lpinterventionid"]; ok {
					t.Errorf("SHP-2358 rows need not carry progres_lpinterventionid; the client copies it")
				}
			}
			if len(langs) != 2 || len(needs) != 2 {
				t.Errorf("got %d languages x %d needs, want 2 x 2", len(langs), len(needs))
			}
		}},
		{"SHP-2358 upper-case GUID", ping.SHPInterventionDetail, []string{"{record_ids}", strings.ToUpper(first)}, 4, nil},
		{"SHP-2358 bracketed list", ping.SHPInterventionDetail, []string{"{record_ids}", "[" + first + ", " + second + "]"}, 4 + secondRows, func(t *testing.T, rows []map[string]any) {
			nums := map[any]bool{}
			for _, r := range rows {
				nums[r["progres_interventionnumber"]] = true
			}
			if len(nums) != 2 {
				t.Errorf("want rows of 2 interventions, got %v", nums)
			}
		}},
		{"SHP-2358 unknown id is empty, not an error", ping.SHPInterventionDetail, []string{"{record_ids}", "0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f"}, 0, nil},
		{"SHP-2795 lists every referral with an integer status", ping.SHPDecisions, nil, 5, func(t *testing.T, rows []map[string]any) {
			var got []float64
			for _, r := range rows {
				got = append(got, r["progres_interoperabilityreferralstatus"].(float64))
			}
			want := []float64{ping.ReferralAccepted, ping.ReferralRejected, ping.ReferralUnknownCode, ping.ReferralNew}
			if diff := cmp.Diff(want, got[:4]); diff != "" {
				t.Errorf("seeded statuses (-want +got):\n%s", diff)
			}
		}},
		{"SHP-2796 returns one row", ping.SHPDecisionDetail, []string{"{record_ids}", ref1}, 1, func(t *testing.T, rows []map[string]any) {
			r := rows[0]
			if r["progres_interoperabilityreferralid"] != ref1 || r["progres_reviewdecision"] != 125080001.0 {
				t.Errorf("row %v", r)
			}
			for _, k := range []string{"progres_interoperabiltyreferralrejectionreasonname", "progres_interoperabilityreferralrejectionomment", "progres_offlineid", "progres_orgreferralid"} {
				if s, _ := r[k].(string); s == "" {
					t.Errorf("rejected referral lacks %s: %v", k, r)
				}
			}
		}},
		{"SHP-2796 two ids", ping.SHPDecisionDetail, []string{"{record_ids}", "[" + ref1 + "," + ref0 + "]"}, 2, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := c.retrieve(tc.shp, tc.params...)
			got := rows(t, body)
			if len(got) != tc.wantRows {
				t.Fatalf("%d rows, want %d: %v", len(got), tc.wantRows, body["Data"])
			}
			if tc.wantRows > 0 {
				if rc := body["RecordCount"]; rc != float64(tc.wantRows) {
					t.Errorf("RecordCount %v, want %d", rc, tc.wantRows)
				}
			}
			if id, _ := body["SPHTransactionId"].(string); len(id) != 36 {
				t.Errorf("SPHTransactionId %q is not a GUID", id)
			}
			if body["ErrorMessage"] != nil {
				t.Errorf("ErrorMessage %v, want null", body["ErrorMessage"])
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

func TestServer_RetrieveRejectsBadQueries(t *testing.T) {
	srv, c := start(t, ping.Options{Interventions: 2})
	id := srv.Pending()[0]["progres_lpinterventionid"].(string)
	tests := []struct {
		name    string
		body    any
		wantMsg string
	}{
		{"not JSON", `{"ShippingProcessId":`, "The request body is not valid JSON"},
		{"array body", `[]`, "The request body must be a JSON object"},
		{"wrong type", `{"ShippingProcessId": 2747, "PartnerId":"PNR-1363","InteropID":"INT-1436"}`, "The value of 'ShippingProcessId' has the wrong type"},
		{"no shipping process", map[string]any{"PartnerId": ping.DefaultPartnerID, "InteropID": ping.DefaultInteropID}, "ShippingProcessId is required"},
		{"unknown shipping process", retrieveBody("SHP-9999"), "Shipping process 'SHP-9999' is not configured"},
		{"ingestion process on retrieve", retrieveBody(ping.SHPTransferStatus), "Shipping process 'SHP-2748' is a synchronous ingestion process"},
		{"parameter the query does not define", retrieveBody(ping.SHPDecisions, "{progres_interoperabilityreferralstatus}", "[125080001, 125080002]"),
			"Query parameter '{progres_interoperabilityreferralstatus}' is not defined"},
		{"record_ids on a list process", retrieveBody(ping.SHPPendingInterventions, "{record_ids}", id), "Query parameter '{record_ids}' is not defined"},
		{"record_ids missing", retrieveBody(ping.SHPInterventionDetail), "Query parameter '{record_ids}' is required"},
		{"record_ids empty", retrieveBody(ping.SHPInterventionDetail, "{record_ids}", ""), "Query parameter '{record_ids}' needs a Value"},
		{"record_ids twice", retrieveBody(ping.SHPInterventionDetail, "{record_ids}", id, "{record_ids}", id), "Query parameter '{record_ids}' is given twice"},
		{"record_ids not a GUID", retrieveBody(ping.SHPInterventionDetail, "{record_ids}", "803-23-PRTITV-1000642"), "Value of query parameter '{record_ids}' is not a GUID"},
		{"record_ids quoted list", retrieveBody(ping.SHPInterventionDetail, "{record_ids}", `["`+id+`"]`), "Value of query parameter '{record_ids}' is not a GUID"},
		{"record_ids unclosed list", retrieveBody(ping.SHPInterventionDetail, "{record_ids}", "["+id), "Value of query parameter '{record_ids}' has an unclosed"},
		{"API version 2 on the v3 path", func() any { b := retrieveBody(ping.SHPPendingInterventions); b["APIVersion"] = "V2"; return b }(), "APIVersion 'V2' is not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, body := c.post(ping.RetrievePath, tc.body)
			if st != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %v", st, body)
			}
			if msg, _ := body["ErrorMessage"].(string); !strings.HasPrefix(msg, tc.wantMsg) {
				t.Errorf("ErrorMessage %q, want prefix %q", msg, tc.wantMsg)
			}
			if body["Data"] != nil || body["RecordCount"] != nil {
				t.Errorf("a 400 carries no data: %v", body)
			}
		})
	}
}

func TestServer_RetrieveBodyKeysIgnoreCase(t *testing.T) {
	_, c := start(t, ping.Options{Interventions: 3})
	bodies := map[string]string{
		"InteropID":      `{"ShippingProcessId":"SHP-2747","PartnerId":"PNR-1363","InteropID":"INT-1436","APIVersion":"V3","QueryParameters":[]}`,
		"InteropId":      `{"ShippingProcessId":"SHP-2747","PartnerId":"PNR-1363","InteropId":"INT-1436","APIVersion":"V3","QueryParameters":[]}`,
		"all lower case": `{"shippingprocessid":"SHP-2747","partnerid":"PNR-1363","interopid":"INT-1436","apiversion":"v3","queryparameters":[]}`,
		"no parameters":  `{"ShippingProcessId":"SHP-2747","PartnerId":"PNR-1363","InteropID":"INT-1436"}`,
	}
	for name, b := range bodies {
		t.Run(name, func(t *testing.T) {
			st, body := c.post(ping.RetrievePath, b)
			if st != http.StatusOK || len(rows(t, body)) != 3 {
				t.Errorf("status %d, %v", st, body)
			}
		})
	}
}

func TestServer_RetrieveEmpty(t *testing.T) {
	tests := []struct {
		name      string
		mode      ping.EmptyMode
		wantData  any
		wantCount any
	}{
		{"No Data Available string (default)", ping.EmptyNoDataString, "No Data Available", nil},
		{"null", ping.EmptyNull, nil, nil},
		{"empty array", ping.EmptyArray, []any{}, 0.0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, c := start(t, ping.Options{Empty: tc.mode})
			body := c.retrieve(ping.SHPPendingInterventions)
			got := map[string]any{"Data": body["Data"], "RecordCount": body["RecordCount"], "PagingSummary": body["PagingSummary"]}
			want := map[string]any{"Data": tc.wantData, "RecordCount": tc.wantCount, "PagingSummary": map[string]any{
				"PagingCookie": nil, "PageNumber": 0.0, "IsMoreRecordsAvailable": false}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("empty answer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServer_RetrievePaging(t *testing.T) {
	t.Run("single page keeps null/0/false", func(t *testing.T) {
		_, c := start(t, ping.Options{Interventions: 5, PageSize: 5})
		body := c.retrieve(ping.SHPPendingInterventions)
		want := map[string]any{"PagingCookie": nil, "PageNumber": 0.0, "IsMoreRecordsAvailable": false}
		if diff := cmp.Diff(want, body["PagingSummary"]); diff != "" {
			t.Errorf("PagingSummary (-want +got):\n%s", diff)
		}
	})

	walks := []struct {
		name      string
		n, size   int
		shp       string
		wantRows  int
		wantPages int
	}{
		{"exact multiple", 10, 5, ping.SHPPendingInterventions, 10, 2},
		{"remainder", 11, 5, ping.SHPPendingInterventions, 11, 3},
		{"page size 1", 3, 1, ping.SHPDecisions, 3, 3},
		{"default page size over 120", 120, 0, ping.SHPPendingInterventions, 120, 3},
	}
	for _, tc := range walks {
		t.Run("walk "+tc.name, func(t *testing.T) {
			s, c := start(t, ping.Options{Interventions: tc.n, Decisions: tc.n, PageSize: tc.size})
			all, pages := c.retrieveAll(tc.shp)
			if len(all) != tc.wantRows || pages != tc.wantPages {
				t.Fatalf("%d rows in %d pages, want %d in %d", len(all), pages, tc.wantRows, tc.wantPages)
			}
			if got := s.Counters().ServedRecords()["POST "+ping.RetrievePath]; got != int64(tc.wantRows) {
				t.Errorf("the counters say %d rows served, want %d", got, tc.wantRows)
			}
			key := "progres_lpinterventionid"
			if tc.shp == ping.SHPDecisions {
				key = "progres_interoperabilityreferralid"
			}
			seen := map[any]bool{}
			for _, r := range all {
				if seen[r[key]] {
					t.Errorf("row %v handed out twice", r[key])
				}
				seen[r[key]] = true
			}
		})
	}

	t.Run("pages number from 1 and count only their own rows", func(t *testing.T) {
		_, c := start(t, ping.Options{Interventions: 7, PageSize: 3})
		body := retrieveBody(ping.SHPPendingInterventions)
		var got []any
		for {
			_, resp := c.post(ping.RetrievePath, body)
			ps := resp["PagingSummary"].(map[string]any)
			got = append(got, []any{ps["PageNumber"], resp["RecordCount"], ps["IsMoreRecordsAvailable"]})
			if ps["IsMoreRecordsAvailable"] != true {
				break
			}
			if _, ok := ps["PagingCookie"].(string); !ok {
				t.Fatalf("no cookie with more records: %v", ps)
			}
			body["PagingCookie"], body["PageNumber"] = ps["PagingCookie"], ps["PageNumber"].(float64)+1
		}
		want := []any{[]any{1.0, 3.0, true}, []any{2.0, 3.0, true}, []any{3.0, 1.0, false}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(PageNumber, RecordCount, more) per page (-want +got):\n%s", diff)
		}
	})

	t.Run("SHP-2358 joined rows page too", func(t *testing.T) {
		srv, c := start(t, ping.Options{Interventions: 1, PageSize: 3})
		id := srv.Pending()[0]["progres_lpinterventionid"].(string)
		all, pages := c.retrieveAll(ping.SHPInterventionDetail, "{record_ids}", id)
		if len(all) != 4 || pages != 2 {
			t.Errorf("%d rows in %d pages, want 4 in 2", len(all), pages)
		}
	})

	t.Run("acknowledging while walking skips nothing", func(t *testing.T) {
		srv, c := start(t, ping.Options{Interventions: 9, PageSize: 3})
		body := retrieveBody(ping.SHPPendingInterventions)
		var seen []string
		for {
			_, resp := c.post(ping.RetrievePath, body)
			for _, r := range rows(t, resp) {
				id := r["progres_lpinterventionid"].(string)
				seen = append(seen, id)
				if got := c.ingest(ping.SHPTransferStatus, ackItem(id, "125080002")); got[0] != ping.StateSucceeded {
					t.Fatalf("ack %s: %v", id, got)
				}
			}
			ps := resp["PagingSummary"].(map[string]any)
			if ps["IsMoreRecordsAvailable"] != true {
				break
			}
			body["PagingCookie"], body["PageNumber"] = ps["PagingCookie"], ps["PageNumber"].(float64)+1
		}
		if len(seen) != 9 || len(srv.Pending()) != 0 {
			t.Errorf("saw %d of 9 while acknowledging; %d still pending", len(seen), len(srv.Pending()))
		}
	})

	t.Run("cookie misuse", func(t *testing.T) {
		srv, c := start(t, ping.Options{Interventions: 6, Decisions: 6, PageSize: 2})
		ids := []string{srv.Pending()[0]["progres_lpinterventionid"].(string), srv.Pending()[1]["progres_lpinterventionid"].(string)}
		first := c.retrieve(ping.SHPPendingInterventions)
		cookie := first["PagingSummary"].(map[string]any)["PagingCookie"]
		detail := c.retrieve(ping.SHPInterventionDetail, "{record_ids}", ids[0])
		detailCookie := detail["PagingSummary"].(map[string]any)["PagingCookie"]
		with := func(b map[string]any, cookie any, page any) map[string]any {
			b["PagingCookie"], b["PageNumber"] = cookie, page
			return b
		}
		tests := []struct {
			name    string
			body    map[string]any
			wantMsg string
		}{
			{"replayed on another shipping process", with(retrieveBody(ping.SHPDecisions), cookie, 2), "PagingCookie was issued for a different"},
			{"replayed with other record_ids", with(retrieveBody(ping.SHPInterventionDetail, "{record_ids}", ids[1]), detailCookie, 2), "PagingCookie was issued for a different"},
			{"page skipped", with(retrieveBody(ping.SHPPendingInterventions), cookie, 3), "PageNumber must be 2"},
			{"no PageNumber", with(retrieveBody(ping.SHPPendingInterventions), cookie, nil), "PageNumber must be 2"},
			{"garbage cookie", with(retrieveBody(ping.SHPPendingInterventions), "page=2", 2), "PagingCookie is not a valid"},
			{"page 2 without cookie", with(retrieveBody(ping.SHPPendingInterventions), nil, 2), "PagingCookie is required to request page 2"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				st, body := c.post(ping.RetrievePath, tc.body)
				if st != http.StatusBadRequest {
					t.Fatalf("status %d, want 400: %v", st, body)
				}
				if msg, _ := body["ErrorMessage"].(string); !strings.HasPrefix(msg, tc.wantMsg) {
					t.Errorf("ErrorMessage %q, want prefix %q", msg, tc.wantMsg)
				}
			})
		}
		// The same cookie with the same query keeps working: replay is safe.
		for range 2 {
			if st, body := c.post(ping.RetrievePath, with(retrieveBody(ping.SHPPendingInterventions), cookie, 2)); st != http.StatusOK {
				t.Fatalf("replay with the same query: %d %v", st, body)
			}
		}
	})
}

func TestServer_PendingPredicate(t *testing.T) {
	// Only 125080002 counts as handled here, so Delivery Fail and the
	// decision codes all stay listed.
	srv, c := start(t, ping.Options{Interventions: 4, IsPending: func(st int) bool { return st != ping.TransferPendingAck }})
	ids := []string{}
	for _, r := range srv.Pending() {
		ids = append(ids, r["progres_lpinterventionid"].(string))
	}
	c.ingest(ping.SHPTransferStatus, ackItem(ids[0], "125080002"), ackItem(ids[1], "125080004"))
	var got []string
	for _, r := range rows(t, c.retrieve(ping.SHPPendingInterventions)) {
		got = append(got, r["progres_lpinterventionid"].(string))
	}
	if want := ids[1:]; !slices.Equal(got, want) {
		t.Errorf("pending %v, want %v", got, want)
	}
}
