package specs_test

import (
	"fmt"
	"strings"
	"testing"

	"casesync/engine"
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
// Defect 2: Stung Treng (19) has its owner, and 22 is Oddar Meanchey.
func TestCambodia_ProvinceOwner(t *testing.T) {
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
	// the first fills the ids, the second is reported, not written over.
	conflicts := res.Reasons["oscar_number_conflict"]
	if res.Counts.Updated != len(accepted) || res.Counts.Failed != 0 || res.Counts.Skipped != conflicts {
		t.Fatalf("flow 0: %+v %v for %d accepted referrals", res.Counts, res.Reasons, len(accepted))
	}
	for _, caseID := range accepted {
		c, _ := d.sb.Primero.CaseByCaseID(caseID)
		oc := oscarClientByExternalID(d, caseID)
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
