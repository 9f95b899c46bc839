package main

import (
	"strings"
	"testing"
	"time"

	"casesync/engine"
)

func TestCursor(t *testing.T) {
	fx := newStateFixture(t)
	var shown cursorJSON
	fx.jsonOut(t, &shown, "cursor", "cases_to_oscar")
	if shown.Cursor == nil || shown.Updated == nil || shown.ReadsFrom == "" {
		t.Fatalf("cursor json = %+v", shown)
	}
	was, err := engine.ParseCursor(*shown.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	out, _, code := fx.cli(t, "cursor", "cases_to_oscar")
	if code != 0 || !strings.Contains(out, "cases_to_oscar: cursor "+*shown.Cursor) || !strings.Contains(out, "next run reads from "+shown.ReadsFrom+" (overlap 1s)") {
		t.Errorf("cursor text:\n%s", out)
	}

	// Rewind by a week, then set a date; each audited.
	out, errOut, code := fx.cli(t, "cursor", "cases_to_oscar", "--rewind", "7d")
	want := engine.FormatCursor(was.Add(-7 * 24 * time.Hour))
	if code != 0 || !strings.Contains(out, "-> "+want+" (audited as cli:tester)") {
		t.Errorf("--rewind 7d: exit %d, want cursor %s\n%s%s", code, want, out, errOut)
	}
	var set cursorJSON
	fx.jsonOut(t, &set, "cursor", "cases_to_oscar", "--set", "2024-05-01")
	if set.Cursor == nil || *set.Cursor != "2024-05-01T00:00:00Z" || set.Previous == nil || *set.Previous != want || set.ReadsFrom != "2024-04-30T23:59:59Z" {
		t.Errorf("--set json = %+v", set)
	}
	audit, err := fx.store(t).AuditLog(t.Context(), "cases_to_oscar", 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range audit {
		if e.Action == "cursor_set" && e.Actor == "cli:tester" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d cursor_set audit rows by cli:tester, want 2: %+v", n, audit)
	}

	// The next run reads from the new cursor: every referred case again,
	// none written twice (the fixture's bad record fails again: exit 1).
	if out, errOut, code := fx.cli(t, "sync", "cases_to_oscar"); code != 1 || !strings.Contains(out, "created 0") {
		t.Errorf("sync after the rewind: exit %d\n%s%s", code, out, errOut)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"future", []string{"--set", "2100-01-01"}, "is in the future"},
		{"not a time", []string{"--set", "yesterday"}, "--set"},
		{"both", []string{"--set", "2024-01-01", "--rewind", "1h"}, "not both"},
		{"bad duration", []string{"--rewind", "a week"}, "is not a duration"},
		{"negative", []string{"--rewind", "-1h"}, "positive"},
		{"unknown pipeline", []string{"--rewind", "1h", "--pipeline-is-an-argument"}, "unknown flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := fx.cli(t, append([]string{"cursor", "cases_to_oscar"}, tc.args...)...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, %q; want 2 and %q", code, errOut, tc.want)
			}
		})
	}
	if _, errOut, code := fx.cli(t, "cursor", "nope"); code != 2 || !strings.Contains(errOut, `no pipeline "nope"`) {
		t.Errorf("unknown pipeline: exit %d, %q", code, errOut)
	}
}
