package specs_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/sandbox"
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
		"services":          []any{map[string]any{"uuid": "020d0e8a-c948-451e-948e-3c5462a7cb56", "name": "Community social work"}},
		"resource":          "Primero", "date_of_referral": "2021-11-09",
	}}}
	if diff := cmp.Diff(normal(t, want), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// engine check is clean on the deployment, and flags the province table's
// duplicated key 22 if the job's table comes back.
func TestCambodia_CheckFlagsProvinceDuplicate(t *testing.T) {
	load(t, khDir) // no problems
	root := repoRoot(t)
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
