package specs_test

import (
	"testing"

	"casesync/engine"
	"casesync/internal/sandbox"
)

const unhcrDir = "specs/unhcr"

// Every service a UNHCR flow leaves out has an outcome with its reason,
// in dry-run as in a run: 2.1 sends the service whose referral came after
// the cutover (vars.unhcr.referrals_since) and reports the one the OpenFn
// jobs sent before it and the one never referred; 1.2 reports a decision
// whose intervention number lacks its parts.
func TestUNHCR_ServicesLeftOutHaveReasons(t *testing.T) {
	svc := func(uid string) map[string]any {
		return map[string]any{"unique_id": uid, "service_type": "medical", "service_response_type": "service_provision",
			"service_implementing_agency": "UNHCR", "service_referral": "external_referral", "service_referral_notes": "x"}
	}
	ref := func(id, uid, created string) map[string]any {
		return map[string]any{"id": id, "type": "Referral", "status": "in_progress", "transitioned_to": "unhcr_focal",
			"transitioned_to_agency": "agency-unhcr", "transitioned_by": "mgrpnh", "service_record_id": uid, "created_at": created}
	}
	inbound := map[string]any{"unique_id": uid(804), "service_type": "health_medical_service", "service_request_agency": "UNHCR",
		"service_referral": "external_referral", "unhcr_referral_status": "accepted", "progres_interventionnumber": "GMB-24-PRTITV-0000001"}
	c := map[string]any{"id": "00000000-0000-4000-8000-000000000800", "case_id": "c0000000-0000-4000-8000-000000000800",
		"case_id_display": "0000800", "name_first": "Akol", "name_last": "Deng", "sex": "male", "date_of_birth": "2012-03-04",
		"owned_by": "mgrpnh", "unhcr_individual_no": "GMB-00000800", "status": "open", "module_id": "primeromodule-cp",
		"services_section": []any{svc(uid(801)), svc(uid(802)), svc(uid(803)), inbound},
		"referrals": []any{ref("7e000000-0000-4000-8000-000000000801", uid(801), "2025-03-01T08:00:00.000Z"),
			ref("7e000000-0000-4000-8000-000000000802", uid(802), "2024-11-01T08:00:00.000Z")},
		"created_at": "2024-10-01T03:04:05.000Z", "last_updated_at": "2025-03-02T03:04:05.000Z"}
	d := start(t, unhcrDir, sandbox.Options{CasesFrom: []map[string]any{c}})
	id := c["id"].(string)
	for pipeline, want := range map[string]map[string]string{
		"primero_referrals_to_progres": {id + "#" + uid(801): "", id + "#" + uid(802): "referral_before_cutover", id + "#" + uid(803): "no_referral"},
		"primero_decisions_to_progres": {id + "#" + uid(804) + ":accepted": "intervention_number_incomplete"},
	} {
		decs := d.dryRun(pipeline, engine.SyncOptions{})
		if len(decs) != len(want) {
			t.Errorf("%s: %d decisions, want %d: %+v", pipeline, len(decs), len(want), decs)
		}
		for _, dec := range decs {
			w, ok := want[dec.RecordKey]
			switch {
			case !ok:
				t.Errorf("%s: unexpected item %s", pipeline, dec.RecordKey)
			case w == "" && dec.Action != engine.ActionCreated:
				t.Errorf("%s: %s %s %s %s, want created", pipeline, dec.RecordKey, dec.Action, dec.Reason, dec.Error)
			case w != "" && (dec.Action != engine.ActionSkipped || dec.Reason != w):
				t.Errorf("%s: %s %s %s, want skipped %s", pipeline, dec.RecordKey, dec.Action, dec.Reason, w)
			}
		}
	}
}
