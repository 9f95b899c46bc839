package specs_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"casesync/engine"
	"casesync/internal/fakes/faults"
	"casesync/internal/sandbox"
)

// A Primero case as the Cambodia form holds it, with services and their
// referral transitions; tests change what they need.
func khCase(n int, services []any, referrals []any) map[string]any {
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
	return map[string]any{
		"id": id, "case_id": fmt.Sprintf("c0000000-0000-4000-8000-%012d", n), "case_id_display": fmt.Sprintf("%07d", n),
		"name_first": "Sokha", "name_last": "Chan", "sex": "female", "date_of_birth": "2014-03-02", "risk_level": "high",
		"location_current": "1070101", "owned_by": "mgrpnh", "consent_for_services": true, "disclosure_other_orgs": true,
		"module_id": "primeromodule-cp", "status": "open", "services_section": services, "referrals": referrals,
		"created_at": "2025-01-02T03:04:05.000Z", "last_updated_at": "2025-01-03T03:04:05.000Z",
	}
}

func khService(uid, subtype, responseType, agency string) map[string]any {
	s := map[string]any{"unique_id": uid, "service_type": strings.SplitN(subtype, "_", 2)[0],
		"service_response_type": responseType, "service_implementing_agency": agency}
	if subtype != "" {
		s["service_subtype"] = []any{subtype}
	}
	return s
}

func khReferral(id, serviceUID, to, notes, created string) map[string]any {
	return map[string]any{"id": id, "type": "Referral", "status": "in_progress", "transitioned_to": to + "-user",
		"transitioned_to_agency": to, "transitioned_by": "mgrpnh", "service_record_id": serviceUID, "notes": notes,
		"created_at": created}
}

func uid(n int) string { return fmt.Sprintf("5e000000-0000-4000-8000-%012d", n) }

// sent dry-runs flow 1 (a) and returns the organization objects by item key.
func sent(t *testing.T, d *deployment) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, dec := range d.dryRun("f1_referrals_to_oscar", engine.SyncOptions{}) {
		if dec.Request != nil {
			out[dec.RecordKey] = normal(t, dec.Request.Body).(map[string]any)["organization"].(map[string]any)
		}
	}
	return out
}

func outcomeOf(t *testing.T, outs []engine.Outcome, key string) engine.Outcome {
	t.Helper()
	for _, o := range outs {
		if o.RecordKey == key {
			return o
		}
	}
	t.Fatalf("no outcome for %s in %d outcomes", key, len(outs))
	return engine.Outcome{}
}

// A case without consent is skipped with the reason no_consent, and
// nothing of it reaches OSCaR (index 6 of every 20 seeded cases).
func TestCambodia_NoConsentSkipped(t *testing.T) {
	d := start(t, khDir, sandbox.Options{Cases: 20, Seed: 1})
	res := d.sync("f1_referrals_to_oscar")
	outs := d.outcomes(res)
	var without []map[string]any
	for _, c := range d.sb.Primero.Cases() {
		if c["consent_for_services"] == false {
			without = append(without, c)
		}
	}
	if len(without) == 0 {
		t.Fatal("the seed has no case without consent")
	}
	for _, c := range without {
		if o := outcomeOf(t, outs, c["id"].(string)); o.Action != engine.ActionSkipped || o.Reason != "no_consent" {
			t.Errorf("case without consent: %s %s", o.Action, o.Reason)
		}
		for _, r := range d.sb.Oscar.Referrals() {
			if r["external_id"] == c["case_id"] {
				t.Errorf("case without consent reached OSCaR: %v", r)
			}
		}
	}
	if res.Reasons["no_consent"] != len(without) || res.Counts.Created == 0 {
		t.Errorf("reasons %v, created %d", res.Reasons, res.Counts.Created)
	}
}

// A referred client whose province has no owner fails alone, with a reason
// naming the table; the other clients are written and the run succeeds.
// Defect 2: Stung Treng (19) has its owner, and 22 is Oddar Meanchey
// (TestCambodia_CheckFlagsProvinceDuplicate: check catches the old table).
func TestCambodiaDefect02_ProvinceOwner(t *testing.T) {
	d := start(t, khDir, sandbox.Options{Clients: 6, Seed: 1})
	res := d.sync("f2_clients_to_primero")
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	byProvince := map[string]map[string]any{}
	for _, c := range d.sb.Oscar.Clients() {
		if c["referred_external"] == true {
			byProvince[c["location_current_village_code"].(string)[:2]] = c
		}
	}
	miss := byProvince["99"]
	var failed []engine.Outcome
	for _, o := range d.outcomes(res) {
		if o.Action == engine.ActionFailed {
			failed = append(failed, o)
		}
	}
	if len(failed) != 1 || failed[0].Reason != "lookup_miss_province_owner" || !strings.Contains(failed[0].Error, "lookup province_owner: no entry") ||
		!strings.HasSuffix(failed[0].RecordKey, miss["global_id"].(string)) {
		t.Errorf("failures: %+v", failed)
	}
	if res.Counts.Created < 4 {
		t.Errorf("the run did not go on: %+v", res.Counts)
	}
	for province, owner := range map[string]string{"19": "mgrstg", "22": "mgromc"} {
		c := primeroByOscarNumber(t, d, byProvince[province]["global_id"].(string))
		if c["owned_by"] != owner {
			t.Errorf("province %s: owned_by %v, want %s", province, c["owned_by"], owner)
		}
	}
}

func primeroByOscarNumber(t *testing.T, d *deployment, gid string) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, c := range d.sb.Primero.Cases() {
		if c["oscar_number"] == gid {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d Primero cases with oscar_number %s", len(found), gid)
	}
	return found[0]
}

// Defect 1: flow 0 sent nothing. Accepted referrals' OSCaR ids reach their
// Primero cases by flow 0 alone, and a second run finds nothing to do.
func TestCambodiaDefect01_Flow0WritesOscarIds(t *testing.T) {
	d := start(t, khDir, sandbox.Options{Cases: 20, Seed: 1})
	d.sync("f1_referrals_to_oscar")
	accepted := d.acceptAll()
	res := d.sync("f0_oscar_ids_to_primero")
	// A case referred to two NGOs has a client (and a global_id) in each:
	// the one in the NGO it referred to first fills the ids, the other is
	// reported, not written over.
	conflicts := res.Reasons["oscar_number_conflict"]
	if res.Counts.Updated != len(accepted) || res.Counts.Failed != 0 || res.Counts.Skipped != conflicts {
		t.Fatalf("flow 0: %+v %v for %d accepted referrals", res.Counts, res.Reasons, len(accepted))
	}
	for _, caseID := range accepted {
		c, _ := d.sb.Primero.CaseByCaseID(caseID)
		oc := oscarClientKept(d, c)
		if c["oscar_number"] != oc["global_id"] || c["oscar_short_id"] != oc["slug"] {
			t.Errorf("case %s: %v/%v, OSCaR %v/%v", caseID, c["oscar_number"], c["oscar_short_id"], oc["global_id"], oc["slug"])
		}
	}
	before := d.fakeWrites()
	res = d.sync("f0_oscar_ids_to_primero")
	if res.Counts.Updated != 0 || d.fakeWrites()["primero"] != before["primero"] || res.Reasons["already_linked"] != len(accepted) ||
		res.Reasons["oscar_number_conflict"] != conflicts {
		t.Errorf("second run: %+v %v", res.Counts, res.Reasons)
	}
}

// Defect 3: organization_name was the constant "cif" (then the owner's
// agency). It is derived per service from that service's implementing
// agency by the agency-{org} rule, and organization_id is the same org,
// not Primero's owned_by_agency_id.
// Defect 4: an in_progress referral of a service that is not a referral to
// OSCaR (here one to a Primero user) is never sent.
// Defect 13: each upsert carries the notes of its own referral, and the
// case worker id is the owner's user name.
// Defect 12: date_of_referral is the referral's date, not the case's last
// update; a v1-style date of birth 2014/03/02 is sent as 2014-03-02.
func TestCambodiaDefect03_04_12_13_PerServiceOrgReasonAndDates(t *testing.T) {
	c1 := khCase(1, []any{
		khService(uid(1), "counselling_trauma", "referral_to_oscar", "agency-fco"),
		khService(uid(2), "family_based_care_kinship", "referral_to_oscar", "agency-mtp"),
		khService(uid(3), "counselling_family", "care_plan", "agency-unicef"),
	}, []any{
		khReferral("7e000000-0000-4000-8000-000000000001", uid(1), "agency-fco", "Needs trauma counselling", "2025-01-02T08:00:00.000Z"),
		khReferral("7e000000-0000-4000-8000-000000000002", uid(2), "agency-mtp", "Needs a kinship placement", "2024-12-30T08:00:00.000Z"),
		khReferral("7e000000-0000-4000-8000-000000000003", uid(3), "primero_cp", "Internal referral", "2025-01-02T09:00:00.000Z"),
	})
	c1["owned_by_agency_id"] = "agency-unicef"
	c1["date_of_birth"] = "2014/03/02"
	d := start(t, khDir, sandbox.Options{CasesFrom: []map[string]any{c1}})
	got := sent(t, d)
	if len(got) != 2 {
		t.Fatalf("want 2 upserts (the care_plan referral is not OSCaR's), got %d: %v", len(got), got)
	}
	want := map[string][4]string{
		c1["id"].(string) + "#7e000000-0000-4000-8000-000000000001": {"fco", "Needs trauma counselling", "2025-01-02", "Trauma counselling"},
		c1["id"].(string) + "#7e000000-0000-4000-8000-000000000002": {"mtp", "Needs a kinship placement", "2024-12-30", "Kinship care"},
	}
	for key, w := range want {
		o := got[key]
		if o == nil {
			t.Errorf("no upsert for %s", key)
			continue
		}
		if o["organization_name"] != w[0] || o["organization_id"] != w[0] || o["reason_for_referral"] != w[1] || o["date_of_referral"] != w[2] {
			t.Errorf("%s: org %v/%v reason %v date %v, want %v", key, o["organization_name"], o["organization_id"], o["reason_for_referral"], o["date_of_referral"], w)
		}
		if svcs := o["services"].([]any); len(svcs) != 1 || svcs[0].(map[string]any)["name"] != w[3] {
			t.Errorf("%s: services %v", key, svcs)
		}
		if o["external_case_worker_id"] != "mgrpnh" || o["date_of_birth"] != "2014-03-02" || o["level_of_risk"] != "high" ||
			o["location_current_village_code"] != "01070101" {
			t.Errorf("%s: %v", key, o)
		}
	}
}

// Defect 3, the prefix: an implementing agency that is not agency-<org>
// is not stripped blindly; such a service is not an OSCaR referral.
func TestCambodiaDefect03_AgencyPrefixChecked(t *testing.T) {
	c := khCase(2, []any{khService(uid(4), "counselling_trauma", "referral_to_oscar", "agencyfco")},
		[]any{khReferral("7e000000-0000-4000-8000-000000000004", uid(4), "agencyfco", "x", "2025-01-02T08:00:00.000Z")})
	d := start(t, khDir, sandbox.Options{CasesFrom: []map[string]any{c}})
	decs := d.dryRun("f1_referrals_to_oscar", engine.SyncOptions{})
	if len(decs) != 1 || decs[0].Action != engine.ActionSkipped || decs[0].Reason != "not_referred_to_oscar" {
		t.Errorf("decisions: %+v", decs)
	}
}

// Defect 4 on seeded data: the UNHCR cases' in_progress referrals to a
// Primero user never reach OSCaR.
func TestCambodiaDefect04_OnlyReferralsToOscar(t *testing.T) {
	d := start(t, khDir, sandbox.Options{Cases: 40, Seed: 2})
	d.sync("f1_referrals_to_oscar")
	unhcr := map[string]bool{}
	for _, c := range d.sb.Primero.Cases() {
		if c["unhcr_individual_no"] != nil {
			unhcr[c["case_id"].(string)] = true
		}
	}
	if len(unhcr) == 0 {
		t.Fatal("no UNHCR case seeded")
	}
	n := 0
	for _, r := range d.sb.Oscar.Referrals() {
		if r["referred_from"] == "MoSVY" {
			n++
			if unhcr[r["external_id"].(string)] {
				t.Errorf("UNHCR case sent to OSCaR: %v", r["external_id"])
			}
		}
	}
	if n == 0 {
		t.Error("nothing was sent")
	}
}

// Defect 5, flow 1: only decided referral_from_oscar services with an OSCaR
// referral id are sent, one item per request, and a decision OSCaR holds
// already is not sent again.
func TestCambodiaDefect05_DecisionsFiltered(t *testing.T) {
	d := start(t, khDir, sandbox.Options{Clients: 6, Seed: 1})
	d.sync("f2_clients_to_primero")
	d.sync("f2_pending_referrals")
	client0 := d.sb.Oscar.Clients()[0] // referred, Stung Treng
	c := primeroByOscarNumber(t, d, client0["global_id"].(string))
	var decided map[string]any
	pending := 0
	for _, s := range c["services_section"].([]any) {
		s := s.(map[string]any)
		if s["service_response_type"] == "referral_from_oscar" {
			if s["referral_status_edf41f2"] != "pending_310366" {
				t.Fatalf("row not pending: %v", s)
			}
			if decided == nil {
				decided = s
			} else {
				pending++
			}
		}
	}
	if decided == nil {
		t.Fatal("no referral_from_oscar row")
	}
	d.sb.Primero.Touch(c["id"].(string), map[string]any{"services_section": []any{
		map[string]any{"unique_id": decided["unique_id"], "referral_status_edf41f2": "accepted_340953"}}})
	res := d.sync("f1_decisions_to_oscar")
	if res.Counts.Created != 1 || d.sb.Oscar.Counters().Writes()["referral.status"] != 1 {
		t.Fatalf("decisions: %+v %v, OSCaR %v", res.Counts, res.Reasons, d.sb.Oscar.Counters().Writes())
	}
	rid := decided["oscar_referral_id_a4ac8a5"]
	for _, r := range d.sb.Oscar.Referrals() {
		if fmt.Sprint(r["id"]) == rid && r["global_id"] == client0["global_id"] && r["referral_status"] != "Accepted" {
			t.Errorf("OSCaR referral %v is %v", rid, r["referral_status"])
		}
	}
	d.clock.Advance(time.Second)
	d.sb.Primero.Touch(c["id"].(string), map[string]any{"mosvy_number": "7654321"})
	res = d.sync("f1_decisions_to_oscar")
	if res.Counts.Created+res.Counts.Updated != 0 || d.sb.Oscar.Counters().Writes()["referral.status"] != 1 {
		t.Errorf("a decision OSCaR holds was sent again: %+v %v", res.Counts, res.Reasons)
	}
}

// Defect 5, flow 2: every linked client was treated as a decision, so its
// other changes reached Primero only with one. An NGO exiting an accepted
// client reaches the Primero case with no decision involved.
func TestCambodiaDefect05_LinkedClientUpdates(t *testing.T) {
	d := start(t, khDir, sandbox.Options{Cases: 20, Seed: 1})
	d.sync("f1_referrals_to_oscar")
	accepted := d.acceptAll()
	d.pass()
	oc := oscarClientByExternalID(d, accepted[0])
	if err := d.sb.Oscar.Exit(oc["global_id"].(string)); err != nil {
		t.Fatal(err)
	}
	res := d.sync("f2_linked_to_primero")
	if res.Counts.Updated != 1 {
		t.Errorf("linked: %+v %v", res.Counts, res.Reasons)
	}
	if c, _ := d.sb.Primero.CaseByCaseID(accepted[0]); c["oscar_status"] != "Exited" {
		t.Errorf("oscar_status %v", c["oscar_status"])
	}
	if res := d.sync("f2_decisions_to_primero"); res.Counts.Updated != 0 {
		t.Errorf("decisions: %+v", res.Counts)
	}
}

// Defect 6: each flow keeps its own cursor in the state (flow 0 is not
// stuck at 2022-12-19, flow 2 does not borrow flow 1's), and a referral
// whose send failed is retried on the next run although the cursor moved
// past it.
func TestCambodiaDefect06_CursorsAndRetry(t *testing.T) {
	d := start(t, khDir, sandbox.Options{Cases: 20, Clients: 6, Seed: 1})
	begin := time.Now().UTC()
	d.sync("f0_oscar_ids_to_primero") // signs in to OSCaR
	d.sync("f2_clients_to_primero")
	for _, name := range []string{"f0_oscar_ids_to_primero", "f2_clients_to_primero"} {
		v, ok, err := d.store.Cursor(ctx(t), name)
		at, perr := time.Parse(time.RFC3339Nano, v)
		if err != nil || !ok || perr != nil || at.Before(begin.Add(-time.Second)) {
			t.Errorf("%s cursor %q %v %v", name, v, ok, err)
		}
	}
	// A manual run can re-read from any date (--since), no hand-edited
	// cursor: the incremental preview sees nothing new, the override sees
	// the clients changed since then.
	if n := len(d.dryRun("f2_clients_to_primero", engine.SyncOptions{})); n != 0 {
		t.Errorf("incremental preview read %d clients", n)
	}
	if n := len(d.dryRun("f2_clients_to_primero", engine.SyncOptions{Since: "2024-05-31 00:00:00"})); n < 5 {
		t.Errorf("--since preview read %d clients", n)
	}
	// OSCaR down for maintenance (503: nothing ran). A 500 would be a
	// different story: OSCaR can save before answering 500, and pending
	// referrals cannot be searched, so such sends are reported as
	// write_unconfirmed instead of being repeated (see TestCambodia500).
	d.sb.Oscar.Faults().Set(faults.Config{Rate500: 1, Status500: 503})
	res := d.sync("f1_referrals_to_oscar")
	failed := res.Counts.Failed
	if failed == 0 || res.Counts.Created != 0 || res.Err != nil {
		t.Fatalf("with OSCaR down: %+v %v", res.Counts, res.Err)
	}
	if v, ok, _ := d.store.Cursor(ctx(t), "f1_referrals_to_oscar"); !ok || v < "2025" {
		t.Fatalf("flow 1 cursor %q did not move past the seeded cases", v)
	}
	d.sb.Oscar.Faults().Set(faults.Config{})
	d.clock.Advance(10 * time.Minute)
	res = d.sync("f1_referrals_to_oscar")
	// OSCaR down fails a case before any of its items (flow 1 first reads
	// which NGO has a client for it), so the retry sends at least as many
	// referrals as there were failures, each once.
	if res.Counts.Failed != 0 || res.Counts.Created < failed || int(d.sb.Oscar.Counters().Writes()["referral.create"]) != res.Counts.Created {
		t.Errorf("retry: %+v %v, OSCaR %v; want every one of %d failed cases' referrals created", res.Counts, res.Reasons, d.sb.Oscar.Counters().Writes(), failed)
	}
}

// Defect 7: the job read risk_level, which OSCaR never sends, so every
// referred client got no_action. level_of_risk is read ("no action" →
// no_action).
func TestCambodiaDefect07_LevelOfRisk(t *testing.T) {
	d := start(t, khDir, sandbox.Options{Clients: 40, Seed: 3})
	d.sync("f2_clients_to_primero")
	want := map[string]string{"high": "high", "medium": "medium", "low": "low", "no action": "no_action"}
	seen := map[string]bool{}
	for _, oc := range d.sb.Oscar.Clients() {
		risk, _ := oc["level_of_risk"].(string)
		if oc["referred_external"] != true || oc["visible"] != true || oc["external_id"] != "" || risk == "" {
			continue
		}
		var c map[string]any
		for _, pc := range d.sb.Primero.Cases() {
			if pc["oscar_number"] == oc["global_id"] {
				c = pc
			}
		}
		if c == nil {
			continue // e.g. a province without owner
		}
		if c["risk_level"] != want[risk] {
			t.Errorf("client %v: level_of_risk %q → risk_level %v", oc["global_id"], risk, c["risk_level"])
		}
		seen[want[risk]] = true
	}
	if len(seen) < 2 || !seen["no_action"] {
		t.Errorf("risk levels seen: %v", seen)
	}
}

// Defects 8 and 16: consent and owner are set when the case is created and
// never again, so a Primero user's answer and reassignment survive updates
// from OSCaR.
func TestCambodiaDefect08_16_CreateOnlyFields(t *testing.T) {
	d := start(t, khDir, sandbox.Options{Clients: 6, Seed: 1})
	d.sync("f2_clients_to_primero")
	gid := d.sb.Oscar.Clients()[0]["global_id"].(string)
	c := primeroByOscarNumber(t, d, gid)
	if c["consent_for_services"] != true || c["owned_by"] != "mgrstg" {
		t.Fatalf("created: consent %v owner %v", c["consent_for_services"], c["owned_by"])
	}
	d.sb.Primero.Touch(c["id"].(string), map[string]any{"consent_for_services": false, "owned_by": "mgrpnh", "name_first": "Edited"})
	d.sb.Oscar.Touch(gid, map[string]any{"mosvy_number": "1234567"})
	res := d.sync("f2_clients_to_primero")
	if res.Counts.Updated != 1 {
		t.Fatalf("update: %+v %v", res.Counts, res.Reasons)
	}
	c = primeroByOscarNumber(t, d, gid)
	if c["mosvy_number"] != "1234567" || c["consent_for_services"] != false || c["owned_by"] != "mgrpnh" || c["name_first"] != "Edited" {
		t.Errorf("after update: mosvy %v consent %v owner %v name %v", c["mosvy_number"], c["consent_for_services"], c["owned_by"], c["name_first"])
	}
}

// Defect 9: the service match. A decision matches the row with the same
// OSCaR id (compared only when both have one), else an undecided referral
// row with its subtype; the first row without an OSCaR id is not taken,
// and a row without a subtype does not crash anything.
func TestCambodiaDefect09_ServiceMatch(t *testing.T) {
	c := khCase(3, []any{
		khService(uid(10), "", "referral_to_oscar", "agency-cif"),
		khService(uid(11), "counselling_trauma", "referral_to_oscar", "agency-cif"),
	}, []any{khReferral("7e000000-0000-4000-8000-000000000011", uid(11), "agency-cif", "Trauma", "2025-01-02T08:00:00.000Z")})
	d := start(t, khDir, sandbox.Options{CasesFrom: []map[string]any{c}})
	d.sync("f1_referrals_to_oscar")
	d.acceptAll()
	_, writes := d.pass()
	if writes["primero"] == 0 {
		t.Fatal("nothing came back")
	}
	got, _ := d.sb.Primero.CaseByCaseID(c["case_id"].(string))
	for _, s := range got["services_section"].([]any) {
		s := s.(map[string]any)
		switch s["unique_id"] {
		case uid(10):
			if s["referral_status_edf41f2"] != nil || s["oscar_referral_id_a4ac8a5"] != nil {
				t.Errorf("the row without id or subtype was matched: %v", s)
			}
		case uid(11):
			if s["referral_status_edf41f2"] != "accepted_340953" || s["oscar_referral_id_a4ac8a5"] == nil {
				t.Errorf("the trauma row was not matched: %v", s)
			}
		}
	}
	if refs := d.sb.Primero.Referrals(c["id"].(string)); len(refs) != 1 || refs[0]["status"] != "accepted" {
		t.Errorf("referrals: %v", refs)
	}
}

// Defect 10: OSCaR's service uuid names the catalogue entry, so two
// referrals of one service on one child, or two children in one service,
// shared a Primero row id. Rows get ids derived from the client, the
// referral or programme and the service: distinct, stable, lower-case
// UUIDs, never the catalogue uuid.
func TestCambodiaDefect10_ServiceRowIDs(t *testing.T) {
	const catalogue = "37cd9808-c417-4a19-9563-36ac7865e2f8"
	svc := func(extra map[string]any) map[string]any {
		m := map[string]any{"uuid": catalogue, "name": "Trauma counselling", "enrollment_date": nil}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	client := func(gid string, services ...any) map[string]any {
		return map[string]any{"slug": "abcd-1", "global_id": gid, "external_id": "", "given_name": "Dara", "family_name": "Sok",
			"gender": "male", "date_of_birth": "2012-06-25", "location_current_village_code": "12010101", "organization_id": 46,
			"organization_name": "cif", "reason_for_referral": "r", "status": "Active", "level_of_risk": "low", "services": services}
	}
	recs := []any{
		client("01AAAAAAAAAAAAAAAAAAAAAAAA",
			svc(map[string]any{"program_name": "Care", "enrollment_date": "2020-01-01"}),
			svc(map[string]any{"referral_id": 1001, "referral_status": "Referred"}),
			svc(map[string]any{"referral_id": 1002, "referral_status": "Referred"})),
		client("01BBBBBBBBBBBBBBBBBBBBBBBB", svc(map[string]any{"program_name": "Care", "enrollment_date": "2020-01-01"})),
	}
	d := start(t, khDir, sandbox.Options{})
	ids := map[string]bool{}
	for round := 0; round < 2; round++ {
		for _, dec := range d.dryRun("f2_clients_to_primero", engine.SyncOptions{Records: recs}) {
			rows, _ := dec.Payload.(map[string]any)["services_section"].([]any)
			for _, r := range rows {
				id := r.(map[string]any)["unique_id"].(string)
				if id == catalogue || strings.ToLower(id) != id || len(id) != 36 {
					t.Errorf("row id %q", id)
				}
				ids[id] = true
			}
		}
	}
	if len(ids) != 4 {
		t.Errorf("want 4 distinct ids, stable across runs; got %v", ids)
	}
}

// Defect 11: the pending step read 20 cases and stamped every service
// without a status. Every case is read, and only referral_from_oscar rows
// without a status become pending_310366.
func TestCambodiaDefect11_PendingStep(t *testing.T) {
	var cases []map[string]any
	for i := 0; i < 30; i++ {
		rfo := khService(uid(100+4*i), "counselling_trauma", "referral_from_oscar", "agency-cif")
		done := khService(uid(101+4*i), "counselling_family", "referral_from_oscar", "agency-cif")
		done["referral_status_edf41f2"] = "accepted_340953"
		cases = append(cases, khCase(100+i, []any{rfo, done,
			khService(uid(102+4*i), "family_support_family_support", "service_being_provided_by_oscar_partner_47618", "agency-cif"),
			khService(uid(103+4*i), "counselling_generalist", "referral_to_oscar", "agency-cif")}, nil))
	}
	d := start(t, khDir, sandbox.Options{CasesFrom: cases})
	res := d.sync("f2_pending_referrals")
	if res.Counts.Updated != 30 {
		t.Fatalf("pending: %+v %v", res.Counts, res.Reasons)
	}
	for _, c := range d.sb.Primero.Cases() {
		for i, s := range c["services_section"].([]any) {
			got := s.(map[string]any)["referral_status_edf41f2"]
			want := []any{"pending_310366", "accepted_340953", nil, nil}[i]
			if got != want {
				t.Errorf("case %v row %d: %v, want %v", c["case_id"], i, got, want)
			}
		}
	}
}

// Defect 12, flow 2: a junk date of birth (22012-01-01) is dropped, not
// cut to 2012-01-01, and then no age is guessed; an adult gets an age, not
// 0; a date is read as a date.
func TestCambodiaDefect12_DatesFromOscar(t *testing.T) {
	rec := func(gid, dob string) any {
		return map[string]any{"slug": "x-1", "global_id": gid, "external_id": "", "given_name": "A", "family_name": "B",
			"local_given_name": "", "gender": "Female", "date_of_birth": dob, "location_current_village_code": "",
			"organization_name": "cif", "status": "Active", "services": []any{}}
	}
	d := start(t, khDir, sandbox.Options{})
	decs := d.dryRun("f2_clients_to_primero", engine.SyncOptions{Records: []any{
		rec("01AAAAAAAAAAAAAAAAAAAAAAAA", "22012-01-01"), rec("01BBBBBBBBBBBBBBBBBBBBBBBB", "2000-01-10"),
		rec("01CCCCCCCCCCCCCCCCCCCCCCCC", "1800-06-25")}})
	if len(decs) != 3 {
		t.Fatalf("decisions %v", decs)
	}
	now := time.Now().UTC()
	adult := now.Year() - 2000
	if now.YearDay() < 10 {
		adult--
	}
	for _, dec := range decs {
		p := dec.Payload.(map[string]any)
		switch p["oscar_number"] {
		case "01BBBBBBBBBBBBBBBBBBBBBBBB":
			if p["date_of_birth"] != "2000-01-10" || fmt.Sprint(p["age"]) != fmt.Sprint(adult) || p["sex"] != "female" {
				t.Errorf("adult: %v %v %v", p["date_of_birth"], p["age"], p["sex"])
			}
		default:
			if _, ok := p["date_of_birth"]; ok {
				t.Errorf("junk date of birth kept: %v", p["date_of_birth"])
			}
			if _, ok := p["age"]; ok {
				t.Errorf("age guessed: %v", p["age"])
			}
		}
		if p["owned_by"] != "agency-cif-user" {
			t.Errorf("shared client owner %v", p["owned_by"])
		}
	}
}

// Defect 14: the job asked for per=10000 (capped at 1000, no paging) and
// repeated the listing and the referral calls three times. The listing is
// paged (500 a page, within the cap), and referrals are fetched once per
// case that may need them, by one pipeline only.
func TestCambodiaDefect14_PagingAndReferralCalls(t *testing.T) {
	d := start(t, khDir, sandbox.Options{Cases: 1001, Seed: 4})
	res := d.sync("f1_decisions_to_oscar")
	if res.Counts.Read != 1001 {
		t.Errorf("read %d of 1001", res.Counts.Read)
	}
	pages := 0
	for _, r := range d.sb.Primero.Requests() {
		if r.Method == "GET" && r.Path == "/api/v2/cases" && strings.Contains(r.Query, "last_updated_at") {
			pages++
			if !strings.Contains(r.Query, "per=500") {
				t.Errorf("listing %s", r.Query)
			}
		}
	}
	if pages != 3 {
		t.Errorf("%d listing pages, want 3 for 1001 cases", pages)
	}

	d = start(t, khDir, sandbox.Options{Cases: 60, Seed: 4})
	d.sync("f1_decisions_to_oscar")
	d.sync("f1_links_to_oscar")
	res = d.sync("f1_referrals_to_oscar")
	candidates := 0
	for _, c := range d.sb.Primero.Cases() {
		rows, _ := c["services_section"].([]any)
		if c["consent_for_services"] != true || c["disclosure_other_orgs"] != true {
			continue
		}
		for _, s := range rows {
			if s := s.(map[string]any); s["service_response_type"] == "referral_to_oscar" {
				candidates++
				break
			}
		}
	}
	calls := map[string]int{}
	for _, r := range d.sb.Primero.Requests() {
		if strings.HasSuffix(r.Path, "/referrals") {
			calls[r.Path]++
		}
	}
	if len(calls) != candidates || candidates == 0 {
		t.Errorf("referrals fetched for %d cases, %d candidates", len(calls), candidates)
	}
	for p, n := range calls {
		if n != 1 {
			t.Errorf("%s fetched %d times", p, n)
		}
	}
	if res.Counts.Created == 0 {
		t.Errorf("nothing sent: %+v", res.Counts)
	}
}

// Defect 15: one bad OSCaR upsert failed the job, and flow 2 did not run
// that hour. The bad record fails alone, the run succeeds (so the
// pipelines chained after it run), and flow 2 moves clients.
func TestCambodiaDefect15_NoCascade(t *testing.T) {
	bad := khCase(5, []any{khService(uid(50), "counselling_trauma", "referral_to_oscar", "agency-cif")},
		[]any{khReferral("7e000000-0000-4000-8000-000000000050", uid(50), "agency-cif", "x", "2025-01-02T08:00:00.000Z")})
	delete(bad, "risk_level") // OSCaR refuses a referral without a level of risk
	good := khCase(6, []any{khService(uid(60), "counselling_trauma", "referral_to_oscar", "agency-fco")},
		[]any{khReferral("7e000000-0000-4000-8000-000000000060", uid(60), "agency-fco", "x", "2025-01-02T08:00:00.000Z")})
	d := start(t, khDir, sandbox.Options{CasesFrom: []map[string]any{bad, good}, Clients: 6, Seed: 1})
	res, err := d.runner.Sync(ctx(t), "f1_referrals_to_oscar", engine.SyncOptions{})
	if err != nil || res.Counts.Failed != 1 || res.Counts.Created != 1 || res.Reasons["http_422"] != 1 {
		t.Fatalf("flow 1: %+v %v %v", res.Counts, res.Reasons, err)
	}
	if slices.Index(d.plan.Pipelines["f2_clients_to_primero"].Spec.Trigger.After, "f1_referrals_to_oscar") < 0 {
		t.Fatal("flow 2 is not chained after flow 1")
	}
	if res := d.sync("f2_clients_to_primero"); res.Counts.Created == 0 {
		t.Errorf("flow 2: %+v", res.Counts)
	}
}

// A 500 from OSCaR on a referral may have been saved (oscar.md §4), and a
// pending referral cannot be searched: the send is reported for a person
// to check (write_unconfirmed) and never repeated, so no duplicate.
func TestCambodia500IsNotResent(t *testing.T) {
	d := start(t, khDir, sandbox.Options{Cases: 20, Clients: 6, Seed: 1})
	d.sync("f0_oscar_ids_to_primero") // signs in to OSCaR while it answers
	// The upserts fail; the listing flow 1 reads first still answers.
	d.sb.Oscar.Faults().Set(faults.Config{Rate500: 1, Methods: []string{http.MethodPost}})
	res := d.sync("f1_referrals_to_oscar")
	// The items after a failed one of the same case wait for it: they are
	// not sent, so they cannot arrive before it.
	failed := res.Reasons["http_500"]
	if failed == 0 || res.Counts.Failed != failed+res.Reasons["waits_for_item"] {
		t.Fatalf("with OSCaR answering 500: %+v %v", res.Counts, res.Reasons)
	}
	d.sb.Oscar.Faults().Set(faults.Config{})
	d.clock.Advance(10 * time.Minute)
	res = d.sync("f1_referrals_to_oscar")
	if res.Reasons["write_unconfirmed"] != failed {
		t.Errorf("retry: %+v %v, want %d write_unconfirmed", res.Counts, res.Reasons, failed)
	}
	if w := d.sb.Oscar.Counters().Writes()["referral.create"]; w != 0 {
		t.Errorf("unconfirmed referrals were sent again: %d creates", w)
	}
}

// A source with neither source.get nor a per-record cursor field (OSCaR
// clients, cursor next: run_start): a record that failed is read again on
// a later run, because the retry winds the listing back to the cursor the
// failing run read from.
func TestCambodiaRetryWithoutGet(t *testing.T) {
	d := start(t, khDir, sandbox.Options{Cases: 20, Clients: 12, Seed: 1})
	d.sync("f0_oscar_ids_to_primero") // log in to both while they answer
	d.sb.Primero.Faults().Set(faults.Config{Rate500: 1, Status500: 503})
	res := d.sync("f2_clients_to_primero")
	failed := res.Counts.Failed
	if failed == 0 {
		t.Fatalf("with Primero down: %+v %v", res.Counts, res.Reasons)
	}
	d.sb.Primero.Faults().Set(faults.Config{})
	d.clock.Advance(2 * time.Hour)
	res = d.sync("f2_clients_to_primero")
	if res.Counts.Read < failed || res.Counts.Created == 0 {
		t.Errorf("retry: %+v %v; want the %d failed clients read again and written", res.Counts, res.Reasons, failed)
	}
	fails, err := d.store.Failures(ctx(t), "f2_clients_to_primero")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fails {
		// The seed has a client in an unknown province: that one stays.
		if f.Reason != "lookup_miss_province_owner" {
			t.Errorf("still queued after the retry: %s %s", f.RecordKey, f.Reason)
		}
	}
}
