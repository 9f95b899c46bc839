package main

import (
	"strings"
	"testing"

	"casesync/engine"
	"casesync/internal/state"
	"casesync/internal/testenv"
)

// TestRetry_RunsTheCurrentSpec: the record failed under the old spec; after
// the spec is fixed, retry re-fetches it by key (source.get, no listing)
// and runs the new spec, and the queue is empty.
func TestRetry_RunsTheCurrentSpec(t *testing.T) {
	fx := newStateFixture(t)
	// A spec fix: an unreadable date of birth becomes null instead of an
	// error.
	editSpec(t, fx.specs, "referrals.cue", `date_of_birth: jq:       ".date_of_birth | ymd"`,
		`date_of_birth: jq:       ".date_of_birth | try ymd catch null"`)
	fx.sb.Primero.Counters().Reset()
	writes := fx.sb.Oscar.Counters().TotalWrites()

	out, errOut, code := fx.cli(t, "retry", "--pipeline", "cases_to_oscar")
	if code != 0 {
		t.Fatalf("retry: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "cases_to_oscar: 1 record(s) requeued") || !strings.Contains(out, "created 1") {
		t.Errorf("retry output:\n%s", out)
	}
	reqs := fx.sb.Primero.Counters().Requests()
	if reqs["GET /api/v2/cases/"+fx.bad] != 1 || reqs["GET /api/v2/cases"] != 0 {
		t.Errorf("Primero requests %v: want one get of %s and no listing", reqs, fx.bad)
	}
	if got := fx.sb.Oscar.Counters().TotalWrites() - writes; got != 1 {
		t.Errorf("OSCaR counted %d writes, want 1", got)
	}
	out, _, _ = fx.cli(t, "failures")
	if !strings.Contains(out, "no failures") {
		t.Errorf("failures after retry:\n%s", out)
	}
	runs, err := fx.store(t).Runs(t.Context(), "cases_to_oscar", 1)
	if err != nil || len(runs) != 1 || runs[0].Trigger != "retry" {
		t.Errorf("last run %+v, %v; want trigger retry", runs, err)
	}
	audit, err := fx.store(t).AuditLog(t.Context(), "cases_to_oscar", 0)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range audit {
		found = found || e.Action == "retry_requested" && e.RecordKey == fx.bad && e.Actor == "cli:tester"
	}
	if !found {
		t.Errorf("no retry_requested audit row for %s by cli:tester in %+v", fx.bad, audit)
	}
}

func TestRetry(t *testing.T) {
	fx := newStateFixture(t)

	// Unfixed: the record fails again, and retry says so.
	out, errOut, code := fx.cli(t, "retry", "--record", fx.bad)
	if code != 1 || !strings.Contains(errOut, "1 record(s) failed again") {
		t.Errorf("retry of a still-bad record: exit %d\n%s%s", code, out, errOut)
	}
	var fails []failureJSON
	fx.jsonOut(t, &fails, "failures")
	if len(fails) != 1 || fails[0].Attempts != 2 {
		t.Errorf("failures = %+v, want the record with 2 attempts", fails)
	}

	// --queue-only: due now, no request to any system.
	fx.sb.Primero.Counters().Reset()
	var res retryJSON
	fx.jsonOut(t, &res, "retry", "--queue-only")
	if res.Requeued["cases_to_oscar"] != 1 || len(res.Runs) != 0 {
		t.Errorf("retry --queue-only = %+v", res)
	}
	if n := len(fx.sb.Primero.Counters().Requests()); n != 0 {
		t.Errorf("--queue-only made %d kinds of request", n)
	}
	fx.jsonOut(t, &fails, "failures")
	if len(fails) != 1 || fails[0].NextRetry == nil || *fails[0].NextRetry != stateNow.Format("2006-01-02T15:04:05Z") {
		t.Errorf("after --queue-only: %+v, want due at the CLI's now", fails)
	}

	// Fixed at the source: retry by key writes it and empties the queue.
	fx.sb.Primero.Touch(fx.bad, map[string]any{"date_of_birth": "2015-01-02"})
	fx.jsonOut(t, &res, "retry", "--record", fx.bad)
	if len(res.Runs) != 1 || res.Runs[0].Counts.Created != 1 || len(res.Runs[0].Keys) != 1 || res.Runs[0].Keys[0] != fx.bad {
		t.Errorf("retry --record = %+v", res)
	}

	// Nothing left.
	out, _, code = fx.cli(t, "retry")
	if code != 0 || !strings.Contains(out, "nothing to retry") {
		t.Errorf("retry with an empty queue: exit %d\n%s", code, out)
	}
	if _, errOut, code := fx.cli(t, "retry", "--record", "no-such-key"); code != 1 || !strings.Contains(errOut, `no queued record "no-such-key"`) {
		t.Errorf("retry of an unknown record: exit %d, %q", code, errOut)
	}
}

// TestRetry_NotWritten: a write_unconfirmed record is resent only after a
// person vouches that the target does not have it, and that is audited.
func TestRetry_NotWritten(t *testing.T) {
	fx := newStateFixture(t)
	key := testenv.ReferredCases(fx.sb)[0] + "-unconfirmed"
	st, err := state.Open(fx.state)
	if err != nil {
		t.Fatal(err)
	}
	run, err := st.StartRun(t.Context(), "cases_to_oscar", "h", "test", stateNow)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.BeginCreate(t.Context(), "cases_to_oscar", key, "payload-hash", run, stateNow); err != nil {
		t.Fatal(err)
	}
	err = st.CommitPage(t.Context(), engine.PageCommit{RunID: run, Pipeline: "cases_to_oscar", Now: stateNow, Outcomes: []engine.Outcome{
		{RecordKey: key, Action: engine.ActionFailed, Reason: "write_unconfirmed", Class: engine.ClassPermanent, Unconfirmed: true, At: stateNow}}})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := fx.cli(t, "retry", "--record", key, "--not-written", "--queue-only"); code != 2 || !strings.Contains(errOut, "--not-written needs --pipeline") {
		t.Errorf("--not-written without --pipeline: exit %d %q", code, errOut)
	}
	if out, errOut, code := fx.cli(t, "retry", "--pipeline", "cases_to_oscar", "--record", key, "--not-written", "--queue-only"); code != 0 {
		t.Fatalf("retry --not-written: exit %d\n%s%s", code, out, errOut)
	}
	ro := fx.store(t)
	if _, ok, _ := ro.CreateIntent(t.Context(), "cases_to_oscar", key); ok {
		t.Error("the unconfirmed create is still held after --not-written")
	}
	log, err := ro.AuditLog(t.Context(), "cases_to_oscar", 50)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range log {
		if e.Action == "create_confirmed_not_written" && e.RecordKey == key && e.Actor != "" {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit row for --not-written in %+v", log)
	}
}
