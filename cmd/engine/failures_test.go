package main

import (
	"strings"
	"testing"
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
