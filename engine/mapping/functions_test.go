package mapping

import (
	"context"
	"errors"
	"testing"
)

func TestJQ_UUID5(t *testing.T) {
	j, err := CompileJQ(`uuid5("6ba7b810-9dad-11d1-80b4-00c04fd430c8")`, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org").
	got, err := j.One(context.Background(), "python.org", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got != "886313e1-3b8a-5372-9b90-0c9aee199e5d" {
		t.Errorf("uuid5 = %v", got)
	}
	for _, tc := range []struct {
		src string
		in  any
	}{
		{`uuid5("not-a-uuid")`, "x"},
		{`uuid5("6ba7b810-9dad-11d1-80b4-00c04fd430c8")`, 12},
	} {
		j, err := CompileJQ(tc.src, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := j.One(context.Background(), tc.in, nil); err == nil {
			t.Errorf("%s on %v: want an error", tc.src, tc.in)
		}
	}
}

func TestMapping_SkipWithReason(t *testing.T) {
	reg := NewRegistry()
	m := &Mapping{Fields: []Field{
		{Name: "a", Value: &Value{JQ: mustCompile(t, `.a`, reg)}},
		{Name: "b", Value: &Value{JQ: mustCompile(t, `if .linked then skip("already_linked") else .b end`, reg)}},
	}}
	out, err := m.Apply(context.Background(), map[string]any{"a": 1.0, "b": "x"}, &Vars{})
	if err != nil || out["b"] != "x" {
		t.Fatalf("no skip: %v %v", out, err)
	}
	_, err = m.Apply(context.Background(), map[string]any{"linked": true}, &Vars{})
	var skip *SkipError
	if !errors.As(err, &skip) || skip.Reason != "already_linked" {
		t.Fatalf("want SkipError already_linked, got %v", err)
	}
	bad := mustCompile(t, `skip("Not A Code")`, reg)
	if _, err := bad.One(context.Background(), nil, &Vars{}); err == nil || errors.As(err, &skip) {
		t.Errorf("a malformed reason must be an error, not a skip: %v", err)
	}
}

func mustCompile(t *testing.T, src string, reg *Registry) *JQ {
	t.Helper()
	j, err := CompileJQ(src, reg)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestLocalToUTC(t *testing.T) {
	tests := []struct {
		in, zone string
		want     any
		wantErr  bool
	}{
		{"2024-03-11 00:20:00", "+07:00", "2024-03-10T17:20:00Z", false},
		{"2024-03-11T00:20", "Asia/Bangkok", "2024-03-10T17:20:00Z", false},
		{"2024-03-11", "+0700", "2024-03-10T17:00:00Z", false},
		{"2024-07-01 12:00:00", "Europe/Paris", "2024-07-01T10:00:00Z", false}, // summer time
		{"2024-01-01 12:00:00", "-03:30", "2024-01-01T15:30:00Z", false},
		{"2024-01-01 12:00:00", "UTC", "2024-01-01T12:00:00Z", false},
		{"", "+07:00", nil, false},
		{"11/03/2024", "+07:00", nil, true},
		{"2024-03-11 00:20:00", "Mars/Olympus", nil, true},
		{"2024-03-11 00:20:00", "", nil, true},
		{"2024-03-11 00:20:00", "+25:00", nil, true},
	}
	for _, tc := range tests {
		j, err := CompileJQ(`local_to_utc($vars.zone)`, nil)
		if err != nil {
			t.Fatal(err)
		}
		var in any = tc.in
		if tc.in == "" {
			in = nil
		}
		got, err := j.One(t.Context(), in, &Vars{Vars: map[string]any{"zone": tc.zone}})
		if (err != nil) != tc.wantErr || !tc.wantErr && got != tc.want {
			t.Errorf("%q in %q: got %v, %v; want %v (error %v)", tc.in, tc.zone, got, err, tc.want, tc.wantErr)
		}
	}
}
