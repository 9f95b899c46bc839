package specs_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/fakes/oscar"
	"casesync/internal/sandbox"
	"casesync/internal/testenv"
)

const khDir = "specs/cambodia"

// goldenCase is the Primero case that the OpenFn golden pair starts from:
// oscar_upsert_before_service_split.json is its mapped upsert with both
// services, so the case is rebuilt from it field by field, one in_progress
// referral per service.
func goldenCase(t *testing.T) (map[string]any, []map[string]any) {
	t.Helper()
	var before, after []map[string]any
	readJSON(t, "testdata/cambodia/oscar_upsert_before_service_split.json", &before)
	readJSON(t, "testdata/cambodia/oscar_upsert_after_service_split.json", &after)
	b := before[0]
	subtype := map[string]string{"Community social work": "social_work_case_work_community", "Emergency foster care": "family_based_care_emergency_foster"}
	var services, referrals []any
	for i, s := range b["services"].([]any) {
		s := s.(map[string]any)
		name := s["name"].(string)
		services = append(services, map[string]any{
			"unique_id": s["uuid"], "service_type": strings.SplitN(subtype[name], "_", 2)[0], "service_subtype": []any{subtype[name]},
			"service_response_type": "referral_to_oscar", "service_implementing_agency": "agency-" + b["organization_name"].(string),
		})
		referrals = append(referrals, map[string]any{
			"id": []string{"7a1f0c1e-8a37-4a4b-9d3e-1c2b3a4d5e01", "7a1f0c1e-8a37-4a4b-9d3e-1c2b3a4d5e02"}[i], "type": "Referral",
			"status": "in_progress", "transitioned_to": "agency-cif-user", "transitioned_to_agency": "agency-cif",
			"transitioned_by": "openfn_cp_user", "service_record_id": s["uuid"], "notes": b["reason_for_referral"],
			"created_at": b["date_of_referral"].(string) + "T09:00:00.000Z",
		})
	}
	c := map[string]any{
		"id": "3c9b2f1e-5d4a-4b6c-8e7f-0a1b2c3d4e5f", "case_id": b["external_id"], "case_id_display": b["external_id_display"],
		"risk_level": b["level_of_risk"], "name_first": b["given_name"], "name_last": b["family_name"], "sex": b["gender"],
		"date_of_birth": b["date_of_birth"], "location_current": b["location_current_village_code"],
		"owned_by": b["external_case_worker_id"], "owned_by_text": b["external_case_worker_name"],
		"consent_for_services": true, "disclosure_other_orgs": true, "module_id": "primeromodule-cp", "status": "open",
		"workflow": "referral_to_oscar", "services_section": services, "referrals": referrals,
		"created_at": "2022-10-04T08:00:00.000Z", "last_updated_at": "2022-10-04T09:30:00.000Z",
	}
	return c, after
}

// upsertBodies dry-runs flow 1 (a) and returns the request bodies it would
// send, in order.
func upsertBodies(t *testing.T, d *deployment) []any {
	t.Helper()
	var bodies []any
	for _, dec := range d.dryRun("f1_referrals_to_oscar", engine.SyncOptions{}) {
		if dec.Request == nil {
			t.Errorf("%s: %s %s %s", dec.RecordKey, dec.Action, dec.Reason, dec.Error)
			continue
		}
		if dec.Request.Method != "POST" || dec.Request.Path != "/api/v1/organizations/clients/upsert" {
			t.Errorf("request %s %s", dec.Request.Method, dec.Request.Path)
		}
		bodies = append(bodies, normal(t, dec.Request.Body))
	}
	return bodies
}

// The golden pair: one case with two referred services becomes two
// upserts of one service each, exactly the bodies of
// oscar_upsert_after_service_split.json (wrapped in "organization").
// Nothing is ignored: resource and date_of_referral, which OSCaR ignores,
// match too, and organization_name "cif" comes from the agency rule on the
// services' agency-cif, not from a constant.
func TestCambodia_GoldenServiceSplit(t *testing.T) {
	c, after := goldenCase(t)
	d := start(t, khDir, sandbox.Options{CasesFrom: []map[string]any{c}})
	got := upsertBodies(t, d)
	var want []any
	for _, a := range after {
		want = append(want, map[string]any{"organization": a})
	}
	if diff := cmp.Diff(normal(t, want), got); diff != "" {
		t.Errorf("bodies differ from oscar_upsert_after_service_split.json (-want +got):\n%s", diff)
	}
}

// The Primero fixture of a case referred to agency-demo, with its referral
// added (the fixture has none), maps to the upsert written by hand in
// deployments.md §1.6: organization "demo", one service "Community social
// work", mobile 000000000, empty location codes.
func TestCambodia_GoldenFixtureCaseToDemo(t *testing.T) {
	var cases []map[string]any
	readJSON(t, "testdata/cambodia/cases_list_data_array_cambodia_referral_to_oscar.json", &cases)
	c := cases[0]
	c["referrals"] = []any{map[string]any{"id": "9d2c7b4e-1f3a-4c5d-8e6f-7a8b9c0d1e2f", "type": "Referral", "status": "in_progress",
		"transitioned_to": "agency-demo-user", "transitioned_to_agency": "agency-demo", "transitioned_by": "openfn_cp_user",
		"service_record_id": "020d0e8a-c948-451e-948e-3c5462a7cb56", "notes": "Needs community follow-up",
		"created_at": "2021-11-09T10:38:34.000Z"}}
	d := start(t, khDir, sandbox.Options{CasesFrom: []map[string]any{c}})
	got := upsertBodies(t, d)
	want := []any{map[string]any{"organization": map[string]any{
		"external_id": "5f6130b0-bfa7-4544-a3c8-897f54d3b877", "external_id_display": "4d3b877",
		"level_of_risk": "", "mosvy_number": "9808827", "given_name": "Aicha", "family_name": "Diallo",
		"gender": "female", "date_of_birth": "2012-01-01",
		"location_current_village_code": "", "address_current_village_code": "",
		"reason_for_referral":       "Needs community follow-up",
		"external_case_worker_name": "openfn_cp_user", "external_case_worker_id": "openfn_cp_user",
		"external_case_worker_mobile": "000000000", "is_referred": true,
		"organization_name": "demo", "organization_id": "demo",
		"services": []any{map[string]any{"uuid": "020d0e8a-c948-451e-948e-3c5462a7cb56", "name": "Community social work"}},
		"resource": "Primero", "date_of_referral": "2021-11-09",
	}}}
	if diff := cmp.Diff(normal(t, want), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// engine check is clean on the deployment, and flags the province table's
// duplicated key 22 if the job's table comes back.
func TestCambodia_CheckFlagsProvinceDuplicate(t *testing.T) {
	load(t, khDir) // no problems
	root := testenv.RepoRoot(t)
	tmp := t.TempDir()
	for _, sub := range []string{"cue.mod", "lib"} {
		if err := os.Symlink(filepath.Join(root, "specs", sub), filepath.Join(tmp, sub)); err != nil {
			t.Fatal(err)
		}
	}
	dep := filepath.Join(tmp, "cambodia")
	if err := os.Mkdir(dep, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(root, khDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue // tests/: the spec tests, not part of the spec
		}
		b, err := os.ReadFile(filepath.Join(root, khDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "province_owner.csv" {
			if b, err = os.ReadFile("testdata/cambodia/province_owner_with_duplicate_22.csv"); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dep, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err = spec.Load(dep, spec.Options{Cwd: tmp})
	var ps spec.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want problems, got %v", err)
	}
	dups := 0
	for _, p := range ps {
		if p.Code != "lookup-duplicate-key" {
			t.Errorf("unexpected problem %s", p)
			continue
		}
		if !strings.Contains(p.Msg, `"22"`) || !strings.HasSuffix(p.File, "province_owner.csv") {
			t.Errorf("problem %s", p)
		}
		dups++
	}
	if dups != 2 {
		t.Errorf("want both rows of key 22 reported, got %d problems: %v", dups, ps)
	}
}

// counters asserts that the fakes counted exactly the writes the engine
// reports for one pass, system by system.
func (d *deployment) countersMatch(label string, before map[string]int, engineWrites map[string]int) {
	d.t.Helper()
	after := d.fakeWrites()
	for _, sys := range []string{"primero", "oscar"} {
		if got := after[sys] - before[sys]; got != engineWrites[sys] {
			d.t.Errorf("%s: %s counted %d writes, the engine %d (fake kinds now %v)", label, sys, got, engineWrites[sys], d.counterKinds(sys))
		}
	}
}

func (d *deployment) counterKinds(sys string) map[string]int64 {
	if sys == "oscar" {
		return d.sb.Oscar.Counters().Writes()
	}
	return d.sb.Primero.Counters().Writes()
}

// acceptAll is NGO staff accepting, in OSCaR, every pending referral the
// engine sent for a Primero case.
func (d *deployment) acceptAll() []string {
	d.t.Helper()
	var accepted []string
	seen := map[string]bool{}
	for _, r := range d.sb.Oscar.Referrals() {
		ext, _ := r["external_id"].(string)
		if r["accepted"] == true || r["referred_from"] != "MoSVY" || seen[ext] {
			continue
		}
		if _, ok := d.sb.Primero.CaseByCaseID(ext); !ok {
			continue // a seeded referral of a case this Primero does not hold
		}
		seen[ext] = true
		// One Accept per NGO the case was referred to.
		for {
			if _, err := d.sb.Oscar.Accept(ext); errors.Is(err, oscar.ErrNoPendingReferral) {
				break
			} else if err != nil {
				d.t.Fatalf("accept %s: %v", ext, err)
			}
		}
		accepted = append(accepted, ext)
	}
	return accepted
}

// Seeded cases and clients move both ways; every pass's writes are counted
// alike by the engine and by the fakes; accepted referrals come back with
// their OSCaR ids and decisions; and a pass with nothing new writes nothing.
// Ten clients: the eleventh seeded one shares a global_id with client 3 in
// another NGO, and OSCaR then counts one update_links as two row writes
// (TestCambodia_LinksOneClientInTwoNGOs).
func TestCambodia_BothWays(t *testing.T) {
	d := start(t, khDir, sandbox.Options{Cases: 60, Clients: 10, Seed: 1})

	before := d.fakeWrites()
	res, writes := d.pass()
	d.countersMatch("pass 1", before, writes)
	oscarWrites := d.sb.Oscar.Counters().Writes()
	if oscarWrites["referral.create"] == 0 || d.sb.Primero.Counters().Writes()["create"] == 0 {
		t.Fatalf("nothing moved: oscar %v, primero %v", oscarWrites, d.sb.Primero.Counters().Writes())
	}
	if n := res["f1_referrals_to_oscar"].Counts.Created; n != int(oscarWrites["referral.create"]) {
		t.Errorf("referrals created: engine %d, OSCaR %d", n, oscarWrites["referral.create"])
	}
	if n := res["f1_referrals_to_oscar"].Counts.Failed; n != 0 {
		t.Errorf("flow 1 failed %d referrals: %v", n, res["f1_referrals_to_oscar"].Reasons)
	}

	before = d.fakeWrites()
	if _, writes = d.pass(); writes["primero"]+writes["oscar"] != 0 || !maps.Equal(before, d.fakeWrites()) {
		t.Errorf("a second pass wrote: engine %v, fakes %v → %v", writes, before, d.fakeWrites())
	}

	accepted := d.acceptAll()
	if len(accepted) == 0 {
		t.Fatal("no referral to accept")
	}
	before = d.fakeWrites()
	_, writes = d.pass()
	d.countersMatch("pass 2", before, writes)
	for _, caseID := range accepted {
		c, _ := d.sb.Primero.CaseByCaseID(caseID)
		oc := oscarClientKept(d, c)
		if c["oscar_number"] == nil || c["oscar_number"] != oc["global_id"] {
			t.Errorf("case %s: oscar_number %v, OSCaR global_id %v", caseID, c["oscar_number"], oc["global_id"])
		}
		if c["oscar_short_id"] != oc["slug"] {
			t.Errorf("case %s: oscar_short_id %v, slug %v", caseID, c["oscar_short_id"], oc["slug"])
		}
		for _, r := range d.sb.Primero.Referrals(c["id"].(string)) {
			if r["status"] != "accepted" {
				t.Errorf("case %s: referral %v is %v, want accepted", caseID, r["id"], r["status"])
			}
		}
		for _, s := range c["services_section"].([]any) {
			s := s.(map[string]any)
			if s["service_response_type"] == "referral_to_oscar" && s["referral_status_edf41f2"] != "accepted_340953" {
				t.Errorf("case %s: service %v status %v", caseID, s["unique_id"], s["referral_status_edf41f2"])
			}
		}
	}

	before = d.fakeWrites()
	res, writes = d.pass()
	after := d.fakeWrites()
	for _, sys := range []string{"primero", "oscar"} {
		if after[sys] != before[sys] || writes[sys] != 0 {
			t.Errorf("pass 3 wrote to %s: fake %d, engine %d", sys, after[sys]-before[sys], writes[sys])
		}
	}
	for name, r := range res {
		if r.Counts.Failed != 0 && name != "f2_clients_to_primero" {
			t.Errorf("pass 3: %s failed %d: %v", name, r.Counts.Failed, r.Reasons)
		}
	}
	if dup := d.sb.Primero.Counters().Duplicates.Load() + d.sb.Oscar.Counters().Duplicates.Load(); dup != 0 {
		t.Errorf("%d duplicates at the fakes", dup)
	}
}

// oscarClientKept is the OSCaR client whose ids the Primero case keeps: a
// case referred to two NGOs has a client in each, and keeps the one in the
// NGO its referral_to_oscar rows name first (kh_keeps_id).
func oscarClientKept(d *deployment, c map[string]any) map[string]any {
	ext, _ := c["case_id"].(string)
	var orgs []string
	rows, _ := c["services_section"].([]any)
	for _, r := range rows {
		if row, _ := r.(map[string]any); row["service_response_type"] == "referral_to_oscar" {
			orgs = append(orgs, strings.TrimPrefix(fmt.Sprint(row["service_implementing_agency"]), "agency-"))
		}
	}
	var kept map[string]any
	rank := func(org any) int {
		if i := slices.Index(orgs, fmt.Sprint(org)); i >= 0 {
			return i
		}
		return len(orgs)
	}
	for _, oc := range d.sb.Oscar.Clients() {
		if oc["external_id"] == ext && (kept == nil || rank(oc["tenant"]) < rank(kept["tenant"])) {
			kept = oc
		}
	}
	if kept == nil {
		d.t.Fatalf("no OSCaR client with external_id %s", ext)
	}
	return kept
}

func oscarClientByExternalID(d *deployment, ext string) map[string]any {
	for _, c := range d.sb.Oscar.Clients() {
		if c["external_id"] == ext {
			return c
		}
	}
	d.t.Fatalf("no OSCaR client with external_id %s", ext)
	return nil
}
