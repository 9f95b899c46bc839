package ping_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"casesync/internal/fakes/ping"
)

func TestServer_SyncTransferStatus(t *testing.T) {
	const missing = "0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f"
	tests := []struct {
		name        string
		item        func(id string) map[string]any
		wantStatus  string
		wantPending bool // still in the SHP-2747 queue afterwards
	}{
		{"pending acknowledgement removes it from the queue", func(id string) map[string]any { return ackItem(id, "125080002") }, ping.StateSucceeded, false},
		{"acknowledged decision", func(id string) map[string]any { return ackItem(id, "125080003") }, ping.StateSucceeded, false},
		{"rejected decision", func(id string) map[string]any { return ackItem(id, "125080004") }, ping.StateSucceeded, false},
		{"delivery fail keeps it pending", func(id string) map[string]any { return ackItem(id, "125080001") }, ping.StateSucceeded, true},
		{"upper-case GUID", func(id string) map[string]any { return ackItem(strings.ToUpper(id), "125080002") }, ping.StateSucceeded, false},
		{"unknown intervention", func(string) map[string]any { return ackItem(missing, "125080002") }, ping.StateFailed, true},
		{"placeholder id55 is only a correlation value", func(id string) map[string]any {
			it := ackItem(id, "125080002")
			it["ExternalId"] = "id55"
			return it
		}, ping.StateSucceeded, false},
		{"another business unit", func(id string) map[string]any {
			it := ackItem(id, "125080002")
			it["Fields"] = fields("progres_lpinterventionid", id, "progres_businessunit", "d69e8ec1-e80b-e611-80d3-001dd8b71f12",
				"progres_primerotransferstatus", "125080002")
			return it
		}, ping.StateFailed, true},
		{"unknown option-set code", func(id string) map[string]any { return ackItem(id, "125080009") }, ping.StateFailed, true},
		{"code that is not a number", func(id string) map[string]any { return ackItem(id, "Pending") }, ping.StateFailed, true},
		{"date in another format", func(id string) map[string]any {
			it := ackItem(id, "125080002")
			it["Fields"] = fields("progres_lpinterventionid", id, "progres_businessunit", ping.DefaultBusinessUnitID,
				"progres_primerotransferstatus", "125080002", "progres_primerotransferstatusdate", "13/05/2026")
			return it
		}, ping.StateFailed, true},
		{"field the process does not map", func(id string) map[string]any {
			it := ackItem(id, "125080002")
			it["Fields"] = append(it["Fields"].([]any), map[string]any{"Name": "progres_primerostatus", "Value": "x"})
			return it
		}, ping.StateFailed, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := start(t, ping.Options{Interventions: 3})
			id := srv.Pending()[0]["progres_lpinterventionid"].(string)
			st, resp := c.post(ingestPath(ping.DefaultPartnerID, "data"), syncBody(ping.SHPTransferStatus, tc.item(id)))
			if st != http.StatusOK {
				t.Fatalf("status %d: %v", st, resp)
			}
			item := resp["Data"].([]any)[0].(map[string]any)
			if item["Status"] != tc.wantStatus {
				t.Errorf("item %v, want Status %s", item, tc.wantStatus)
			}
			if tc.wantStatus == ping.StateFailed && item["Message"] == nil {
				t.Errorf("a failed item says why: %v", item)
			}
			if item["ExternalId"] != tc.item(id)["ExternalId"] {
				t.Errorf("ExternalId %v not echoed", item["ExternalId"])
			}
			if resp["RecordCount"] != 1.0 || resp["ErrorMessage"] != nil {
				t.Errorf("envelope %v", resp)
			}
			stillPending := false
			for _, r := range srv.Pending() {
				stillPending = stillPending || r["progres_lpinterventionid"] == id
			}
			if stillPending != tc.wantPending {
				t.Errorf("pending = %v, want %v", stillPending, tc.wantPending)
			}
			if n := len(srv.Ingested(ping.SHPTransferStatus)); (n == 1) != (tc.wantStatus == ping.StateSucceeded) {
				t.Errorf("Ingested holds %d items after a %s write", n, tc.wantStatus)
			}
		})
	}
}

func TestServer_SyncDecisionBatch(t *testing.T) {
	srv, c := start(t, ping.Options{Interventions: 3})
	var ids []string
	for _, r := range srv.Pending() {
		ids = append(ids, r["progres_lpinterventionid"].(string))
	}
	decision := func(id, status, comment string) map[string]any {
		return map[string]any{
			"ExternalId":  "case-" + id[:8],
			"Attachments": []any{map[string]any{"Comment": comment}},
			"Fields": fields(
				"progres_lpinterventionid", id, "progres_businessunit", ping.DefaultBusinessUnitID,
				"progres_primerotransferstatus", status, "progres_primerotransferstatusdate", "2026-06-01",
				"progres_primeroid", "case-"+id[:8], "progres_primerocaseworker", "primero_cp"),
		}
	}
	batch := []map[string]any{
		decision(ids[0], "125080003", "Referral acknowledged by PRIMERO"),
		decision(ids[1], "125080004", "Referral rejected by PRIMERO: no capacity"),
		decision("0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f", "125080003", "Referral acknowledged by PRIMERO"),
	}
	want := []string{ping.StateSucceeded, ping.StateSucceeded, ping.StateFailed}
	if got := c.ingest(ping.SHPTransferStatus, batch...); !cmp.Equal(want, got) {
		t.Fatalf("first send: %v, want %v", got, want)
	}
	if got := srv.Counters().Writes(); !cmp.Equal(got, map[string]int64{"SHP-2748 update": 2}) {
		t.Errorf("writes after first send: %v", got)
	}
	rec, _ := srv.Intervention(ids[1])
	wantRec := map[string]any{
		"progres_primerotransferstatus":     float64(ping.TransferRejected),
		"progres_primerotransferstatusdate": "2026-06-01",
		"progres_primeroid":                 "case-" + ids[1][:8],
		"progres_primerocaseworker":         "primero_cp",
		"notes":                             []any{"Referral rejected by PRIMERO: no capacity"},
	}
	gotRec := map[string]any{}
	for k := range wantRec {
		gotRec[k] = rec[k]
	}
	// Round-trip through JSON so ints and []string compare as the wire shows them.
	b, _ := json.Marshal(gotRec)
	gotRec = map[string]any{}
	json.Unmarshal(b, &gotRec)
	if diff := cmp.Diff(wantRec, gotRec); diff != "" {
		t.Errorf("stored intervention (-want +got):\n%s", diff)
	}

	// The flows re-send: the same values succeed again. The fields do not
	// change, but each attachment is a new proGres note, counted as a duplicate.
	if got := c.ingest(ping.SHPTransferStatus, batch...); !cmp.Equal(want, got) {
		t.Fatalf("re-send: %v, want %v", got, want)
	}
	if got, want := srv.Counters().Duplicates.Load(), int64(2); got != want {
		t.Errorf("duplicate notes %d, want %d", got, want)
	}
	rec, _ = srv.Intervention(ids[1])
	if n := len(rec["notes"].([]string)); n != 2 {
		t.Errorf("%d notes after a re-send, want 2", n)
	}
	batch[0]["Attachments"], batch[1]["Attachments"] = []any{}, []any{}
	c.ingest(ping.SHPTransferStatus, batch[:2]...)
	if got := srv.Counters().Writes()["SHP-2748 noop"]; got != 2 {
		t.Errorf("identical re-send without attachments: %d noop writes, want 2", got)
	}
}

func TestServer_SyncMarkSynced(t *testing.T) {
	srv, c := start(t, ping.Options{Decisions: 4})
	ref := srv.Decisions()[0]["progres_interoperabilityreferralid"].(string)
	item := func(status string) map[string]any {
		return map[string]any{
			"ExternalId":  ref,
			"Attachments": []any{},
			"Fields": fields("progres_interoperabilityreferralid", ref,
				"progres_interoperabilityreferralstatus", status,
				"progres_comments", "Referral decision synced with PRIMERO via OpenFn"),
		}
	}
	if got := c.ingest(ping.SHPMarkSynced, item("125080007")); got[0] != ping.StateFailed {
		t.Errorf("unknown status code: %v", got)
	}
	for range 2 {
		if got := c.ingest(ping.SHPMarkSynced, item("125080003")); got[0] != ping.StateSucceeded {
			t.Fatalf("mark synced: %v", got)
		}
	}
	detail := rows(t, c.retrieve(ping.SHPDecisionDetail, "{record_ids}", ref))[0]
	if detail["progres_interoperabilityreferralstatus"] != float64(ping.ReferralSynced) {
		t.Errorf("status after SHP-2284: %v", detail["progres_interoperabilityreferralstatus"])
	}
	if w := srv.Counters().Writes(); w["SHP-2284 update"] != 1 || w["SHP-2284 noop"] != 1 {
		t.Errorf("writes %v, want one update then one noop", w)
	}
	// SHP-2795 still lists it (the client filters by status) unless configured otherwise.
	if n := len(rows(t, c.retrieve(ping.SHPDecisions))); n != 4 {
		t.Errorf("SHP-2795 lists %d, want all 4", n)
	}
	srv2, c2 := start(t, ping.Options{Decisions: 4, HideSyncedDecisions: true})
	ref2 := srv2.Decisions()[0]["progres_interoperabilityreferralid"].(string)
	c2.ingest(ping.SHPMarkSynced, map[string]any{"ExternalId": ref2, "Fields": fields(
		"progres_interoperabilityreferralid", ref2, "progres_interoperabilityreferralstatus", "125080003")})
	for _, r := range rows(t, c2.retrieve(ping.SHPDecisions)) {
		if r["progres_interoperabilityreferralid"] == ref2 {
			t.Errorf("HideSyncedDecisions still lists the synced referral")
		}
	}
}

func TestServer_IngestionRejectsMalformedBodies(t *testing.T) {
	good := ackItem("6a3f0e52-4d5b-4c8e-9a1f-2b3c4d5e6f70", "125080002")
	tests := []struct {
		name    string
		op      string
		body    any
		wantMsg string
	}{
		{"not JSON", "data", `{"Data": [`, "The request body is not valid JSON"},
		{"no Data", "data", map[string]any{"ShippingProcessId": "SHP-2748", "InteropId": ping.DefaultInteropID}, "Data is required"},
		{"empty Data", "data", syncBody(ping.SHPTransferStatus), "Data is required"},
		{"Data not an array", "data", map[string]any{"ShippingProcessId": "SHP-2748", "InteropId": ping.DefaultInteropID, "Data": good}, "The value of 'Data' has the wrong type"},
		{"no InteropId", "data", map[string]any{"ShippingProcessId": "SHP-2748", "Data": []any{good}}, "InteropID is required"},
		{"unknown shipping process", "data", syncBody("SHP-0001", good), "Shipping process 'SHP-0001' is not configured"},
		{"async process on the sync path", "data", syncBody(ping.SHPCreateReferral, good), "Shipping process 'SHP-2731' is an asynchronous ingestion process"},
		{"sync process on the async path", "asyncdata", syncBody(ping.SHPTransferStatus, good), "Shipping process 'SHP-2748' is a synchronous ingestion process"},
		{"retrieve process on ingestion", "data", syncBody(ping.SHPPendingInterventions, good), "Shipping process 'SHP-2747' is a retrieve process"},
		{"item without Fields", "data", syncBody(ping.SHPTransferStatus, map[string]any{"ExternalId": "x"}), "Data[0].Fields is required"},
		{"field without Name", "data", syncBody(ping.SHPTransferStatus, map[string]any{"Fields": []any{map[string]any{"Value": "x"}}}), "Data[0].Fields[0].Name is required"},
		{"field given twice", "data", syncBody(ping.SHPTransferStatus, map[string]any{"Fields": fields(
			"progres_lpinterventionid", "6a3f0e52-4d5b-4c8e-9a1f-2b3c4d5e6f70", "progres_lpinterventionid", "6a3f0e52-4d5b-4c8e-9a1f-2b3c4d5e6f70")}), "Data[0].Fields has 'progres_lpinterventionid' twice"},
		{"numeric Value", "data", syncBody(ping.SHPTransferStatus, map[string]any{"Fields": fields("progres_primerotransferstatus", 125080002)}), "The value of 'Data.Fields.Value' has the wrong type"},
		{"key field missing", "data", syncBody(ping.SHPTransferStatus, map[string]any{"Fields": fields(
			"progres_businessunit", ping.DefaultBusinessUnitID, "progres_primerotransferstatus", "125080002")}), "Data[0] has no value for the key field 'progres_lpinterventionid'"},
		{"key field empty (the job's ?? '')", "data", syncBody(ping.SHPTransferStatus, ackItem("", "125080002")), "Data[0] has no value for the key field 'progres_lpinterventionid'"},
		{"SHP-2284 without referral id", "data", syncBody(ping.SHPMarkSynced, map[string]any{"Fields": fields("progres_comments", "x")}), "Data[0] has no value for the key field 'progres_interoperabilityreferralid'"},
		{"async API version", "asyncdata", func() any {
			b := asyncBody("c1", referralFields("c1", "s1"))
			b["APIVersion"] = "V3"
			return b
		}(), "APIVersion 'V3' is not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := start(t, ping.Options{Interventions: 1})
			st, body := c.post(ingestPath(ping.DefaultPartnerID, tc.op), tc.body)
			if st != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %v", st, body)
			}
			if msg, _ := body["ErrorMessage"].(string); !strings.HasPrefix(msg, tc.wantMsg) {
				t.Errorf("ErrorMessage %q, want prefix %q", msg, tc.wantMsg)
			}
			if n := srv.Counters().TotalWrites(); n != 0 {
				t.Errorf("a refused body wrote %d times", n)
			}
		})
	}
}

func TestServer_AsyncReferral(t *testing.T) {
	tests := []struct {
		name      string
		opts      ping.Options
		edit      func(map[string]any)
		advances  int
		wantState string
		wantMsg   string // substring of the item Message when Failed
	}{
		{"queued until advanced", ping.Options{}, nil, 0, ping.StateQueued, ""},
		{"processing after one step", ping.Options{}, nil, 1, ping.StateProcessing, ""},
		{"pending to done", ping.Options{}, nil, 2, ping.StateSucceeded, ""},
		{"done stays done", ping.Options{}, nil, 5, ping.StateSucceeded, ""},
		{"pending to failed: required field empty", ping.Options{}, func(f map[string]any) { f["progres_poclastname"] = "" }, 2, ping.StateFailed, "progres_poclastname"},
		{"pending to failed: required field missing", ping.Options{}, func(f map[string]any) { delete(f, "progres_orgreferralid") }, 2, ping.StateFailed, "progres_orgreferralid"},
		{"pending to failed: unknown service GUID", ping.Options{}, func(f map[string]any) { f["progres_requestedservice"] = "0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f" }, 2, ping.StateFailed, "progres_requestedservice"},
		{"pending to failed: unknown business unit", ping.Options{}, func(f map[string]any) { f["progres_businessunit"] = "d69e8ec1-e80b-e611-80d3-001dd8b71f12" }, 2, ping.StateFailed, "progres_businessunit"},
		{"pending to failed: the job's literal Unknown sex", ping.Options{}, func(f map[string]any) { f["progres_pocsex"] = "Unknown" }, 2, ping.StateFailed, "progres_pocsex"},
		{"pending to failed: unmapped field", ping.Options{}, func(f map[string]any) { f["progres_language"] = "language1" }, 2, ping.StateFailed, "progres_language"},
		{"pending to failed: custom rule", ping.Options{FailIngestion: func(f map[string]string) bool { return f["progres_pocfirstname"] == "Kelo" }}, nil, 2, ping.StateFailed, "rejected"},
		{"custom rule replaces the default", ping.Options{FailIngestion: func(map[string]string) bool { return false }}, func(f map[string]any) { f["progres_poclastname"] = "" }, 2, ping.StateSucceeded, ""},
		{"never finishing", ping.Options{NeverFinish: true}, nil, 10, ping.StateProcessing, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := start(t, tc.opts)
			f := referralFields("case-1", "3f2a91c0-0000-4000-8000-000000000001")
			if tc.edit != nil {
				tc.edit(f)
			}
			tx := c.sendAsync("case-1", f)
			for range tc.advances {
				srv.Advance()
			}
			if got := srv.Transactions()[tx]; got != tc.wantState {
				t.Errorf("Transactions()[tx] = %q, want %q", got, tc.wantState)
			}
			resp := c.checkStatus(tx)
			items := resp["Data"].([]any)
			item := items[0].(map[string]any)
			if item["Status"] != tc.wantState || item["ExternalId"] != "case-1" {
				t.Errorf("status item %v, want %s", item, tc.wantState)
			}
			created := rows(t, c.retrieve(ping.SHPDecisions))
			switch tc.wantState {
			case ping.StateSucceeded:
				var stored map[string]any
				if err := json.Unmarshal([]byte(item["Data"].(string)), &stored); err != nil {
					t.Fatalf("item Data is not a JSON object string: %v", err)
				}
				id, _ := stored["progres_interoperabilityreferralid"].(string)
				if len(created) != 1 || created[0]["progres_interoperabilityreferralid"] != id ||
					created[0]["progres_interoperabilityreferralstatus"] != float64(ping.ReferralNew) {
					t.Errorf("SHP-2795 after success: %v, want the new referral %s with status 125080000", created, id)
				}
				detail := rows(t, c.retrieve(ping.SHPDecisionDetail, "{record_ids}", id))[0]
				if detail["progres_offlineid"] != "case-1" || detail["progres_orgreferralid"] != "3f2a91c0-0000-4000-8000-000000000001" {
					t.Errorf("SHP-2796 of the new referral: %v", detail)
				}
				if got := srv.Ingested(ping.SHPCreateReferral); len(got) != 1 || got[0]["RecordId"] != id {
					t.Errorf("Ingested: %v", got)
				}
			case ping.StateFailed:
				if msg, _ := item["Message"].(string); !strings.Contains(msg, tc.wantMsg) {
					t.Errorf("Message %q, want it to name %q", msg, tc.wantMsg)
				}
				if item["Data"] != nil || len(created) != 0 || len(srv.Ingested(ping.SHPCreateReferral)) != 0 {
					t.Errorf("a failed item created something: %v, %v", item, created)
				}
			default:
				if len(created) != 0 {
					t.Errorf("created before finishing: %v", created)
				}
			}
		})
	}
}

func TestServer_AsyncTimedByStatusDelay(t *testing.T) {
	clock := newClock()
	srv, c := start(t, ping.Options{StatusDelay: time.Minute, Now: clock.Now})
	tx := c.sendAsync("case-1", referralFields("case-1", "3f2a91c0-0000-4000-8000-000000000001"))
	var got []string
	for range 4 {
		got = append(got, c.checkStatus(tx)["Data"].([]any)[0].(map[string]any)["Status"].(string))
		clock.Add(30 * time.Second)
	}
	want := []string{ping.StateQueued, ping.StateQueued, ping.StateProcessing, ping.StateProcessing}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("states every 30s (-want +got):\n%s", diff)
	}
	clock.Add(30 * time.Second)
	if st := srv.Transactions()[tx]; st != ping.StateSucceeded {
		t.Errorf("after two delays: %s", st)
	}
}

func TestServer_AsyncDuplicatesAndOrder(t *testing.T) {
	srv, c := start(t, ping.Options{})
	f := referralFields("case-1", "3f2a91c0-0000-4000-8000-000000000001")
	tx1 := c.sendAsync("case-1", f)
	tx2 := c.sendAsync("case-1", f) // a client retry after a lost reply
	srv.Advance()
	srv.Advance()
	st := srv.Transactions()
	if st[tx1] != ping.StateSucceeded || st[tx2] != ping.StateSucceeded {
		t.Fatalf("states %v", st)
	}
	if d := srv.Counters().Duplicates.Load(); d != 1 {
		t.Errorf("Duplicates %d, want 1 (proGres does not dedupe; the client must)", d)
	}
	if w := srv.Counters().Writes()["SHP-2731 create"]; w != 2 {
		t.Errorf("creates %d, want 2", w)
	}
	nums := []any{}
	for _, r := range srv.Decisions() {
		nums = append(nums, r["progres_interoperabilityreferralnumber"])
	}
	if diff := cmp.Diff([]any{"REF-IOP-FKE-000000001", "REF-IOP-FKE-000000002"}, nums); diff != "" {
		t.Errorf("created in send order (-want +got):\n%s", diff)
	}
}

func TestServer_CheckStatus(t *testing.T) {
	t.Run("unknown transaction", func(t *testing.T) {
		_, c := start(t, ping.Options{})
		resp := c.checkStatus("0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f")
		if resp["Data"] != nil || resp["ErrorMessage"] != "Transaction not found" {
			t.Errorf("answer %v", resp)
		}
	})
	t.Run("transaction of another shipping process", func(t *testing.T) {
		_, c := start(t, ping.Options{})
		tx := c.sendAsync("case-1", referralFields("case-1", "s"))
		st, resp := c.post(ping.CheckStatusPath, map[string]any{"ShippingProcessId": ping.SHPTransferStatus,
			"InteropID": ping.DefaultInteropID, "PartnerId": ping.DefaultPartnerID, "SPHTransactionId": tx})
		if st != http.StatusBadRequest {
			t.Errorf("status %d, %v", st, resp)
		}
	})
	t.Run("no transaction id", func(t *testing.T) {
		_, c := start(t, ping.Options{})
		st, resp := c.post(ping.CheckStatusPath, map[string]any{"ShippingProcessId": ping.SHPCreateReferral,
			"InteropID": ping.DefaultInteropID, "PartnerId": ping.DefaultPartnerID})
		if st != http.StatusBadRequest || resp["ErrorMessage"] != "SPHTransactionId is required" {
			t.Errorf("status %d, %v", st, resp)
		}
	})

	encodings := []struct {
		name string
		opts ping.Options
		// parse turns the answer's Data into items the way the observed
		// client must: array, JSON string, or string with broken inner JSON.
		parse func(t *testing.T, data any) []map[string]any
	}{
		{"array with string item Data", ping.Options{}, func(t *testing.T, data any) []map[string]any {
			return itemsOf(t, data.([]any))
		}},
		{"Data as a string", ping.Options{StatusDataAsString: true}, func(t *testing.T, data any) []map[string]any {
			var items []any
			if err := json.Unmarshal([]byte(data.(string)), &items); err != nil {
				t.Fatalf("Data string is not a JSON array: %v", err)
			}
			return itemsOf(t, items)
		}},
		{"inner JSON unescaped", ping.Options{StatusInnerJSONUnescaped: true}, func(t *testing.T, data any) []map[string]any {
			s := data.(string)
			var items []any
			if strings.Contains(s, `"Data":"{`) && json.Unmarshal([]byte(s), &items) == nil {
				t.Fatalf("the broken encoding parsed as JSON: %s", s)
			}
			// The repair the observed job carries: escape quotes inside "Data":"{...}",
			if err := json.Unmarshal([]byte(repairInner(s)), &items); err != nil {
				t.Fatalf("repaired Data still not JSON: %v\n%s", err, s)
			}
			return itemsOf(t, items)
		}},
	}
	for _, tc := range encodings {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := start(t, tc.opts)
			tx := c.sendAsync("case-1", referralFields("case-1", "3f2a91c0-0000-4000-8000-000000000001"))
			queued := tc.parse(t, c.checkStatus(tx)["Data"])
			if queued[0]["Status"] != ping.StateQueued || queued[0]["Data"] != nil {
				t.Errorf("queued item %v", queued[0])
			}
			srv.Advance()
			srv.Advance()
			done := tc.parse(t, c.checkStatus(tx)["Data"])
			if done[0]["Status"] != ping.StateSucceeded {
				t.Fatalf("item %v", done[0])
			}
			var stored map[string]any
			if err := json.Unmarshal([]byte(done[0]["Data"].(string)), &stored); err != nil {
				t.Fatalf("item Data: %v", err)
			}
			if stored["progres_offlineid"] != "case-1" || stored["progres_interoperabilityreferralid"] == nil {
				t.Errorf("stored fields %v", stored)
			}
		})
	}
}

func itemsOf(t *testing.T, xs []any) []map[string]any {
	t.Helper()
	out := make([]map[string]any, len(xs))
	for i, x := range xs {
		out[i] = x.(map[string]any)
	}
	return out
}

// repairInner re-does the observed job's repair: inside every
// "Data":"{...}", that is followed by a comma, escape the quotes.
func repairInner(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, `"Data":"{`)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.Index(s[i:], `}",`)
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		inner := s[i+len(`"Data":"{`) : i+j]
		b.WriteString(s[:i])
		b.WriteString(`"Data":"{` + strings.ReplaceAll(inner, `"`, `\"`) + `}",`)
		s = s[i+j+3:]
	}
}
