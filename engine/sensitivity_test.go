package engine

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"casesync/engine/mapping"
)

func TestScrubber(t *testing.T) {
	plan := &Plan{Spec: DeploymentSpec{Sensitivity: map[string]string{
		"name_first": "pii", "name_last": "pii", "diagnosis": "health", "sex": "pii", "case_id": "none", "national_id_no": "pii",
	}}}
	rec := map[string]any{
		"case_id": "c-1001", "name_first": "Sokha", "name_last": "Chan", "sex": "f",
		"health": map[string]any{"diagnosis": "tuberculosis"}, "national_id_no": "1-1037-00012-34-5",
	}
	s := plan.Scrubber(rec)
	tests := []struct{ in, want string }{
		{"client Sokha Chan (c-1001) refused", "client [pii] [pii] (c-1001) refused"},
		{"tuberculosis is not a service", "[health] is not a service"},
		{`GET /people/findOne?filter={"cid":"1103700012345"}: status 500`, `GET /people/findOne?filter={"cid":"[pii]"}: status 500`},
		{"id 1-1037-00012-34-5 unknown", "id [pii] unknown"},
		// Values shorter than three characters stay: "f" is in every word.
		{"field sex: f", "field sex: f"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := s.String(tc.in); got != tc.want {
			t.Errorf("%q → %q, want %q", tc.in, got, tc.want)
		}
	}
	if (&Plan{}).Scrubber(rec) != nil {
		t.Error("a deployment without classes needs no scrubber")
	}
}

func TestSourceFields(t *testing.T) {
	v := &mapping.Value{Fields: []mapping.Field{
		{Name: "a", Value: &mapping.Value{JQ: mapping.MustJQ(`def f: .hidden_in_def; $record.name_first + " " + .name_last`)}},
		{Name: "b", Value: &mapping.Value{JQ: mapping.MustJQ(`$vars.default_mobile // .owned_by_phone`)}},
	}}
	got := SourceFields(v)
	want := []string{"name_first", "name_last", "owned_by_phone"}
	if len(got) != len(want) {
		t.Fatalf("SourceFields = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("SourceFields = %v, want %v", got, want)
		}
	}
}

// A line logged with a record's context (a connector's request line)
// carries none of the record's classified values; a line without one is
// left as it is.
func TestScrubLogger(t *testing.T) {
	plan := &Plan{Spec: DeploymentSpec{Sensitivity: map[string]string{"national_id_no": "pii", "name_first": "pii"}}}
	sc := plan.Scrubber(map[string]any{"national_id_no": "1-1037-00012-34-5", "name_first": "Somchai"})
	var buf bytes.Buffer
	log := ScrubLogger(slog.New(slog.NewJSONHandler(&buf, nil)))
	ctx := WithScrubber(context.Background(), sc)
	log.With("connector", "his").LogAttrs(ctx, slog.LevelInfo, "retrying request for Somchai",
		slog.String("path", `/people/findOne?filter={"cid":"1103700012345"}`),
		slog.Any("error", errors.New("Somchai: status 503")),
		slog.Group("req", slog.String("q", "cid=1103700012345")))
	log.InfoContext(context.Background(), "no record", "name", "Somchai")
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if strings.Contains(lines[0], "Somchai") || strings.Contains(lines[0], "1103700012345") || strings.Count(lines[0], "[pii]") != 4 {
		t.Errorf("record line not scrubbed: %s", lines[0])
	}
	if !strings.Contains(lines[1], "Somchai") {
		t.Errorf("a line without a record's context changed: %s", lines[1])
	}
	if ScrubLogger(log) != log {
		t.Error("a scrubbing logger is wrapped twice")
	}
}

// TestJQTextOf_SameAsWholeSource: reading the shared definitions once
// must give what parsing them with each program gave.
func TestJQTextOf_SameAsWholeSource(t *testing.T) {
	reg := mapping.NewRegistry()
	if err := reg.AddDefs(`def name: .name_first + " " + .name_last; def who: name | ascii_downcase; def far: .x.y; def own: .shared;`); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{".a", "who", "name, far", "def own: .mine; own", "def who: .other; who | far", `"\(.b) who"`, "[.[] | far]"} {
		j, err := mapping.CompileJQ(src, reg)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if got, want := jqTextOf(j), JQText(j.Source()); got != want {
			t.Errorf("%q: %q, want %q", src, got, want)
		}
	}
}
