package specs_test

import (
	"testing"
	"time"

	"casesync/engine"
	"casesync/internal/sandbox"
)

// Issue 19.9: the cutover from the OpenFn jobs. A referral those jobs
// already delivered to OSCaR is recorded by a baseline run (ledger: an
// unchanged outcome with reason baseline and its payload hash) and never
// sent; a referral made after the cutover is sent once; nothing is sent
// twice, even when the old case changes later.
func TestCambodia_Cutover(t *testing.T) {
	old := khCase(980, []any{khService(uid(980), "counselling_trauma", "referral_to_oscar", "agency-cif")},
		[]any{khReferral("7e000000-0000-4000-8000-000000000980", uid(980), "agency-cif", "sent by the old jobs", "2025-01-02T08:00:00.000Z")})
	d := start(t, khDir, sandbox.Options{CasesFrom: []map[string]any{old}})

	res := d.sync2("f1_referrals_to_oscar", engine.SyncOptions{Baseline: true, Trigger: "baseline"})
	if res.Counts.Baselined != 1 || res.Counts.Unchanged != 1 || res.Counts.Created != 0 || d.fakeWrites()["oscar"] != 0 {
		t.Fatalf("baseline: %+v, OSCaR writes %d", res.Counts, d.fakeWrites()["oscar"])
	}
	oldKey := old["id"].(string) + "#7e000000-0000-4000-8000-000000000980"
	if o := outcomeOf(t, d.outcomes(res), oldKey); o.Action != engine.ActionUnchanged || o.Reason != engine.ReasonBaseline || o.PayloadHash == "" {
		t.Errorf("baseline outcome: %+v", o)
	}

	// After the cutover: a new referral, and the old case edited.
	fresh := khCase(981, []any{khService(uid(981), "counselling_family", "referral_to_oscar", "agency-fco")},
		[]any{khReferral("7e000000-0000-4000-8000-000000000981", uid(981), "agency-fco", "after the cutover", "2025-02-01T08:00:00.000Z")})
	fresh["created_at"], fresh["last_updated_at"] = "2025-02-01T08:00:00.000Z", "2025-02-01T08:00:00.000Z"
	d.sb.Primero.AddCase(fresh)
	d.sb.Primero.Touch(old["id"].(string), map[string]any{"mosvy_number": "1234567"})
	d.clock.Advance(time.Hour)
	res = d.sync("f1_referrals_to_oscar")
	if res.Counts.Created != 1 || d.sb.Oscar.Counters().Writes()["referral.create"] != 1 {
		t.Fatalf("after the cutover: %+v %v, OSCaR %v", res.Counts, res.Reasons, d.sb.Oscar.Counters().Writes())
	}
	for _, r := range d.sb.Oscar.Referrals() {
		if r["external_id"] != fresh["case_id"] {
			t.Errorf("a referral the old jobs delivered was sent again: %v", r["external_id"])
		}
	}
	d.clock.Advance(time.Hour)
	d.sync("f1_referrals_to_oscar")
	if w := d.sb.Oscar.Counters().Writes()["referral.create"]; w != 1 || d.sb.Oscar.Counters().Duplicates.Load() != 0 {
		t.Errorf("rerun: %d creates, %d duplicates", w, d.sb.Oscar.Counters().Duplicates.Load())
	}
}
