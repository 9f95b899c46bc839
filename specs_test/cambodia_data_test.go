package specs_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"casesync/engine"
	"casesync/internal/sandbox"
)

// referredClient is an OSCaR client in the referred shape (it carries
// organization_id), with the location and NGO address codes given as is:
// string, number or absent (nil).
func referredClient(n int, location, address, orgAddress any) map[string]any {
	c := map[string]any{"slug": fmt.Sprintf("abcd-%d", n), "global_id": fmt.Sprintf("01AAAAAAAAAAAAAAAAAAAA%04d", n),
		"external_id": "", "given_name": "Dara", "family_name": "Sok", "gender": "male", "date_of_birth": "2012-06-25",
		"organization_id": 46, "organization_name": "cif", "reason_for_referral": "r", "status": "Active",
		"level_of_risk": "low", "services": []any{}}
	if location != nil {
		c["location_current_village_code"] = location
	}
	if address != nil {
		c["address_current_village_code"] = address
	}
	if orgAddress != nil {
		c["organization_address_code"] = orgAddress
	}
	return c
}

// Issue 19.1: the province owner of a referred client, for every form in
// which OSCaR sends a location code. A code that lost its leading zero is
// the province of its padded form (1030504 is 01, not 10); a code that
// is no code, or no code at all, fails the record with a reason of its
// own; a province without owner fails with the table's. location_current
// is the code as Primero stores it (no leading zero).
func TestCambodia_ProvinceOwnerEveryCodeFormat(t *testing.T) {
	num := func(s string) json.Number { return json.Number(s) }
	cases := []struct {
		name                  string
		location, address     any
		orgAddress            any
		owner, reason, stored string
	}{
		{"village 8 digits", "05060504", nil, nil, "mgrksp", "", "5060504"},
		{"commune 6 digits", "050605", nil, nil, "mgrksp", "", "50605"},
		{"district 4 digits", "0506", nil, nil, "mgrksp", "", "506"},
		{"province 2 digits", "05", nil, nil, "mgrksp", "", "5"},
		{"village, leading zero lost", "1030504", nil, nil, "mgrbmc", "", "1030504"},
		{"commune, leading zero lost", "10305", nil, nil, "mgrbmc", "", "10305"},
		{"district, leading zero lost", "103", nil, nil, "mgrbmc", "", "103"},
		{"province, leading zero lost", "1", nil, nil, "mgrbmc", "", "1"},
		{"two-digit province 12", "12010101", nil, nil, "mgrpnh", "", "12010101"},
		{"00-prefixed: digits 3-4", "00190101", nil, nil, "mgrstg", "", "190101"},
		{"number, village, zero lost", num("1030504"), nil, nil, "mgrbmc", "", "1030504"},
		{"number, village", num("12010101"), nil, nil, "mgrpnh", "", "12010101"},
		{"number, province", num("5"), nil, nil, "mgrksp", "", "5"},
		{"blanks around the code", " 20010203 ", nil, nil, "mgrsvg", "", "20010203"},
		{"only the address code", "", "22010101", nil, "mgromc", "", "22010101"},
		{"location no code, address a code", "NaN", "19010101", nil, "mgrstg", "", "19010101"},
		{"no location: the NGO's address", "", "", "120611", "mgrpnh", "", ""},
		{"no location: the NGO's address lost its zero", nil, nil, num("10611"), "mgrbmc", "", ""},
		{"NaN", "NaN", nil, "120611", "", "location_code_invalid", ""},
		{"9 digits", "123456789", nil, nil, "", "location_code_invalid", ""},
		{"letters", "12ab0101", nil, nil, "", "location_code_invalid", ""},
		{"fractional number", num("10.5"), nil, nil, "", "location_code_invalid", ""},
		{"00 alone", "00", nil, nil, "", "location_code_invalid", ""},
		{"no code anywhere", "", nil, "", "", "no_location_code", ""},
		{"unknown province", "99010101", nil, nil, "", "lookup_miss_province_owner", ""},
	}
	var recs []any
	for i, c := range cases {
		recs = append(recs, referredClient(i, c.location, c.address, c.orgAddress))
	}
	d := start(t, khDir, sandbox.Options{})
	decs := d.dryRun("f2_clients_to_primero", engine.SyncOptions{Records: recs})
	if len(decs) != len(cases) {
		t.Fatalf("%d decisions for %d clients", len(decs), len(cases))
	}
	byKey := map[string]engine.Decision{}
	for _, dec := range decs {
		byKey[dec.RecordKey] = dec
	}
	for i, c := range cases {
		dec, ok := byKey[fmt.Sprintf("cif/01AAAAAAAAAAAAAAAAAAAA%04d", i)]
		if !ok {
			t.Errorf("%s: no decision", c.name)
			continue
		}
		if c.reason != "" {
			if dec.Action != engine.ActionFailed || dec.Reason != c.reason {
				t.Errorf("%s: %s %s (%s), want failed %s", c.name, dec.Action, dec.Reason, dec.Error, c.reason)
			}
			continue
		}
		p, _ := dec.Payload.(map[string]any)
		if dec.Action != engine.ActionCreated || p["owned_by"] != c.owner {
			t.Errorf("%s: %s %s owner %v, want %s", c.name, dec.Action, dec.Reason, p["owned_by"], c.owner)
		}
		if got, _ := p["location_current"].(string); got != c.stored {
			t.Errorf("%s: location_current %q, want %q", c.name, got, c.stored)
		}
	}
}

// Issue 19.8: Primero's location_current goes to OSCaR padded to its
// NCDD width; a value that is no code ("NaN") is sent as no code, never
// as "0NaN".
func TestCambodia_LocationToOscar(t *testing.T) {
	cases := map[string]string{"NaN": "", "1070101": "01070101", "12010101": "12010101", "": "", "120611": "120611", "5": "05"}
	var all []map[string]any
	i := 0
	want := map[string]string{}
	for loc, code := range cases {
		i++
		c := khCase(700+i, []any{khService(uid(700+i), "counselling_trauma", "referral_to_oscar", "agency-cif")},
			[]any{khReferral(fmt.Sprintf("7e000000-0000-4000-8000-%012d", 700+i), uid(700+i), "agency-cif", "x", "2025-01-02T08:00:00.000Z")})
		c["location_current"] = loc
		all = append(all, c)
		want[c["case_id"].(string)] = code
	}
	d := start(t, khDir, sandbox.Options{CasesFrom: all})
	got := sent(t, d)
	if len(got) != len(cases) {
		t.Fatalf("%d upserts for %d cases", len(got), len(cases))
	}
	for _, o := range got {
		w := want[o["external_id"].(string)]
		if o["location_current_village_code"] != w || o["address_current_village_code"] != w {
			t.Errorf("case %v: codes %q/%q, want %q", o["external_id"], o["location_current_village_code"], o["address_current_village_code"], w)
		}
	}
}

// rowsWithOscarReferral returns the case's services_section rows that carry
// OSCaR referral id rid.
func rowsWithOscarReferral(c map[string]any, rid int) []map[string]any {
	var out []map[string]any
	rows, _ := c["services_section"].([]any)
	for _, r := range rows {
		if r := r.(map[string]any); r["oscar_referral_id_a4ac8a5"] == fmt.Sprint(rid) {
			out = append(out, r)
		}
	}
	return out
}

// linkedCase is one Primero case referred to cif, accepted there, and
// synced both ways until nothing moves: a linked OSCaR client.
func linkedCase(t *testing.T) (*deployment, string, string) {
	t.Helper()
	c := khCase(900, []any{khService(uid(900), "counselling_trauma", "referral_to_oscar", "agency-cif")},
		[]any{khReferral("7e000000-0000-4000-8000-000000000900", uid(900), "agency-cif", "x", "2025-01-02T08:00:00.000Z")})
	d := start(t, khDir, sandbox.Options{CasesFrom: []map[string]any{c}})
	d.sync("f1_referrals_to_oscar")
	if len(d.acceptAll()) != 1 {
		t.Fatal("the referral was not accepted")
	}
	d.pass()
	d.pass()
	caseID := c["case_id"].(string)
	return d, caseID, oscarClientByExternalID(d, caseID)["global_id"].(string)
}

// Issue 19.2: a child linked to a Primero case whom the NGO then refers to
// MoSVY. The referral reaches the case exactly once, as a
// referral_from_oscar row, and the pending step stamps it; reruns write
// nothing. Issue 19.4: the NGO's level of risk comes with it.
func TestCambodia_LinkedClientNewReferral(t *testing.T) {
	d, caseID, gid := linkedCase(t)
	rid, err := d.sb.Oscar.ReferToExternal(gid, "high", "Emergency foster care")
	if err != nil {
		t.Fatal(err)
	}
	// The preview shows the new row before anything is written.
	var previewed bool
	for _, dec := range d.dryRun("f2_linked_to_primero", engine.SyncOptions{}) {
		p, _ := dec.Payload.(map[string]any)
		if dec.Action == engine.ActionUpdated && len(rowsWithOscarReferral(map[string]any{"services_section": p["services_section"]}, rid)) == 1 {
			previewed = true
		}
	}
	if !previewed {
		t.Error("dry-run does not show the new referral")
	}
	before := d.fakeWrites()
	res := d.sync("f2_linked_to_primero")
	if res.Counts.Updated != 1 || d.fakeWrites()["primero"]-before["primero"] != 1 {
		t.Fatalf("linked: %+v %v", res.Counts, res.Reasons)
	}
	c, _ := d.sb.Primero.CaseByCaseID(caseID)
	rows := rowsWithOscarReferral(c, rid)
	if len(rows) != 1 || rows[0]["service_response_type"] != "referral_from_oscar" || rows[0]["service_implementing_agency"] != "agency-cif" {
		t.Fatalf("rows for OSCaR referral %d: %v", rid, rows)
	}
	if c["risk_level"] != "high" {
		t.Errorf("risk_level %v, want the NGO's high", c["risk_level"])
	}
	if res := d.sync("f2_pending_referrals"); res.Counts.Updated != 1 {
		t.Errorf("pending: %+v %v", res.Counts, res.Reasons)
	}
	before = d.fakeWrites()
	for i := 0; i < 2; i++ {
		d.pass()
	}
	if after := d.fakeWrites(); after["primero"] != before["primero"] || after["oscar"] != before["oscar"] {
		t.Errorf("reruns wrote: %v → %v (primero kinds %v)", before, after, d.counterKinds("primero"))
	}
	c, _ = d.sb.Primero.CaseByCaseID(caseID)
	if rows := rowsWithOscarReferral(c, rid); len(rows) != 1 || rows[0]["referral_status_edf41f2"] != "pending_310366" {
		t.Errorf("after reruns: %v", rows)
	}
	// The referral Primero sent stays Primero's: one referral_to_oscar row,
	// no row made from it.
	n := 0
	for _, r := range c["services_section"].([]any) {
		if r.(map[string]any)["service_response_type"] == "referral_from_oscar" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d referral_from_oscar rows, want 1: %v", n, c["services_section"])
	}
}

// Issue 19.4: a MoSVY officer's edit of the risk level stands while OSCaR's
// value does not change; the NGO's next referral with a new level updates
// it. The owner is set on create only (TestCambodiaDefect08_16).
func TestCambodia_LinkedRiskLevel(t *testing.T) {
	d, caseID, gid := linkedCase(t)
	if _, err := d.sb.Oscar.ReferToExternal(gid, "high", "Emergency foster care"); err != nil {
		t.Fatal(err)
	}
	d.pass()
	c, _ := d.sb.Primero.CaseByCaseID(caseID)
	d.sb.Primero.Touch(c["id"].(string), map[string]any{"risk_level": "medium"})
	d.pass()
	if c, _ := d.sb.Primero.CaseByCaseID(caseID); c["risk_level"] != "medium" {
		t.Errorf("the officer's risk level was overwritten: %v", c["risk_level"])
	}
	if _, err := d.sb.Oscar.ReferToExternal(gid, "low", "Trauma counselling"); err != nil {
		t.Fatal(err)
	}
	d.pass()
	if c, _ := d.sb.Primero.CaseByCaseID(caseID); c["risk_level"] != "low" {
		t.Errorf("the NGO's new level did not arrive: %v", c["risk_level"])
	}
}

// Issue 19.7: one case with two Primero services of one type to one NGO
// is two referrals in Primero, and OSCaR stores two (oscar.md §4, branch
// 3): both are sent, once each, and the fake counts no duplicate; a rerun
// sends neither again.
func TestCambodia_TwoServicesOneTypeOneAgency(t *testing.T) {
	c := khCase(950, []any{
		khService(uid(950), "counselling_trauma", "referral_to_oscar", "agency-cif"),
		khService(uid(951), "counselling_trauma", "referral_to_oscar", "agency-cif"),
	}, []any{
		khReferral("7e000000-0000-4000-8000-000000000950", uid(950), "agency-cif", "first", "2025-01-02T08:00:00.000Z"),
		khReferral("7e000000-0000-4000-8000-000000000951", uid(951), "agency-cif", "second", "2025-01-02T09:00:00.000Z"),
	})
	d := start(t, khDir, sandbox.Options{CasesFrom: []map[string]any{c}})
	if res := d.sync("f1_referrals_to_oscar"); res.Counts.Created != 2 {
		t.Fatalf("flow 1: %+v %v", res.Counts, res.Reasons)
	}
	d.clock.Advance(time.Hour)
	d.sync("f1_referrals_to_oscar")
	if w := d.sb.Oscar.Counters().Writes()["referral.create"]; w != 2 {
		t.Errorf("%d referrals created, want 2", w)
	}
	if dup := d.sb.Oscar.Counters().Duplicates.Load(); dup != 0 {
		t.Errorf("%d duplicates", dup)
	}
}

// Issue 19.2, flow 1: every service referred to OSCaR that is not sent
// has an outcome with its reason, in the run and in dry-run alike.
func TestCambodia_ServicesLeftOutHaveReasons(t *testing.T) {
	done := khReferral("7e000000-0000-4000-8000-000000000962", uid(962), "agency-cif", "x", "2025-01-01T08:00:00.000Z")
	done["status"] = "accepted"
	c := khCase(960, []any{
		khService(uid(960), "counselling_trauma", "referral_to_oscar", "agency-cif"),     // sent
		khService(uid(961), "counselling_family", "referral_to_oscar", "agency-cif"),     // no referral made
		khService(uid(962), "counselling_generalist", "referral_to_oscar", "agency-cif"), // accepted already
		khService(uid(963), "counselling_trauma", "referral_to_oscar", "unicef"),         // not an OSCaR agency
	}, []any{khReferral("7e000000-0000-4000-8000-000000000960", uid(960), "agency-cif", "x", "2025-01-02T08:00:00.000Z"), done})
	d := start(t, khDir, sandbox.Options{CasesFrom: []map[string]any{c}})
	id := c["id"].(string)
	want := map[string]string{
		id + "#7e000000-0000-4000-8000-000000000960": "",
		id + "#service/" + uid(961):                  "no_referral",
		id + "#service/" + uid(962):                  "referral_accepted",
		id + "#service/" + uid(963):                  "not_an_oscar_agency",
	}
	check := func(label, key string, action engine.Action, reason string) {
		w, ok := want[key]
		switch {
		case !ok:
			t.Errorf("%s: unexpected item %s", label, key)
		case w == "" && action != engine.ActionCreated:
			t.Errorf("%s: %s %s %s, want created", label, key, action, reason)
		case w != "" && (action != engine.ActionSkipped || reason != w):
			t.Errorf("%s: %s %s %s, want skipped %s", label, key, action, reason, w)
		}
	}
	decs := d.dryRun("f1_referrals_to_oscar", engine.SyncOptions{})
	for _, dec := range decs {
		check("dry-run", dec.RecordKey, dec.Action, dec.Reason)
	}
	outs := d.outcomes(d.sync("f1_referrals_to_oscar"))
	for _, o := range outs {
		check("sync", o.RecordKey, o.Action, o.Reason)
	}
	if len(decs) != len(want) || len(outs) != len(want) {
		t.Errorf("%d decisions, %d outcomes, want %d each", len(decs), len(outs), len(want))
	}
}

// OSCaR matches a referral's one service name against its catalogue,
// where "Therapeutic training" is listed twice: Primero's referral comes
// back with two services of one referral id. It is Primero's referral,
// decided once, and no referral_from_oscar row is made of its second
// service.
func TestCambodia_OneReferralTwoCatalogueServices(t *testing.T) {
	c := khCase(970, []any{khService(uid(970), "disability_support_therapeutic_training", "referral_to_oscar", "agency-cif")},
		[]any{khReferral("7e000000-0000-4000-8000-000000000970", uid(970), "agency-cif", "x", "2025-01-02T08:00:00.000Z")})
	d := start(t, khDir, sandbox.Options{CasesFrom: []map[string]any{c}})
	d.sync("f1_referrals_to_oscar")
	d.acceptAll()
	if svcs := oscarClientByExternalID(d, c["case_id"].(string))["services"].([]any); len(svcs) != 2 {
		t.Fatalf("OSCaR lists %d services for the referral, want the catalogue's 2", len(svcs))
	}
	d.pass()
	got, _ := d.sb.Primero.CaseByCaseID(c["case_id"].(string))
	rows := got["services_section"].([]any)
	if len(rows) != 1 || rows[0].(map[string]any)["referral_status_edf41f2"] != "accepted_340953" {
		t.Errorf("rows: %v", rows)
	}
}

// Issue 19.3: every date-of-birth shape OSCaR sends. What can be read is
// normalised (and gives an age); what cannot is left out with the note
// date_of_birth_unreadable on the record, in dry-run and in the run's
// counts; no date at all is no note.
func TestCambodia_DateOfBirthShapes(t *testing.T) {
	now := time.Now().UTC()
	ageOn := func(y, m, d int) int {
		a := now.Year() - y
		if now.Month() < time.Month(m) || now.Month() == time.Month(m) && now.Day() < d {
			a--
		}
		return a
	}
	cases := []struct {
		name string
		dob  any
		want string // "" = no date of birth
		note bool
	}{
		{"ISO", "2012-05-06", "2012-05-06", false},
		{"slashes (Primero v1)", "2012/05/06", "2012-05-06", false},
		{"trailing space", "2012-01-01 ", "2012-01-01", false},
		{"leading space", " 2012-01-01", "2012-01-01", false},
		{"one-digit month and day", "2012-5-6", "2012-05-06", false},
		{"five-digit year", "22012-01-01", "", true},
		{"before 1900", "1800-06-25", "", true},
		{"no such day", "2012-02-30", "", true},
		{"in the future", fmt.Sprintf("%d-01-01", now.Year()+1), "", true},
		{"day first", "06/05/2012", "", true},
		{"a number", json.Number("20120506"), "", true},
		{"empty", "", "", false},
		{"blank", "  ", "", false},
		{"null", nil, "", false},
	}
	var recs []any
	for i, c := range cases {
		r := referredClient(i, "12010101", nil, nil)
		r["date_of_birth"] = c.dob
		recs = append(recs, r)
	}
	d := start(t, khDir, sandbox.Options{})
	decs := d.dryRun("f2_clients_to_primero", engine.SyncOptions{Records: recs})
	byKey := map[string]engine.Decision{}
	for _, dec := range decs {
		byKey[dec.RecordKey] = dec
	}
	notes := 0
	for i, c := range cases {
		dec := byKey[fmt.Sprintf("cif/01AAAAAAAAAAAAAAAAAAAA%04d", i)]
		p, _ := dec.Payload.(map[string]any)
		if dec.Action != engine.ActionCreated {
			t.Errorf("%s: %s %s %s", c.name, dec.Action, dec.Reason, dec.Error)
			continue
		}
		got, _ := p["date_of_birth"].(string)
		if got != c.want {
			t.Errorf("%s: date_of_birth %q, want %q", c.name, got, c.want)
		}
		if c.want != "" {
			var y, m, dd int
			fmt.Sscanf(c.want, "%d-%d-%d", &y, &m, &dd)
			if fmt.Sprint(p["age"]) != fmt.Sprint(ageOn(y, m, dd)) {
				t.Errorf("%s: age %v, want %d", c.name, p["age"], ageOn(y, m, dd))
			}
		} else if _, ok := p["age"]; ok {
			t.Errorf("%s: an age without a date of birth: %v", c.name, p["age"])
		}
		has := slices.Contains(dec.Notes, "date_of_birth_unreadable")
		if has != c.note {
			t.Errorf("%s: notes %v, want the note %v", c.name, dec.Notes, c.note)
		}
		if has {
			notes++
		}
	}
	// The run counts the notes, and the state keeps them with the run.
	res := d.sync2("f2_clients_to_primero", engine.SyncOptions{Records: recs})
	if res.Counts.Notes["date_of_birth_unreadable"] != notes || res.Counts.Created != len(cases) {
		t.Errorf("run counts %+v, want %d notes", res.Counts, notes)
	}
	runs, err := d.store.Runs(ctx(t), "f2_clients_to_primero", 1)
	if err != nil || len(runs) != 1 || runs[0].Counts.Notes["date_of_birth_unreadable"] != notes {
		t.Errorf("stored run: %+v %v", runs, err)
	}
}

// A decision OSCaR took on a Primero referral whose row no longer matches
// (its subtype edited in Primero after it was sent) is not taken for a
// referral from the NGO: no phantom referral_from_oscar row, and the
// record carries the note oscar_decision_unmatched. Flow 2's decision
// pipeline reports the decision it cannot apply with its reason.
func TestCambodia_UnmatchedDecisionIsReported(t *testing.T) {
	c := khCase(990, []any{khService(uid(990), "counselling_trauma", "referral_to_oscar", "agency-cif")},
		[]any{khReferral("7e000000-0000-4000-8000-000000000990", uid(990), "agency-cif", "x", "2025-01-02T08:00:00.000Z")})
	d := start(t, khDir, sandbox.Options{CasesFrom: []map[string]any{c}})
	d.sync("f1_referrals_to_oscar")
	d.sb.Primero.Touch(c["id"].(string), map[string]any{"services_section": []any{
		map[string]any{"unique_id": uid(990), "service_subtype": []any{"counselling_family"}}}})
	d.acceptAll()
	var noted bool
	for _, dec := range d.dryRun("f2_linked_to_primero", engine.SyncOptions{}) {
		noted = noted || slices.Contains(dec.Notes, "oscar_decision_unmatched")
	}
	if !noted {
		t.Error("no oscar_decision_unmatched note in dry-run")
	}
	res := d.sync("f2_linked_to_primero")
	if res.Counts.Notes["oscar_decision_unmatched"] != 1 {
		t.Errorf("run notes %v", res.Counts.Notes)
	}
	got, _ := d.sb.Primero.CaseByCaseID(c["case_id"].(string))
	for _, r := range got["services_section"].([]any) {
		if r.(map[string]any)["service_response_type"] == "referral_from_oscar" {
			t.Errorf("a phantom referral from OSCaR: %v", r)
		}
	}
}

// Once flow 2 applied a decision, re-reading the client reports it as
// skipped with the referral's status, not as nothing.
func TestCambodia_AppliedDecisionHasReason(t *testing.T) {
	d, _, _ := linkedCase(t)
	decs := d.dryRun("f2_decisions_to_primero", engine.SyncOptions{Since: "2020-01-01 00:00:00"})
	var reasons []string
	for _, dec := range decs {
		reasons = append(reasons, dec.Reason)
	}
	if !slices.Contains(reasons, "referral_accepted") {
		t.Errorf("decisions %v, want referral_accepted", reasons)
	}
}
