package e2e

import (
	"fmt"
	"testing"

	"casesync/engine"
	"casesync/internal/sandbox"
	"casesync/internal/testenv"
)

// TestRunner_EvalLimitsFailTheRecordNotTheRun: a map field that spins
// forever (last(repeat(1))) on one record and builds a huge string on
// another fails those two records with eval_timeout and eval_too_large
// within the spec's limits, and every other record is written: before the
// limits the first held the pipeline for good and the second could take
// the process's memory (issue 16 item 2).
func TestRunner_EvalLimitsFailTheRecordNotTheRun(t *testing.T) {
	sb := runnerSandbox(t, sandbox.Options{Cases: 60, Clients: 5})
	referred := testenv.ReferredCases(sb)
	if len(referred) < 4 {
		t.Fatalf("seed refers only %d cases", len(referred))
	}
	spin, huge := referred[1], referred[2]
	// The deadline is every record's: 2 s, far beyond an ordinary
	// record's mapping even under -race on a loaded machine (300 ms was
	// within reach of a stall), and only the spinning record reaches it.
	extra := fmt.Sprintf(`package example

limits: {eval_timeout: "2s", eval_max_bytes: 65536}
pipelines: cases_to_oscar: map: probe: {
	jq: #"if .id == "%s" then last(repeat(1)) elif .id == "%s" then "x" * 100000 else null end"#
	omit_empty: true
}
`, spin, huge)
	env := runnerOpen(t, sb, runnerSpecs(t, runnerSpecOptions{Per: 1000, Extra: map[string]string{"limits.cue": extra}}), "", nil)
	seeded := len(sb.Oscar.Referrals())

	res := env.sync(t)
	if res.Counts.Failed != 2 || res.Counts.Created != len(referred)-2 {
		t.Fatalf("counts %+v (reasons %v), want %d created and 2 failed", res.Counts, res.Reasons, len(referred)-2)
	}
	if got := len(sb.Oscar.Referrals()) - seeded; got != len(referred)-2 {
		t.Errorf("OSCaR holds %d new referrals, want %d", got, len(referred)-2)
	}
	fails, err := env.store.Failures(t.Context(), runnerPipeline)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{spin: "eval_timeout", huge: "eval_too_large"}
	for _, f := range fails {
		if want[f.RecordKey] != f.Reason || f.Class != engine.ClassData {
			t.Errorf("failure %s: %s (%s), want %s (data)", f.RecordKey, f.Reason, f.Class, want[f.RecordKey])
		}
		delete(want, f.RecordKey)
	}
	if len(want) != 0 {
		t.Errorf("no failure recorded for %v", want)
	}
}
