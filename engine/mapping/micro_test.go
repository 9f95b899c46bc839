package mapping

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestJQ_FastPathMatchesGojq: plain paths skip gojq; they must answer
// exactly as gojq does, errors included.
func TestJQ_FastPathMatchesGojq(t *testing.T) {
	inputs := []any{nil, "s", 1.0, []any{1.0}, map[string]any{}, map[string]any{"a": nil},
		map[string]any{"a": map[string]any{"b": "x"}}, map[string]any{"a": "str"}, map[string]any{"a": []any{}}}
	// Each input is tried as the program's input and as every variable
	// a path may start from.
	varsWith := func(in any) []*Vars {
		m, _ := in.(map[string]any)
		return []*Vars{nil, {}, {Record: in, Payload: in, Target: in, Response: in, Key: in, TargetID: in,
			Transaction: in, Delivery: in, Outcome: in, Vars: m}, {Cursor: "c", Now: "n"}}
	}
	for _, src := range []string{".a", ".a.b", " .a.b ", "$record.a", "$record.a.b", "$vars.a", "$payload.a.b",
		"$target.a", "$response.a", "$key.a", "$target_id.a", "$transaction.a", "$delivery.a", "$outcome.a", "$cursor.a", "$now.a"} {
		j := MustCompile(t, src, nil)
		if j.path == nil {
			t.Fatalf("%q not on the fast path", src)
		}
		for _, in := range inputs {
			for _, v := range varsWith(in) {
				fast, ferr := j.One(context.Background(), in, v)
				slow := &JQ{src: j.src, code: j.code, vars: j.vars}
				want, werr := slow.One(context.Background(), in, v)
				if (ferr != nil) != (werr != nil) || !cmp.Equal(fast, want) {
					t.Errorf("%q on %v with %+v: fast (%v, %v), gojq (%v, %v)", src, in, v, fast, ferr, want, werr)
				}
			}
		}
	}
	for _, src := range []string{".a | .b", `.["a"]`, "$__rt.a", "$record", ". as $record | $record.a"} {
		if MustCompile(t, src, nil).path != nil {
			t.Errorf("%q must run in gojq", src)
		}
	}
}

func BenchmarkMicro_OneField(b *testing.B) {
	j := MustCompile(b, ".case_id", NewRegistry())
	rec := map[string]any{"case_id": "x"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		j.One(ctx, rec, nil)
	}
}
