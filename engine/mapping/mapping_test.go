package mapping

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func registry(t testing.TB) *Registry {
	t.Helper()
	reg := NewRegistry()
	reg.Add(NewTable("province_owner", map[string]any{"12": "mgrpnh", "19": "mgrstg"}, false, MissFail, nil))
	reg.Add(NewTable("sex", map[string]any{"1": "male", "2": "female"}, false, MissNull, nil))
	reg.Add(NewTable("svc", map[string]any{"a": "A"}, true, MissDefault, "Not Specified"))
	reg.Add(NewTable("need", map[string]any{"x": "X"}, false, MissSkip, nil))
	rule, err := NewRule("agency", "agency-{org}", MissFail, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg.Add(rule)
	return reg
}

func TestJQ_Helpers(t *testing.T) {
	reg := registry(t)
	vars := &Vars{Vars: map[string]any{"module": "cp"}, Now: "2024-06-01T00:00:00Z", Cursor: "2024-01-01T00:00:00Z"}
	tests := []struct {
		name, src string
		in        any
		want      any
	}{
		{"table forward", `.code | lookup("province_owner")`, map[string]any{"code": "12"}, "mgrpnh"},
		{"table reverse", `"mgrstg" | rlookup("province_owner")`, nil, "19"},
		{"miss null", `"9" | lookup("sex")`, nil, nil},
		{"miss default, case-insensitive hit", `["A", "zz"] | map(lookup("svc"))`, nil, []any{"A", "Not Specified"}},
		{"rule forward", `"cif" | lookup("agency")`, nil, "agency-cif"},
		{"rule reverse", `"agency-cif" | rlookup("agency")`, nil, "cif"},
		{"ymd with slashes", `"2014/02/03" | ymd`, nil, "2014-02-03"},
		{"ymd of a time", `"2021-09-27T12:54:49.951Z" | ymd`, nil, "2021-09-27"},
		{"age", `"2010-06-02" | age($now)`, nil, 13},
		{"blank", `[null, "", " ", [], {}, 0] | map(blank)`, nil, []any{true, true, true, true, true, false}},
		{"vars and cursor", `[$vars.module, $cursor]`, nil, []any{"cp", "2024-01-01T00:00:00Z"}},
		{"unset variable is null", `$target_id`, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j, err := CompileJQ(tc.src, reg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := j.One(context.Background(), tc.in, vars)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestJQ_Errors(t *testing.T) {
	reg := registry(t)
	tests := []struct {
		name, src         string
		in                any
		compileErr        string
		line, col         int
		runErr            any // type to match with errors.As
		runErrNotContains string
	}{
		{name: "syntax error position", src: ".a | | .b", compileErr: "unexpected token", line: 1, col: 6},
		{name: "syntax error second line", src: ".a\n| .b )", compileErr: "unexpected token", line: 2, col: 6},
		{name: "undefined function", src: ".a | lower", compileErr: "function not defined"},
		{name: "unknown lookup", src: `.a | lookup("nope")`, compileErr: `unknown lookup "nope"`},
		{name: "miss fails", src: `"99" | lookup("province_owner")`, runErr: new(*MissError)},
		{name: "miss skips", src: `"q" | lookup("need")`, runErr: new(*SkipError)},
		{name: "fail with a reason, not the value", src: `.code | if test("^[0-9]+$") then . else fail("location_code_invalid") end`,
			in: map[string]any{"code": "NaN-Sokha"}, runErr: new(*FailError), runErrNotContains: "Sokha"},
		{name: "fail needs a code", src: `fail("Not a code")`, runErrNotContains: "\x00"},
		{name: "type error hides value", src: `.name | keys`, in: map[string]any{"name": "Sokha Chan"}, runErrNotContains: "Sokha"},
		{name: "two values", src: `.[]`, in: []any{1, 2}, runErrNotContains: "\x00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j, err := CompileJQ(tc.src, reg)
			if tc.compileErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.compileErr) {
					t.Fatalf("compile error = %v, want %q", err, tc.compileErr)
				}
				var se *SyntaxError
				if tc.line > 0 && (!errors.As(err, &se) || se.Line != tc.line || se.Col != tc.col) {
					t.Errorf("position = %+v, want %d:%d", se, tc.line, tc.col)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = j.One(context.Background(), tc.in, nil)
			if err == nil {
				t.Fatal("no error")
			}
			switch target := tc.runErr.(type) {
			case **MissError:
				if !errors.As(err, target) {
					t.Errorf("error %v is not a MissError", err)
				}
			case **SkipError:
				if !errors.As(err, target) {
					t.Errorf("error %v is not a SkipError", err)
				}
			case **FailError:
				if !errors.As(err, target) || (*target).Reason != "location_code_invalid" {
					t.Errorf("error %v is not a FailError with its reason", err)
				}
			}
			if tc.runErrNotContains != "" && strings.Contains(err.Error(), tc.runErrNotContains) {
				t.Errorf("error %q leaks record content", err)
			}
		})
	}
}

func TestExpr_Compile(t *testing.T) {
	reg := registry(t)
	tests := []struct {
		name, src string
		kind      ExprKind
		wantErr   string
		rec       map[string]any
		want      bool
	}{
		{name: "consent", src: "record.consent_for_services == true", kind: ExprBool, rec: map[string]any{"consent_for_services": true}, want: true},
		{name: "missing key is nil", src: "record.nope == nil", kind: ExprBool, rec: map[string]any{}, want: true},
		{name: "any over services", src: `any(record.services_section ?? [], .service_response_type == "referral_to_oscar")`, kind: ExprBool,
			rec: map[string]any{"services_section": []any{map[string]any{"service_response_type": "referral_to_oscar"}}}, want: true},
		{name: "lookup in expr", src: `lookup("agency", "cif") == "agency-cif"`, kind: ExprBool, want: true},
		{name: "unknown variable", src: "consent == true", kind: ExprBool, wantErr: "unknown name consent"},
		{name: "not bool", src: `"yes"`, kind: ExprBool, wantErr: "expected bool"},
		{name: "unknown lookup", src: `lookup("nope", 1) != nil`, kind: ExprBool, wantErr: `unknown lookup "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := CompileExpr(tc.src, tc.kind, reg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Bool(&Env{Record: tc.rec})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTemplate(t *testing.T) {
	tests := []struct {
		src, want string
		in        any
		v         *Vars
		err       string
	}{
		{src: "/api/v2/cases/{.id}/referrals", in: map[string]any{"id": "abc"}, want: "/api/v2/cases/abc/referrals"},
		{src: "{$cursor}..", v: &Vars{Cursor: "2024-01-01T00:00:00Z"}, want: "2024-01-01T00:00:00Z.."},
		{src: "{{literal}} {.n}", in: map[string]any{"n": 3.0}, want: "{literal} 3"},
		{src: "{ {a: 1} | .a }", want: "1"},
		// A JSON filter in a query: braces nest, and a brace inside a
		// string does not close the hole.
		{src: `{ {where: {cid: .cid}, include: [{relation: "interventions", scope: {order: "vstdate DESC"}}], note: "}{"} | tojson }`,
			in:   map[string]any{"cid": "1417500060321"},
			want: `{"include":[{"relation":"interventions","scope":{"order":"vstdate DESC"}}],"note":"}{","where":{"cid":"1417500060321"}}`},
		{src: "/x/{.obj}", in: map[string]any{"obj": map[string]any{}}, err: "not a scalar"},
		{src: "/x/{.a", err: "unclosed"},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			tpl, err := CompileTemplate(tc.src, nil)
			if err == nil {
				var got string
				got, err = tpl.Render(context.Background(), tc.in, tc.v)
				if err == nil && got != tc.want {
					t.Errorf("got %q, want %q", got, tc.want)
				}
			}
			if (err != nil) != (tc.err != "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("error = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestMapping_Apply(t *testing.T) {
	reg := registry(t)
	jq := func(s string) *JQ {
		j, err := CompileJQ(s, reg)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	m := &Mapping{Fields: []Field{
		{Name: "id", Value: &Value{JQ: jq(".case_id")}},
		{Name: "fixed", Value: &Value{Const: true, HasConst: true}},
		{Name: "mobile", Value: &Value{JQ: jq(".phone"), Default: "000000000", HasDefault: true}},
		{Name: "gone", Value: &Value{JQ: jq(".nothing"), OmitEmpty: true}},
		{Name: "owner", Value: &Value{Fields: []Field{{Name: "user", Value: &Value{JQ: jq(`.loc[0:2] | lookup("province_owner")`)}}}}},
		{Name: "services", Value: &Value{Each: jq(".services"), Map: []Field{{Name: "uuid", Value: &Value{JQ: jq(".unique_id")}}}}},
	}}
	in := map[string]any{"case_id": "c1", "loc": "1203", "services": []any{map[string]any{"unique_id": "s1"}, map[string]any{"unique_id": "s2"}}}
	got, err := m.Apply(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": "c1", "fixed": true, "mobile": "000000000", "owner": map[string]any{"user": "mgrpnh"},
		"services": []any{map[string]any{"uuid": "s1"}, map[string]any{"uuid": "s2"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	in["loc"] = "9903"
	_, err = m.Apply(context.Background(), in, nil)
	var fe *FieldError
	var miss *MissError
	if !errors.As(err, &fe) || fe.Field != "owner.user" || !errors.As(err, &miss) || miss.Lookup != "province_owner" {
		t.Errorf("error = %v, want a province_owner miss on owner.user", err)
	}
}

// FuzzMapping maps arbitrary JSON-shaped records: no panic, and every error
// names the field it happened in.
func FuzzMapping(f *testing.F) {
	f.Add(`{"case_id":"c1","loc":"12","services":[{"unique_id":"s"}]}`)
	f.Add(`{"case_id":1,"loc":null,"services":"x"}`)
	f.Add(`[]`)
	reg := registry(f)
	m := &Mapping{Fields: []Field{
		{Name: "id", Value: &Value{JQ: MustCompile(f, `.case_id`, reg)}},
		{Name: "owner", Value: &Value{JQ: MustCompile(f, `.loc[0:2] | lookup("province_owner")`, reg)}},
		{Name: "services", Value: &Value{Each: MustCompile(f, `.services`, reg), Map: []Field{{Name: "uuid", Value: &Value{JQ: MustCompile(f, ".unique_id", reg)}}}}},
	}}
	f.Fuzz(func(t *testing.T, js string) {
		in, err := decodeJSON(js)
		if err != nil {
			return
		}
		_, err = m.Apply(context.Background(), in, nil)
		var fe *FieldError
		if err != nil && !errors.As(err, &fe) {
			t.Errorf("error without a field: %v", err)
		}
	})
}

func MustCompile(tb testing.TB, src string, reg *Registry) *JQ {
	tb.Helper()
	j, err := CompileJQ(src, reg)
	if err != nil {
		tb.Fatal(err)
	}
	return j
}
