package mapping

import (
	"context"
	"fmt"
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

// TestJQ_FastPathHelpersMatchGojq: "PATH | ymd" and "(PATH // \"x\") |
// lookup(\"name\")" skip gojq too; values, errors and the run's lookup
// miss counts must be gojq's.
func TestJQ_FastPathHelpersMatchGojq(t *testing.T) {
	newReg := func() *Registry {
		reg := NewRegistry()
		reg.Add(NewTable("sex", map[string]any{"m": "male", "f": "female", "": "blank", "1": 2.0}, false, MissNull, nil))
		reg.Add(NewTable("strict", map[string]any{"m": "male"}, false, MissFail, nil))
		reg.Add(NewTable("skipping", map[string]any{"m": "male"}, false, MissSkip, nil))
		reg.Add(NewTable("dflt", map[string]any{"m": "male"}, true, MissDefault, "other"))
		rule, err := NewRule("agency", "agency-{org}", MissNull, nil)
		if err != nil {
			t.Fatal(err)
		}
		reg.Add(rule)
		return reg
	}
	inputs := []any{nil, "s", 1.0, false, []any{1.0}, map[string]any{},
		map[string]any{"a": nil}, map[string]any{"a": false}, map[string]any{"a": "m"}, map[string]any{"a": "M"},
		map[string]any{"a": "f"}, map[string]any{"a": "x"}, map[string]any{"a": ""}, map[string]any{"a": 1.0},
		map[string]any{"a": "agency-ngo1"}, map[string]any{"a": "ngo1"}, map[string]any{"a": []any{"m"}},
		map[string]any{"a": "2024-03-11T10:00:00Z"}, map[string]any{"a": "2024/03/11"}, map[string]any{"a": "2024-13-01"},
		map[string]any{"a": "24-1-1"}, map[string]any{"a": map[string]any{"b": "m"}}, map[string]any{"a": "str"}}
	progs := []string{
		".a | ymd", "$record.a | ymd", ".a.b | ymd",
		`.a | lookup("sex")`, `.a | rlookup("sex")`, `.a|lookup( "strict" )`, `.a | lookup("skipping")`, `.a | lookup("dflt")`,
		`.a | rlookup("dflt")`, `.a | lookup("agency")`, `.a | rlookup("agency")`, `$record.a.b | lookup("sex")`,
		`(.a // "") | lookup("sex")`, `(.a // "m") | lookup("strict")`, `($record.a.b // "") | lookup("sex")`,
		`(.a.b // "") | lookup("sex")`, `(.a // "x") | ymd`,
	}
	for _, src := range progs {
		for _, in := range inputs {
			fastReg, slowReg := newReg(), newReg()
			j, err := CompileJQ(src, fastReg)
			if err != nil {
				t.Fatalf("%q: %v", src, err)
			}
			if j.path == nil || j.then == nil {
				t.Fatalf("%q not on the fast path", src)
			}
			s, err := CompileJQ(src, slowReg)
			if err != nil {
				t.Fatal(err)
			}
			s.path, s.then = nil, nil
			fastRT, slowRT := NewRuntime(context.Background(), nil), NewRuntime(context.Background(), nil)
			fast, ferr := j.One(context.Background(), in, &Vars{Record: in, Runtime: fastRT})
			want, werr := s.One(context.Background(), in, &Vars{Record: in, Runtime: slowRT})
			if fmt.Sprint(ferr) != fmt.Sprint(werr) || !cmp.Equal(fast, want) {
				t.Errorf("%q on %v: fast (%v, %v), gojq (%v, %v)", src, in, fast, ferr, want, werr)
			}
			if !cmp.Equal(fastRT.Misses(), slowRT.Misses()) {
				t.Errorf("%q on %v: misses %v, gojq %v", src, in, fastRT.Misses(), slowRT.Misses())
			}
		}
	}
	reg := newReg()
	if err := reg.AddDefs(`def ymd: "mine";`); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{".a | ymd", ".a | ascii", `.a | lookup($x)`, `(.a // "") | ymd | ymd`, `(.a // .b) | ymd`, `.a | ymd // 1`} {
		j, err := CompileJQ(src, reg)
		if err != nil {
			continue
		}
		if j.then != nil {
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

// TestMapping_SameProgramRunsOnce: two fields with one pure program get
// its value from one run, each with its own default and omit_empty; a
// program with an effect (a lookup counting its misses) still runs per
// field.
func TestMapping_SameProgramRunsOnce(t *testing.T) {
	reg := NewRegistry()
	reg.Add(NewTable("sex", map[string]any{"m": "male"}, false, MissNull, nil))
	jq := func(src string) *JQ {
		j, err := CompileJQ(src, reg)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	const prog = `.a | if . == null then null else ascii_downcase end`
	m := &Mapping{Fields: []Field{
		{Name: "x", Value: &Value{JQ: jq(prog)}},
		{Name: "y", Value: &Value{JQ: jq(prog), HasDefault: true, Default: "dflt"}},
		{Name: "z", Value: &Value{JQ: jq(prog), OmitEmpty: true}},
		{Name: "l1", Value: &Value{JQ: jq(`.b | . + "" | lookup("sex")`)}},
		{Name: "l2", Value: &Value{JQ: jq(`.b | . + "" | lookup("sex")`)}},
	}}
	if !m.Fields[0].Value.JQ.pure || m.Fields[3].Value.JQ.pure {
		t.Fatal("purity: a plain program is pure, a lookup is not")
	}
	for _, tc := range []struct {
		in     map[string]any
		want   map[string]any
		misses int
	}{
		{map[string]any{"a": "AB", "b": "m"}, map[string]any{"x": "ab", "y": "ab", "z": "ab", "l1": "male", "l2": "male"}, 0},
		{map[string]any{"b": "q"}, map[string]any{"x": nil, "y": "dflt", "l1": nil, "l2": nil}, 2},
	} {
		rt := NewRuntime(context.Background(), nil)
		got, err := m.Apply(context.Background(), tc.in, &Vars{Runtime: rt})
		if err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(got, tc.want) {
			t.Errorf("%v: got %v, want %v", tc.in, got, tc.want)
		}
		if n := rt.Misses()["sex"]; n != tc.misses {
			t.Errorf("%v: %d misses, want %d (one per field)", tc.in, n, tc.misses)
		}
	}
	if m.same == nil || m.same[1] != 0 || m.same[2] != 0 || m.same[4] != -1 {
		t.Errorf("same = %v, want fields 1 and 2 paired with 0 and the lookups apart", m.same)
	}
}
