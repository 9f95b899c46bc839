package main

import (
	"strings"
	"testing"
	"time"

	"casesync/engine"
	"casesync/internal/state"
)

func TestFailures(t *testing.T) {
	fx := newStateFixture(t)

	out, errOut, code := fx.cli(t, "failures")
	if code != 0 {
		t.Fatalf("failures: exit %d\n%s", code, errOut)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "PIPELINE") || !strings.Contains(lines[0], "NEXT RETRY") {
		t.Errorf("failures header: %q", lines[0])
	}
	row := lines[1]
	for _, want := range []string{"cases_to_oscar", fx.bad, " 1 ", "map_error", "data", "next run", " no ", "date_of_birth"} {
		if !strings.Contains(row, want) {
			t.Errorf("failures row lacks %q: %q", want, row)
		}
	}
	if strings.Contains(out, "2015-13-45") {
		t.Error("failures shows the record's value")
	}
	if !strings.Contains(out, "1 record(s) queued, 0 parked") {
		t.Errorf("failures summary missing:\n%s", out)
	}

	var got []failureJSON
	fx.jsonOut(t, &got, "failures", "--pipeline", "cases_to_oscar")
	if len(got) != 1 {
		t.Fatalf("failures json: %d items, want 1", len(got))
	}
	f := got[0]
	if f.RecordKey != fx.bad || f.Attempts != 1 || f.Reason != "map_error" || f.Class != "data" || f.Parked || f.NextRetry == nil || f.LastError == "" {
		t.Errorf("failures json = %+v", f)
	}

	// Fixing the source clears it: the next run re-reads the record.
	fx.sb.Primero.Touch(fx.bad, map[string]any{"date_of_birth": "2015-01-02"})
	if _, errOut, code := fx.cli(t, "sync", "cases_to_oscar"); code != 0 {
		t.Fatalf("sync: exit %d\n%s", code, errOut)
	}
	out, _, code = fx.cli(t, "failures")
	if code != 0 || !strings.Contains(out, "no failures") {
		t.Errorf("after the fix: exit %d\n%s", code, out)
	}
}

// TestFailures_NeutralisesControlCharacters: a record key or remote
// message holding terminal escapes, a carriage return or a bidi override
// is shown with them written out, so it cannot clear the screen, retitle
// the window or forge a row.
func TestFailures_NeutralisesControlCharacters(t *testing.T) {
	fx := newStateFixture(t)
	ctx := t.Context()
	st, err := state.Open(fx.state)
	if err != nil {
		t.Fatal(err)
	}
	at := stateNow.Add(-time.Hour)
	run, err := st.StartRun(ctx, "cases_to_oscar", "h", "test", at)
	if err != nil {
		t.Fatal(err)
	}
	evilKey := "case-\x1b[2J\x1b]0;pwned\x07"
	if err := st.CommitPage(ctx, engine.PageCommit{RunID: run, Pipeline: "cases_to_oscar", Now: at, Outcomes: []engine.Outcome{{
		RecordKey: evilKey, Action: engine.ActionFailed, Reason: "http_422", Class: engine.ClassPermanent,
		Error: "refused\r\ncases_to_oscar  forged-row \u202egnp.exe"}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishRun(ctx, run, "failed", engine.Counts{Read: 1, Failed: 1}, "1 record failed\x1b[31m", at); err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, args := range [][]string{{"failures"}, {"runs"}} {
		out, errOut, code := fx.cli(t, args...)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", args[0], code, errOut)
		}
		if i := strings.IndexAny(out, "\x1b\x07\r\u202e"); i >= 0 {
			t.Errorf("%s prints a raw control character at byte %d:\n%q", args[0], i, out)
		}
	}
	out, _, _ := fx.cli(t, "failures")
	if !strings.Contains(out, `case-\x1b[2J\x1b]0;pwned\x07`) || !strings.Contains(out, `refused\x0d\x0acases_to_oscar`) {
		t.Errorf("failures does not show the key and message with their escapes written out:\n%s", out)
	}
}
