package e2e

// End-to-end tests of specs/unhcr (issue 10: proGres ⇄ Primero through
// PING): each flow against the sandbox's fakes with the real loader, REST
// pool, SQLite state and runner; failures retried and never duplicated,
// counted at the fakes; the asynchronous ingestion done, failed and timed
// out; dry-run bodies against the PING fixtures; value-table misses.
//
//	go test -race -run Unhcr ./internal/e2e/

import (
	"casesync/internal/testenv"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"casesync/engine"
	"casesync/engine/mapping"
	"casesync/engine/spec"
	"casesync/internal/fakes/ping"
)

// 1.1: interventions pending in proGres become Primero cases or a service
// on the individual's case, each acknowledged with its own id; the bad
// ones fail alone, stay queued, and are retried without duplicates.
func TestUnhcr_ReferralsFromProgres(t *testing.T) {
	e := unhcrOpen(t, unhcrOptions{Cases: 40, Interventions: 12})
	sb, pg := e.sb, e.ping
	seeded := map[string]bool{}
	for _, r := range pg.Pending() {
		seeded[r["progres_lpinterventionid"].(string)] = true
	}
	progresID := func(lpid string) string {
		in, ok := pg.Intervention(lpid)
		if !ok {
			t.Fatalf("no intervention %s", lpid)
		}
		return in["progres_individual.individuals.progres_id"].(string)
	}
	number := func(lpid string) string {
		in, _ := pg.Intervention(lpid)
		return in["progres_interventionnumber"].(string)
	}
	// Seeded UNHCR cases without services (index 18 and 19 modulo 20) stand
	// for individuals Primero already knows.
	var plain []map[string]any
	for _, c := range sb.Primero.Cases() {
		if _, ok := c["unhcr_individual_no"]; ok && len(unhcrServices(c)) == 0 && c["status"] == "open" && c["record_state"] != false {
			plain = append(plain, c)
		}
	}
	sort.Slice(plain, func(i, j int) bool { return plain[i]["id"].(string) < plain[j]["id"].(string) })
	if len(plain) < 4 {
		t.Fatalf("seed has %d UNHCR cases without services, want 4", len(plain))
	}
	// a: an existing case found by UNHCR number: the service is appended.
	lpA := pg.AddIntervention(ping.NewIntervention{InterventionType: "BID"})
	sb.Primero.Touch(plain[0]["id"].(string), map[string]any{"unhcr_individual_no": progresID(lpA)})
	// b: the case already has this intervention's service (written by the
	// old job, with its own row id): nothing is added, it is acknowledged.
	lpB := pg.AddIntervention(ping.NewIntervention{InterventionType: "BIA"})
	oldRow := "6c1a9f2e-0b7d-4c1e-9a55-3f0e2d1c4b5a"
	sb.Primero.Touch(plain[1]["id"].(string), map[string]any{"unhcr_individual_no": progresID(lpB),
		"services_section": []any{map[string]any{"unique_id": oldRow, "service_type": "focuses_non_specialized_mhpss_care",
			"progres_interventionnumber": number(lpB) + ",old-job-id,old-job-bu", "unhcr_referral_status": "accepted"}}})
	// c: a service whose number only starts with this one's is another
	// intervention (the job's startsWith bug): the service is appended.
	lpC := pg.AddIntervention(ping.NewIntervention{InterventionType: "Alternative Care"})
	sb.Primero.Touch(plain[2]["id"].(string), map[string]any{"unhcr_individual_no": progresID(lpC),
		"services_section": []any{map[string]any{"unique_id": "7d2b0a3f-1c8e-4d2f-8b66-4a1f3e2d5c6b", "service_type": "food",
			"progres_interventionnumber": number(lpC) + "0,x,y"}}})
	// d: proGres holds the Primero case_id of a case whose UNHCR number is
	// another: that case gets the service; no second case is created.
	lpD := pg.AddIntervention(ping.NewIntervention{InterventionType: "BID"})
	caseD := plain[3]
	e.setPrimeroID(t, lpD, caseD["case_id"].(string))
	// f: a date of birth in a future year, which Primero refuses with a 422.
	lpF := pg.AddIntervention(ping.NewIntervention{InterventionType: "BID", DateOfBirth: "2099-01-01"})

	res := e.sync(t, unhcr11)
	// Seeded 1 (type off the allow-list), 2 (no date of birth) and f fail.
	if res.Counts.Failed != 3 || res.Reasons["lookup_miss_progres_service_type"] != 1 || res.Reasons["map_error"] != 1 || res.Reasons["http_422"] != 1 {
		t.Errorf("first run: counts %+v reasons %v, want 3 failures: one allow-list miss, one missing field, one 422", res.Counts, res.Reasons)
	}
	if res.Counts.Created+res.Counts.Updated != len(seeded)+5-3 {
		t.Errorf("first run: %+v, want %d written", res.Counts, len(seeded)+5-3)
	}
	if res.Misses["progres_service_type"] != 1 || res.Misses["progres_language"] < 1 {
		t.Errorf("misses %v, want the allow-list miss and Tigrinya counted", res.Misses)
	}
	var left []string
	for _, r := range pg.Pending() {
		left = append(left, r["progres_lpinterventionid"].(string))
	}
	if len(left) != 3 || !slices.Contains(left, lpF) {
		t.Errorf("still pending in proGres: %v, want the 3 failed interventions (f = %s)", left, lpF)
	}

	// Every acknowledgement names its intervention, never "id55".
	acks := e.rec.bodies(unhcrSync, ping.SHPTransferStatus)
	if len(acks) != len(seeded)+5-3 {
		t.Errorf("%d acknowledgements, want %d", len(acks), len(seeded)+5-3)
	}
	for _, b := range acks {
		it := b["Data"].([]any)[0].(map[string]any)
		f := unhcrFields(it)
		if it["ExternalId"] != f["progres_lpinterventionid"] || f["progres_primerotransferstatus"] != "125080002" ||
			f["progres_primerotransferstatusdate"] != e.clock.Now().Format("2006-01-02") {
			t.Errorf("acknowledgement %s", unhcrJSON(b))
		}
	}

	// The fixture's body, except ExternalId: the intervention's id where
	// the job sent the placeholder "id55" (deployments.md §2.7 defect 1).
	ackA := unhcrFill(unhcrFixture(t, "ping_ingestion_request_examples.json", "flow_1_1_mark_intervention_pending_after_primero_write"), map[string]any{
		"id55": lpA, "<progres_lpinterventionid>": lpA, "<progres_businessunit>": ping.DefaultBusinessUnitID,
		"<YYYY-MM-DD today>": e.clock.Now().Format("2006-01-02"),
	})
	found := false
	for _, b := range acks {
		found = found || unhcrSameJSON(b, ackA)
	}
	if !found {
		t.Errorf("no acknowledgement of %s like the fixture:\n%s", lpA, unhcrJSON(ackA))
	}

	// One case per individual; the touched ones got their service.
	byNo := e.casesByUNHCRNo()
	for no, cs := range byNo {
		if len(cs) > 1 {
			t.Errorf("%d cases hold unhcr_individual_no %s", len(cs), no)
		}
	}
	rows := func(c map[string]any) []map[string]any {
		got, _ := sb.Primero.Case(c["id"].(string))
		return unhcrServices(got)
	}
	if r := rows(plain[0]); len(r) != 1 || r[0]["unique_id"] != lpA || r[0]["unhcr_referral_status"] != "pending" {
		t.Errorf("case a: services %s, want the appended service of %s", unhcrJSON(r), lpA)
	}
	if r := rows(plain[1]); len(r) != 1 || r[0]["unique_id"] != oldRow || r[0]["unhcr_referral_status"] != "accepted" {
		t.Errorf("case b: services %s, want the old row untouched", unhcrJSON(r))
	}
	if r := rows(plain[2]); len(r) != 2 {
		t.Errorf("case c: services %s, want the prefix-sharing row and a new one", unhcrJSON(r))
	}
	if r := rows(caseD); len(r) != 1 || r[0]["unique_id"] != lpD {
		t.Errorf("case d (found by case_id): services %s, want the service of %s", unhcrJSON(r), lpD)
	}
	if n := len(byNo[progresID(lpD)]); n != 0 {
		t.Errorf("%d cases created for d's UNHCR number, want none: its case was found by case_id", n)
	}
	if pg2, _ := pg.Intervention(lpB); pg2["progres_primerotransferstatus"] != 125080002 {
		t.Errorf("b not acknowledged: %v", pg2["progres_primerotransferstatus"])
	}

	// The joined detail rows became one case with distinct lists.
	var first string
	for id := range seeded {
		if in, _ := pg.Intervention(id); strings.HasSuffix(in["progres_interventionnumber"].(string), "1000001") {
			first = id
		}
	}
	c0 := byNo[progresID(first)]
	if len(c0) != 1 {
		t.Fatalf("intervention 0: %d cases", len(c0))
	}
	if langs, _ := c0[0]["language"].([]any); len(langs) == 0 || len(langs) > 2 {
		t.Errorf("intervention 0 (2 languages × 2 needs): language %v", c0[0]["language"])
	}
	svc := unhcrServices(c0[0])[0]
	in0, _ := pg.Intervention(first)
	if svc["progres_interventionnumber"] != in0["progres_interventionnumber"].(string)+","+first+","+ping.DefaultBusinessUnitID ||
		strings.Count(unhcrStr(svc["service_referral_notes"]), "specific needs:") != 1 || strings.Contains(unhcrStr(svc["service_referral_notes"]), "<") {
		t.Errorf("intervention 0 service: %s", unhcrJSON(svc))
	}

	// Next run: the three failures are read again and fail again; nothing
	// is written, the 422 is retried and makes no case.
	before, posts := e.writes(), sb.Primero.Counters().Requests()["POST /api/v2/cases"]
	e.later()
	res = e.sync(t, unhcr11)
	if res.Counts.Read != 3 || res.Counts.Failed != 3 {
		t.Errorf("second run: %+v %v, want the 3 failures read and failed again", res.Counts, res.Reasons)
	}
	if after := e.writes(); !unhcrSameJSON(before, after) {
		t.Errorf("second run wrote: before %v after %v", before, after)
	}
	if got := sb.Primero.Counters().Requests()["POST /api/v2/cases"]; got != posts+1 {
		t.Errorf("the refused create was sent %d more times, want 1", got-posts)
	}
	if n := len(e.casesByUNHCRNo()[progresID(lpF)]); n != 0 || e.duplicates() != 0 {
		t.Errorf("f: %d cases, %d duplicates at the fakes", n, e.duplicates())
	}
}

// unhcrCaseOf returns the Primero case holding an intervention's service.
func unhcrCaseOf(tb testing.TB, e *unhcrEnv, lpid string) map[string]any {
	tb.Helper()
	for _, c := range e.sb.Primero.Cases() {
		for _, s := range unhcrServices(c) {
			if s["unique_id"] == lpid {
				return c
			}
		}
	}
	tb.Fatalf("no Primero case has the service of intervention %s", lpid)
	return nil
}

// 1.2: a decision taken in Primero reaches proGres once, with the status
// code of the table, and is confirmed by PING; a decision PING refuses
// fails and is retried; an unchanged decision is never sent again.
func TestUnhcr_DecisionsToProgres(t *testing.T) {
	e := unhcrOpen(t, unhcrOptions{Cases: 40, Interventions: 6})
	sb, pg := e.sb, e.ping
	var lps []string
	for _, r := range pg.Pending() {
		lps = append(lps, r["progres_lpinterventionid"].(string))
	}
	e.sync(t, unhcr11)
	// Interventions 0 and 3 were written (1 and 2 fail in 1.1).
	accepted, rejected := unhcrCaseOf(t, e, lps[0]), unhcrCaseOf(t, e, lps[3])
	sb.Primero.Touch(accepted["id"].(string), map[string]any{"services_section": []any{
		map[string]any{"unique_id": lps[0], "unhcr_referral_status": "accepted"}}})
	sb.Primero.Touch(rejected["id"].(string), map[string]any{"services_section": []any{
		map[string]any{"unique_id": lps[3], "unhcr_referral_status": "rejected", "unhcr_referral_rejection_reason": "No capacity"}}})
	// The seeded decisions on referrals from another proGres (their
	// intervention ids are not in this PING) are refused item by item.
	refused := 0
	for _, c := range sb.Primero.Cases() {
		for _, s := range unhcrServices(c) {
			st := s["unhcr_referral_status"]
			if s["service_request_agency"] == "UNHCR" && (st == "accepted" || st == "rejected") && s["unique_id"] != lps[0] && s["unique_id"] != lps[3] {
				refused++
			}
		}
	}

	if refused == 0 {
		t.Fatal("the seed has no decided referral from another proGres; the retry case is not exercised")
	}
	res := e.sync(t, unhcr12)
	if res.Counts.Created != 2 || res.Counts.Failed != refused || res.Reasons["not_ok"] != refused {
		t.Errorf("first run: %+v %v, want 2 sent and %d refused by PING", res.Counts, res.Reasons, refused)
	}
	// Each refusal is queued with PING's own reason, read by the spec's
	// refusal program, so an operator sees why without the payload.
	queued, err := e.store.Failures(t.Context(), unhcr12)
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != refused {
		t.Errorf("%d queued, want %d", len(queued), refused)
	}
	for _, q := range queued {
		if !strings.Contains(q.LastError, "the answer reports a failure: No progres_lpintervention record with id '") {
			t.Errorf("%s: last error %q does not give PING's reason", q.RecordKey, q.LastError)
		}
	}
	day := e.clock.Now().Format("2006-01-02")
	for _, tc := range []struct {
		lp, code, comment string
		c                 map[string]any
	}{
		{lps[0], "125080003", "Referral acknowledged by PRIMERO", accepted},
		{lps[3], "125080004", "Referral rejected by PRIMERO: No capacity", rejected},
	} {
		in, _ := pg.Intervention(tc.lp)
		notes, _ := in["notes"].([]string)
		if st := in["progres_primerotransferstatus"]; st != mustAtoi(tc.code) || in["progres_primeroid"] != tc.c["case_id"] ||
			in["progres_primerocaseworker"] != tc.c["owned_by"] || !slices.Equal(notes, []string{tc.comment}) {
			t.Errorf("intervention %s in proGres: %v", tc.lp, in)
		}
	}
	// The body is the fixture's, placeholders filled.
	var sent map[string]any
	for _, b := range e.rec.bodies(unhcrSync, ping.SHPTransferStatus) {
		if it := b["Data"].([]any)[0].(map[string]any); it["ExternalId"] == accepted["case_id"] {
			sent = b
		}
	}
	want := unhcrFill(unhcrFixture(t, "ping_ingestion_request_examples.json", "flow_1_2_send_primero_decision"), map[string]any{
		"<primero case_id>": accepted["case_id"],
		"Referral <acknowledged|rejected> by PRIMERO[: <closure_reason>]": "Referral acknowledged by PRIMERO",
		"<2nd part of progres_interventionnumber>":                        lps[0],
		"<3rd part of progres_interventionnumber>":                        ping.DefaultBusinessUnitID,
		"<125080003 acknowledged | 125080004 rejected | 125080001 other>": "125080003",
		"<YYYY-MM-DD today>": day,
		"<primero owned_by>": accepted["owned_by"],
	})
	if !unhcrSameJSON(sent, want) {
		t.Errorf("decision body:\n%s\nwant (fixture):\n%s", unhcrJSON(sent), unhcrJSON(want))
	}

	// The case changes again, its decision does not: nothing is re-sent
	// and no attachment is added twice. The refused ones are retried.
	sb.Primero.Touch(accepted["id"].(string), map[string]any{"name_nickname": "Renamed"})
	n := e.rec.count(unhcrSync, ping.SHPTransferStatus)
	e.later()
	res = e.sync(t, unhcr12)
	if res.Counts.Created != 0 || res.Counts.Failed != refused {
		t.Errorf("second run: %+v %v, want nothing sent and the %d refused retried", res.Counts, res.Reasons, refused)
	}
	if got := e.rec.count(unhcrSync, ping.SHPTransferStatus); got != n+refused {
		t.Errorf("second run sent %d decisions, want only the %d retries", got-n, refused)
	}
	// A changed decision is a new decision, sent once.
	sb.Primero.Touch(rejected["id"].(string), map[string]any{"services_section": []any{
		map[string]any{"unique_id": lps[3], "unhcr_referral_status": "accepted"}}})
	res = e.sync(t, unhcr12)
	if res.Counts.Created != 1 {
		t.Errorf("changed decision: %+v %v, want it sent", res.Counts, res.Reasons)
	}
	if in, _ := pg.Intervention(lps[3]); in["progres_primerotransferstatus"] != 125080003 {
		t.Errorf("changed decision in proGres: %v", in["progres_primerotransferstatus"])
	}
	if d := pg.Counters().Duplicates.Load(); d != 0 {
		t.Errorf("%d duplicate attachments or referrals at PING", d)
	}
}

func mustAtoi(s string) int {
	var n int
	for _, r := range s {
		n = n*10 + int(r-'0')
	}
	return n
}

// unhcrReferralsAt counts the proGres interoperability referrals per
// (Primero case_id, service unique_id), as "case_id#service".
func unhcrReferralsAt(pg *ping.Server) map[string]int {
	out := map[string]int{}
	for _, r := range pg.Decisions() {
		out[unhcrStr(r["progres_offlineid"])+"#"+unhcrStr(r["progres_orgreferralid"])]++
	}
	return out
}

// unhcrExpected turns "record id#service" keys into "case_id#service".
func unhcrExpected(e *unhcrEnv, keys []string) []string {
	var out []string
	for _, k := range keys {
		id, svc, _ := strings.Cut(k, "#")
		c, _ := e.sb.Primero.Case(id)
		out = append(out, c["case_id"].(string)+"#"+svc)
	}
	return out
}

// 2.1 pending → done: one asynchronous referral per (case, service)
// referred to UNHCR, polled to Succeeded; a service type with no table
// entry fails its record, counted, and is sent once fixed; nothing twice.
func TestUnhcr_ReferralsToProgres_Done(t *testing.T) {
	e := unhcrOpen(t, unhcrOptions{Cases: 40})
	sb, pg := e.sb, e.ping
	keys := unhcrUNHCRReferred(sb)
	if len(keys) < 4 {
		t.Fatalf("seed has %d services referred to UNHCR", len(keys))
	}
	// One service gets a type the requested-service table lacks.
	missID, missSvc, _ := strings.Cut(keys[0], "#")
	sb.Primero.Touch(missID, map[string]any{"services_section": []any{map[string]any{"unique_id": missSvc, "service_type": "food"}}})

	res := e.sync(t, unhcr21)
	if res.Counts.Created != len(keys)-1 || res.Counts.Failed != 1 || res.Reasons["lookup_miss_requested_service"] != 1 || res.Misses["requested_service"] != 1 {
		t.Errorf("first run: %+v %v misses %v, want %d sent and the table miss failed and counted", res.Counts, res.Reasons, res.Misses, len(keys)-1)
	}
	for id, st := range pg.Transactions() {
		if st != ping.StateSucceeded {
			t.Errorf("transaction %s ended %s", id, st)
		}
	}
	at := unhcrReferralsAt(pg)
	want := unhcrExpected(e, keys)
	for _, k := range want[1:] {
		if at[k] != 1 {
			t.Errorf("referral %s: %d at proGres, want 1", k, at[k])
		}
	}

	// The 24 fields of the fixture, placeholders filled from the case.
	c, _ := sb.Primero.Case(strings.Split(keys[1], "#")[0])
	svcID := strings.Split(keys[1], "#")[1]
	var svc map[string]any
	for _, s := range unhcrServices(c) {
		if s["unique_id"] == svcID {
			svc = s
		}
	}
	var ref map[string]any
	for _, r := range sb.Primero.Referrals(c["id"].(string)) {
		if r["service_record_id"] == svcID {
			ref = r
		}
	}
	var sent map[string]any
	for _, b := range e.rec.bodies(unhcrAsync, ping.SHPCreateReferral) {
		if f := unhcrFields(b["Data"].([]any)[0].(map[string]any)); f["progres_orgreferralid"] == svcID {
			sent = b
		}
	}
	owner := e.primeroUser(t, c["owned_by"].(string))
	sex := map[string]any{"female": "125080000", "male": "125080001", "other_b25f252": "125080002", "unknown_4b34795": "125080003"}[unhcrStr(c["sex"])]
	reason := unhcrStr(svc["service_referral_notes"])
	if langs := unhcrLanguageNames(t, c); langs != "" {
		reason += " (languages: " + langs + ")"
	}
	var other, spneed any
	if v, ok := svc["service_type_other"]; ok {
		other = v
	}
	for _, pc := range c["protection_concerns"].([]any) {
		if g := unhcrTable(t, "primero_protection_concern_to_progres_spneed_category_guid.csv")[pc.(string)]; g != "" && spneed == nil {
			spneed = g
		}
	}
	fill := map[string]any{
		"<primero case_id>": c["case_id"], "<primero record id>": c["id"],
		"<owner position | 'CPIMS+ Administrator'>":                owner["position"],
		"<owner email | admin email | 'notavailable@primero.org'>": owner["email"],
		"<owner phone | admin phone | '0000000000'>":               owner["phone"],
		"<service unique_id>":                                      svcID,
		"<referral created_at date YYYY-MM-DD>":                    ref["created_at"].(string)[:10],
		"<service_type_other | null>":                              other,
		"<GUID from service map | legal-support GUID>":             unhcrTable(t, "primero_service_type_to_progres_requested_service_guid.csv")[svc["service_type"].(string)],
		"<GUID of first mapped protection concern | null>":         spneed,
		"<service_referral_notes | 'Primero referral'>":            reason,
		"<telephone_current as string | null>":                     c["telephone_current"],
		"<address_current>":                                        c["address_current"],
		"<unhcr_id_no>":                                            c["unhcr_id_no"],
		"<date_of_birth YYYY-MM-DD>":                               c["date_of_birth"],
		"<125080000 female | 125080001 male | 'Unknown'>":          sex,
		"<name_last>":                          c["name_last"],
		"<name_middle>":                        c["name_middle"],
		"<name_first>":                         c["name_first"],
		"<unhcr_individual_no ?? unhcr_id_no>": c["unhcr_individual_no"],
	}
	wantBody := unhcrFill(unhcrFixture(t, "ping_ingestion_request_examples.json", "flow_2_1_send_primero_referral_async"), fill)
	if !unhcrSameJSON(sent, wantBody) {
		t.Errorf("async referral body:\n%s\nwant (fixture):\n%s", unhcrJSON(sent), unhcrJSON(wantBody))
	}
	// The status check is the fixture's, with the transaction sent back.
	checks := e.rec.bodies(unhcrStatus, ping.SHPCreateReferral)
	if len(checks) == 0 {
		t.Fatal("no status check sent")
	}
	txn := checks[0]["SPHTransactionId"]
	wantCheck := unhcrFill(unhcrFixture(t, "ping_retrieve_request_examples.json", "check_ingestion_status_flow_2_1"),
		map[string]any{"<SPHTransactionId returned by asyncdata>": txn})
	if _, known := pg.Transactions()[unhcrStr(txn)]; !known || !unhcrSameJSON(checks[0], wantCheck) {
		t.Errorf("status check:\n%s\nwant (fixture):\n%s", unhcrJSON(checks[0]), unhcrJSON(wantCheck))
	}

	// Fixed in Primero, the failed one is sent once; the rest never again.
	sb.Primero.Touch(missID, map[string]any{"services_section": []any{map[string]any{"unique_id": missSvc, "service_type": "medical"}}})
	sends := e.rec.count(unhcrAsync, "")
	e.later()
	res = e.sync(t, unhcr21)
	if res.Counts.Created != 1 || res.Counts.Failed != 0 {
		t.Errorf("after the fix: %+v %v, want the one referral sent", res.Counts, res.Reasons)
	}
	if got := e.rec.count(unhcrAsync, ""); got != sends+1 {
		t.Errorf("after the fix %d referrals were sent, want 1", got-sends)
	}
	at = unhcrReferralsAt(pg)
	for _, k := range want {
		if at[k] != 1 {
			t.Errorf("referral %s: %d at proGres, want exactly 1", k, at[k])
		}
	}
	if e.duplicates() != 0 {
		t.Errorf("%d duplicates at the fakes", e.duplicates())
	}
}

// unhcrTable reads a two-column value table beside the spec (key → value).
func unhcrTable(tb testing.TB, file string) map[string]string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(tb), "specs", "unhcr", file))
	if err != nil {
		tb.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows[1:] {
		out[r[0]] = r[1]
	}
	return out
}

// unhcrLanguageNames is a case's languages as proGres names, sorted and
// distinct, joined with ", ".
func unhcrLanguageNames(tb testing.TB, c map[string]any) string {
	names := unhcrTable(tb, "primero_language_to_progres_language_name.csv")
	var out []string
	for _, l := range c["language"].([]any) {
		if n := names[l.(string)]; n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// 2.1 pending → failed: proGres refuses one referral when its transaction
// finishes; the record fails, keeps no link, and the next run sends it
// again (once) and it succeeds; the others are never sent twice.
func TestUnhcr_ReferralsToProgres_Failed(t *testing.T) {
	var mu sync.Mutex
	refuse := map[string]bool{}
	e := unhcrOpen(t, unhcrOptions{Cases: 40, Ping: &ping.Options{FailIngestion: func(f map[string]string) bool {
		mu.Lock()
		defer mu.Unlock()
		return refuse[f["progres_offlineid"]+"#"+f["progres_orgreferralid"]]
	}}})
	keys := unhcrUNHCRReferred(e.sb)
	want := unhcrExpected(e, keys)
	mu.Lock()
	refuse[want[0]] = true
	mu.Unlock()

	res := e.sync(t, unhcr21)
	if res.Counts.Created != len(keys)-1 || res.Counts.Failed != 1 || res.Reasons["after"] != 1 {
		t.Errorf("first run: %+v %v, want %d done and 1 failed in proGres", res.Counts, res.Reasons, len(keys)-1)
	}
	failed := 0
	for _, st := range e.ping.Transactions() {
		if st == ping.StateFailed {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d failed transactions at PING, want 1", failed)
	}
	fails, err := e.store.Failures(context.Background(), unhcr21)
	if err != nil || len(fails) != 1 || !strings.Contains(fails[0].LastError, "Failed") {
		t.Errorf("retry queue %+v (%v), want the refused referral", fails, err)
	}

	mu.Lock()
	refuse[want[0]] = false
	mu.Unlock()
	sends := e.rec.count(unhcrAsync, "")
	e.later()
	res = e.sync(t, unhcr21)
	if res.Counts.Created != 1 || res.Counts.Failed != 0 {
		t.Errorf("retry: %+v %v, want the refused referral sent again and done", res.Counts, res.Reasons)
	}
	if got := e.rec.count(unhcrAsync, ""); got != sends+1 {
		t.Errorf("retry sent %d referrals, want 1", got-sends)
	}
	at := unhcrReferralsAt(e.ping)
	for _, k := range want {
		if at[k] != 1 {
			t.Errorf("referral %s: %d at proGres, want exactly 1", k, at[k])
		}
	}
	if e.duplicates() != 0 {
		t.Errorf("%d duplicates at the fakes", e.duplicates())
	}
}

// 2.1 never answering: every transaction stays Processing; each record
// fails when its poll times out, and the next run asks PING about the same
// transaction again instead of sending the referral twice.
func TestUnhcr_ReferralsToProgres_Timeout(t *testing.T) {
	e := unhcrOpen(t, unhcrOptions{Cases: 40, Ping: &ping.Options{NeverFinish: true}})
	keys := unhcrUNHCRReferred(e.sb)
	start := e.clock.Now()
	res := e.sync(t, unhcr21)
	if res.Counts.Failed != len(keys) || res.Counts.Created != 0 {
		t.Errorf("first run: %+v %v, want all %d timed out", res.Counts, res.Reasons, len(keys))
	}
	if waited := e.clock.Now().Sub(start); waited < 2*time.Minute {
		t.Errorf("the run waited %s on the test clock, want the 2m poll timeout", waited)
	}
	fails, _ := e.store.Failures(context.Background(), unhcr21)
	for _, f := range fails {
		if !strings.Contains(f.LastError, "timed out") {
			t.Errorf("failure %s: %s", f.RecordKey, f.LastError)
		}
	}
	sends, checks := e.rec.count(unhcrAsync, ""), e.rec.count(unhcrStatus, "")
	txns := len(e.ping.Transactions())
	e.later()
	res = e.sync(t, unhcr21)
	if res.Counts.Failed != len(keys) {
		t.Errorf("second run: %+v %v, want all still pending", res.Counts, res.Reasons)
	}
	if got := e.rec.count(unhcrAsync, ""); got != sends || sends != len(keys) {
		t.Errorf("referrals sent: %d then %d, want %d once each", sends, got, len(keys))
	}
	if e.rec.count(unhcrStatus, "") <= checks || len(e.ping.Transactions()) != txns {
		t.Errorf("the retry did not poll the transactions already sent")
	}
	if n := len(unhcrReferralsAt(e.ping)); n != 0 || e.duplicates() != 0 {
		t.Errorf("%d referrals, %d duplicates at proGres", n, e.duplicates())
	}
}

// 2.2: decisions taken in proGres reach the Primero referral and are then
// marked synced; unknown codes and decisions on unknown cases are skipped
// and counted; a decision Primero does not apply (an illegal move answered
// 200) is never marked synced and is retried.
func TestUnhcr_DecisionsFromProgres(t *testing.T) {
	e := unhcrOpen(t, unhcrOptions{Cases: 40, Decisions: 4})
	sb, pg := e.sb, e.ping
	e.sync(t, unhcr21)
	// The referrals 2.1 created in proGres, with their Primero side.
	type pair struct{ progresID, caseRecordID, primeroRefID string }
	var made []pair
	for _, r := range pg.Decisions() {
		c, ok := sb.Primero.CaseByCaseID(unhcrStr(r["progres_offlineid"]))
		if !ok {
			continue
		}
		for _, ref := range sb.Primero.Referrals(c["id"].(string)) {
			if ref["service_record_id"] == r["progres_orgreferralid"] {
				made = append(made, pair{r["progres_interoperabilityreferralid"].(string), c["id"].(string), ref["id"].(string)})
			}
		}
	}
	if len(made) < 3 {
		t.Fatalf("2.1 made %d referrals in proGres, want 3 or more", len(made))
	}
	acc, rej, bad := made[0], made[1], made[2]
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(pg.Decide(acc.progresID, ping.ReferralAccepted, "", ""))
	must(pg.Decide(rej.progresID, ping.ReferralRejected, "Outside of mandate", "Please resubmit"))
	// bad: already rejected in Primero, accepted in proGres: Primero
	// answers 200 to the illegal move and changes nothing.
	if _, err := sb.Primero.RespondReferral(bad.primeroRefID, "unhcr_focal", "rejected", "no capacity"); err != nil {
		t.Fatal(err)
	}
	must(pg.Decide(bad.progresID, ping.ReferralAccepted, "", ""))

	res := e.sync(t, unhcr22)
	if res.Counts.Updated != 2 || res.Counts.Failed != 1 || res.Reasons["not_ok"] != 1 {
		t.Errorf("first run: %+v %v, want 2 applied and the illegal move failed", res.Counts, res.Reasons)
	}
	// Seeded decisions 0 and 1 name cases Primero does not have; 2 has an
	// unknown status code. All skipped, all counted.
	if res.Reasons["lookup_miss_primero_case"] != 2 || res.Misses["primero_case"] != 2 || res.Reasons["unknown_status_code"] != 1 || res.Misses["referral_status"] != 1 {
		t.Errorf("skips %v misses %v, want 2 unknown cases and 1 unknown code", res.Reasons, res.Misses)
	}
	status := func(p pair) map[string]any {
		for _, r := range sb.Primero.Referrals(p.caseRecordID) {
			if r["id"] == p.primeroRefID {
				return r
			}
		}
		t.Fatalf("referral %s gone", p.primeroRefID)
		return nil
	}
	if r := status(acc); r["status"] != "accepted" {
		t.Errorf("accepted referral in Primero: %v", r["status"])
	}
	if r := status(rej); r["status"] != "rejected" || r["rejected_reason"] != "Outside of mandate — Please resubmit" {
		t.Errorf("rejected referral in Primero: %v %q", r["status"], r["rejected_reason"])
	}
	synced := func(p pair) bool {
		r, _ := pg.Referral(p.progresID)
		return r["progres_interoperabilityreferralstatus"] == ping.ReferralSynced
	}
	if !synced(acc) || !synced(rej) || synced(bad) {
		t.Errorf("synced in proGres: accepted %v, rejected %v, illegal %v; want true, true, false", synced(acc), synced(rej), synced(bad))
	}
	// The bodies are the fixtures' (the comment names casesync, not OpenFn).
	var mark map[string]any
	for _, b := range e.rec.bodies(unhcrSync, ping.SHPMarkSynced) {
		if b["Data"].([]any)[0].(map[string]any)["ExternalId"] == acc.progresID {
			mark = b
		}
	}
	wantMark := unhcrFill(unhcrFixture(t, "ping_ingestion_request_examples.json", "flow_2_2_mark_decision_synced"), map[string]any{
		"<progres_interoperabilityreferralid>":             acc.progresID,
		"Referral decision synced with PRIMERO via OpenFn": "Referral decision synced with PRIMERO via casesync",
	})
	if !unhcrSameJSON(mark, wantMark) {
		t.Errorf("synced mark:\n%s\nwant (fixture):\n%s", unhcrJSON(mark), unhcrJSON(wantMark))
	}
	list := e.rec.bodies(unhcrRetrieve, ping.SHPDecisions)
	if len(list) == 0 || !unhcrSameJSON(list[0], unhcrFixture(t, "ping_retrieve_request_examples.json", "retrieve_decision_list_flow_2_2")) {
		t.Errorf("decision list request: %s", unhcrJSON(list))
	}
	var detail map[string]any
	for _, b := range e.rec.bodies(unhcrRetrieve, ping.SHPDecisionDetail) {
		if b["QueryParameters"].([]any)[0].(map[string]any)["Value"] == acc.progresID {
			detail = b
		}
	}
	wantDetail := unhcrFill(unhcrFixture(t, "ping_retrieve_request_examples.json", "retrieve_decision_detail_flow_2_2"),
		map[string]any{"<progres_interoperabilityreferralid>": acc.progresID})
	if !unhcrSameJSON(detail, wantDetail) {
		t.Errorf("decision detail request:\n%s\nwant (fixture):\n%s", unhcrJSON(detail), unhcrJSON(wantDetail))
	}

	// Next run: the synced ones are done; the illegal move is retried and
	// still not marked synced; nothing else is written.
	marks := e.rec.count(unhcrSync, ping.SHPMarkSynced)
	e.later()
	res = e.sync(t, unhcr22)
	if res.Counts.Updated != 0 || res.Counts.Failed != 1 || synced(bad) {
		t.Errorf("second run: %+v %v, want only the illegal move, failed again", res.Counts, res.Reasons)
	}
	if got := e.rec.count(unhcrSync, ping.SHPMarkSynced); got != marks {
		t.Errorf("second run marked %d more referrals synced", got-marks)
	}
	if e.duplicates() != 0 {
		t.Errorf("%d duplicates at the fakes", e.duplicates())
	}
}

// Dry-run previews all four flows: the writes each would send, with the
// bodies of the fixtures, and nothing written anywhere.
func TestUnhcr_DryRunAllFlows(t *testing.T) {
	e := unhcrOpen(t, unhcrOptions{Cases: 40, Interventions: 6, Decisions: 4})
	sb, pg := e.sb, e.ping
	// 2.2 needs referrals proGres knows and decided: 2.1 runs for real,
	// with one service whose type the table lacks, fixed afterwards, so
	// 2.1 has exactly one referral left to send.
	keys := unhcrUNHCRReferred(sb)
	missID, missSvc, _ := strings.Cut(keys[0], "#")
	sb.Primero.Touch(missID, map[string]any{"services_section": []any{map[string]any{"unique_id": missSvc, "service_type": "food"}}})
	e.sync(t, unhcr21)
	sb.Primero.Touch(missID, map[string]any{"services_section": []any{map[string]any{"unique_id": missSvc, "service_type": "medical"}}})
	var decided string
	for _, r := range pg.Decisions() {
		if _, ok := sb.Primero.CaseByCaseID(unhcrStr(r["progres_offlineid"])); ok {
			decided = r["progres_interoperabilityreferralid"].(string)
			if err := pg.Decide(decided, ping.ReferralRejected, "Duplicate referral", ""); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	before, requests := e.writes(), e.rec.count(unhcrSync, "")+e.rec.count(unhcrAsync, "")

	d11 := e.dryRun(t, unhcr11)
	d12 := e.dryRun(t, unhcr12)
	d21 := e.dryRun(t, unhcr21)
	d22 := e.dryRun(t, unhcr22)

	if after := e.writes(); !unhcrSameJSON(before, after) || e.rec.count(unhcrSync, "")+e.rec.count(unhcrAsync, "") != requests {
		t.Errorf("dry-run wrote: %v → %v", before, after)
	}
	count := func(ds map[string]engine.Decision, a engine.Action) int {
		n := 0
		for _, d := range ds {
			if d.Action == a {
				n++
			}
		}
		return n
	}
	// 1.1: four cases to create; intervention 1's type is a counted miss.
	if count(d11, engine.ActionCreated) != 4 || count(d11, engine.ActionFailed) != 2 {
		t.Errorf("1.1 preview: %d created, %d failed, want 4 and 2", count(d11, engine.ActionCreated), count(d11, engine.ActionFailed))
	}
	misses := 0
	for _, d := range d11 {
		if d.MissLookup == "progres_service_type" && d.MissKey == "Legal Assistance" {
			misses++
		}
		if d.Action == engine.ActionCreated && (d.Request.Method != "POST" || d.Request.Path != "/api/v2/cases") {
			t.Errorf("1.1 preview request %+v", d.Request)
		}
	}
	if misses != 1 {
		t.Errorf("1.1 preview shows %d allow-list misses, want 1", misses)
	}
	pending := e.rec.bodies(unhcrRetrieve, ping.SHPPendingInterventions)
	if len(pending) == 0 || !unhcrSameJSON(pending[0], unhcrFixture(t, "ping_retrieve_request_examples.json", "retrieve_pending_referrals_flow_1_1")) {
		t.Errorf("pending request: %s", unhcrJSON(pending))
	}
	detail := e.rec.bodies(unhcrRetrieve, ping.SHPInterventionDetail)
	id := detail[0]["QueryParameters"].([]any)[0].(map[string]any)["Value"]
	if want := unhcrFill(unhcrFixture(t, "ping_retrieve_request_examples.json", "retrieve_intervention_detail_flow_1_1"),
		map[string]any{"<progres_lpinterventionid>": id}); !unhcrSameJSON(detail[0], want) {
		t.Errorf("detail request:\n%s\nwant (fixture):\n%s", unhcrJSON(detail[0]), unhcrJSON(want))
	}

	// 1.2: the seeded decisions, each a fixture-shaped body.
	n12 := 0
	for _, d := range d12 {
		if d.Action != engine.ActionCreated {
			continue
		}
		n12++
		caseID, _, _ := strings.Cut(d.RecordKey, "#")
		c, _ := sb.Primero.Case(caseID)
		it := d.Request.Body.(map[string]any)["Data"].([]any)[0].(map[string]any)
		f := unhcrFields(it)
		code, comment := "125080003", "Referral acknowledged by PRIMERO"
		if f["progres_primerotransferstatus"] == "125080004" {
			code, comment = "125080004", "Referral rejected by PRIMERO: No capacity in the area"
		}
		want := unhcrFill(unhcrFixture(t, "ping_ingestion_request_examples.json", "flow_1_2_send_primero_decision"), map[string]any{
			"<primero case_id>": c["case_id"], "Referral <acknowledged|rejected> by PRIMERO[: <closure_reason>]": comment,
			"<2nd part of progres_interventionnumber>": f["progres_lpinterventionid"], "<3rd part of progres_interventionnumber>": f["progres_businessunit"],
			"<125080003 acknowledged | 125080004 rejected | 125080001 other>": code,
			"<YYYY-MM-DD today>": e.clock.Now().Format("2006-01-02"), "<primero owned_by>": c["owned_by"],
		})
		if !unhcrSameJSON(d.Request.Body, want) || d.Request.Path != unhcrSync {
			t.Errorf("1.2 preview %s %s:\n%s\nwant (fixture):\n%s", d.Request.Method, d.Request.Path, unhcrJSON(d.Request.Body), unhcrJSON(want))
		}
	}
	if n12 == 0 {
		t.Error("1.2 preview has no decision to send")
	}

	// 2.1: the one new service, an async body with the fixture's 24 fields.
	if count(d21, engine.ActionCreated) != 1 {
		t.Errorf("2.1 preview: %d to send, want 1", count(d21, engine.ActionCreated))
	}
	fixture21 := unhcrFixture(t, "ping_ingestion_request_examples.json", "flow_2_1_send_primero_referral_async")
	var names []string
	for _, f := range fixture21["Data"].([]any)[0].(map[string]any)["Fields"].([]any) {
		names = append(names, f.(map[string]any)["Name"].(string))
	}
	for _, d := range d21 {
		if d.Action != engine.ActionCreated {
			continue
		}
		b := d.Request.Body.(map[string]any)
		var got []string
		for _, f := range b["Data"].([]any)[0].(map[string]any)["Fields"].([]any) {
			got = append(got, f.(map[string]any)["Name"].(string))
		}
		if d.Request.Path != unhcrAsync || b["ShippingProcessId"] != "SHP-2731" || b["InteropID"] != "INT-1436" || b["APIVersion"] != "V2" || !slices.Equal(got, names) {
			t.Errorf("2.1 preview %s:\n%s", d.Request.Path, unhcrJSON(b))
		}
	}

	// 2.2: the decided referral, a PATCH of its Primero referral.
	d, ok := d22[decided]
	if !ok || d.Action != engine.ActionUpdated || d.Request.Method != "PATCH" ||
		!unhcrSameJSON(d.Request.Body, map[string]any{"data": map[string]any{"status": "rejected", "rejected_reason": "Duplicate referral — No comment given in proGres"}}) {
		t.Errorf("2.2 preview of %s: %+v", decided, d)
	}
}

// Every value table beside the spec is loaded and checked when the spec
// is: a duplicated key or an empty value in any of them is a problem that
// names the file, before anything runs.
func TestUnhcr_ValueTablesCheckedAtLoad(t *testing.T) {
	dir := unhcrSpecs(t, nil)
	plan, err := spec.Load(dir, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, l := range plan.Spec.Lookups {
		if l.File != "" {
			used[l.File] = true
		}
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.csv"))
	if len(tables) != len(used) {
		t.Errorf("%d tables beside the spec, %d used by lookups", len(tables), len(used))
	}
	for _, path := range tables {
		file := filepath.Base(path)
		orig, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSpace(string(orig)), "\n")
		for _, tc := range []struct{ code, extra string }{
			{"lookup-duplicate-key", lines[1]},
			{"lookup-empty-value", strings.SplitN(lines[1], ",", 2)[0] + "-x,"},
		} {
			if err := os.WriteFile(path, []byte(string(orig)+tc.extra+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := spec.Load(dir, spec.Options{})
			var ps spec.Problems
			found := false
			if errors.As(err, &ps) {
				for _, p := range ps {
					found = found || p.Code == tc.code && strings.HasSuffix(p.File, file)
				}
			}
			if !found {
				t.Errorf("%s with a bad row (%s): %v, want a %s problem", file, tc.code, err, tc.code)
			}
		}
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The fan-out of 1.1 groups joined rows by intervention number and keeps
// each language and (category, subcategory) pair once: the DTP-era
// Kakuma rows (9 rows, 6 interventions, one with a repeated need).
func TestUnhcr_GroupsJoinedRows(t *testing.T) {
	plan, err := spec.Load(unhcrSpecs(t, nil), spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("testdata", "ping", "dtp_intervention_rows_kakuma.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []any
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatal(err)
	}
	rec := map[string]any{"progres_lpinterventionid": "00000000-0000-4000-8000-000000000000", "progres_businessunit": ping.DefaultBusinessUnitID, "detail": rows}
	items, err := plan.Pipelines[unhcr11].Each.JQ.All(context.Background(), rec, &mapping.Vars{Vars: plan.Vars})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]any{}
	for _, it := range items {
		m := it.(map[string]any)
		got[m["intervention_number"].(string)] = m
	}
	if len(got) != 6 {
		t.Fatalf("%d interventions from 9 rows, want 6: %v", len(got), unhcrJSON(items))
	}
	dad := got["DAD-21-PRTITV-0000001"]
	wantNeeds := []any{
		map[string]any{"category": "Single parent", "subcategory": "Single HR - parent"},
		map[string]any{"category": "Child at risk", "subcategory": "Child carer"},
		map[string]any{"category": "Disability", "subcategory": "Mental disability - moderate"},
	}
	if !unhcrSameJSON(dad["specific_needs"], wantNeeds) || dad["lpinterventionid"] != "1b92e6dd-bc67-eb11-80f8-00155d3407bf" {
		t.Errorf("DAD-21-PRTITV-0000001: %s", unhcrJSON(dad))
	}
	if nai := got["NAI-20-PRTITV-0000006"]; !unhcrSameJSON(nai["languages"], []any{"Amal"}) || len(nai["locations"].([]any)) != 4 {
		t.Errorf("NAI-20-PRTITV-0000006: %s", unhcrJSON(nai))
	}
}

// PING's paging cookie: a queue longer than a page is read whole, each
// next page asked with the same body plus PagingCookie and PageNumber.
func TestUnhcr_PagingCookie(t *testing.T) {
	e := unhcrOpen(t, unhcrOptions{Interventions: 60})
	res := e.sync(t, unhcr11)
	if res.Counts.Read != 60 {
		t.Errorf("read %d interventions, want 60 over two pages", res.Counts.Read)
	}
	pages := e.rec.bodies(unhcrRetrieve, ping.SHPPendingInterventions)
	if len(pages) != 2 {
		t.Fatalf("%d SHP-2747 requests, want 2", len(pages))
	}
	second := map[string]any{}
	for k, v := range pages[1] {
		second[k] = v
	}
	cookie, _ := second["PagingCookie"].(string)
	delete(second, "PagingCookie")
	if cookie == "" || second["PageNumber"] != float64(2) {
		t.Errorf("second page request %s", unhcrJSON(pages[1]))
	}
	delete(second, "PageNumber")
	if !unhcrSameJSON(second, pages[0]) {
		t.Errorf("second page body differs beyond the cookie: %s vs %s", unhcrJSON(pages[1]), unhcrJSON(pages[0]))
	}
}
