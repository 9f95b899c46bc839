package specs_test

import (
	"testing"
	"time"

	"casesync/internal/sandbox"
)

// Issue 19.10: the demo's seeds are one consistent world (PING knows the
// interventions Primero's cases came from and decides the referrals it
// gets; no designed edge case is seeded), so every shipped deployment runs
// with no failed record and no duplicate, and a second pass writes
// nothing. The refusal paths stay covered by the tests on the default
// seeds (unknown province, off-list intervention type, unknown status…).
func TestDemoSeedsRunClean(t *testing.T) {
	for _, dir := range []string{"specs/cambodia", "specs/unhcr", "specs/example"} {
		t.Run(dir, func(t *testing.T) {
			d := start(t, dir, sandbox.Options{Cases: 300, Clients: 60, Interventions: 20, Decisions: 10, Seed: 1,
				OSCaRAutoAccept: true, Consistent: true, PingStatusDelay: 5 * time.Millisecond})
			results, writes := d.pass()
			total := 0
			for name, r := range results {
				if r.Counts.Failed != 0 {
					t.Errorf("%s: %d failed: %v", name, r.Counts.Failed, r.Reasons)
				}
				total += r.Counts.Created + r.Counts.Updated
			}
			if total == 0 {
				t.Fatalf("nothing moved: %v", writes)
			}
			if dir == "specs/unhcr" && results["progres_decisions_to_primero"].Counts.Updated == 0 {
				t.Errorf("no proGres decision reached Primero: %+v", results["progres_decisions_to_primero"].Counts)
			}
			if _, writes := d.pass(); writes["primero"]+writes["oscar"]+writes["ping"] != 0 {
				t.Errorf("the second pass wrote %v", writes)
			}
			if dup := d.sb.Primero.Counters().Duplicates.Load() + d.sb.Oscar.Counters().Duplicates.Load() + d.sb.Ping.Counters().Duplicates.Load(); dup != 0 {
				t.Errorf("%d duplicates at the fakes", dup)
			}
		})
	}
}
