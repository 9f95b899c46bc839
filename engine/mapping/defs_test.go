package mapping

import (
	"context"
	"errors"
	"testing"
)

// TestAddDefs: shared definitions are callable from every later program,
// may call lookup and earlier blocks, may be shadowed by a program's own
// definition; a block with a mistake says where inside the block and
// adds nothing.
func TestAddDefs(t *testing.T) {
	newReg := func() *Registry {
		r := NewRegistry()
		r.Add(NewTable("sex", map[string]any{"m": "male"}, false, MissNull, nil))
		return r
	}
	tests := []struct {
		name    string
		blocks  []string
		program string
		input   any
		want    any
		errIn   int    // index of the block that fails; -1 none
		errLine int    // its line:col inside the block, 0 when the message has none
		errCol  int    //
		errMsg  string // the failing block's message
	}{
		{"a helper called by a program", []string{"def dbl: . * 2;"}, ".n | dbl", map[string]any{"n": 3.0}, 6.0, -1, 0, 0, ""},
		{"a later block calls an earlier one", []string{"def dbl: . * 2;", "def quad: dbl | dbl;"}, ".n | quad", map[string]any{"n": 1.0}, 4.0, -1, 0, 0, ""},
		{"lookup inside a definition", []string{`def sex_name: lookup("sex");`}, ".s | sex_name", map[string]any{"s": "m"}, "male", -1, 0, 0, ""},
		{"a program's own definition shadows", []string{"def dbl: . * 2;"}, "def dbl: . * 10; .n | dbl", map[string]any{"n": 1.0}, 10.0, -1, 0, 0, ""},
		{"a syntax error placed in the block", []string{"def a: 1;\ndef b: a +;"}, ".", nil, nil, 0, 2, 11, `unexpected token ";"`},
		{"only definitions", []string{"def a: 1; .x"}, ".", nil, nil, 0, 1, 13, "shared jq definitions hold only definitions (def name: body;), each ended by ;"},
		{"an undefined function", []string{"def a: nosuch;"}, ".", nil, nil, 0, 0, 0, "function not defined: nosuch/0"},
		{"a failed block adds nothing", []string{"def a: nosuch;"}, "a", nil, nil, 0, 0, 0, "function not defined: nosuch/0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newReg()
			for i, b := range tc.blocks {
				err := r.AddDefs(b)
				if i != tc.errIn {
					if err != nil {
						t.Fatalf("block %d: %v", i, err)
					}
					continue
				}
				var se *SyntaxError
				if !errors.As(err, &se) {
					t.Fatalf("block %d: want a SyntaxError, got %v", i, err)
				}
				if se.Line != tc.errLine || se.Col != tc.errCol || se.Msg != tc.errMsg {
					t.Fatalf("block %d: got %d:%d %q, want %d:%d %q", i, se.Line, se.Col, se.Msg, tc.errLine, tc.errCol, tc.errMsg)
				}
			}
			if tc.errIn >= 0 {
				if _, err := CompileJQ(tc.program, r); tc.program != "." && err == nil {
					t.Fatalf("%s compiled with the failed block's definitions", tc.program)
				}
				return
			}
			j, err := CompileJQ(tc.program, r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := j.One(context.Background(), tc.input, &Vars{Runtime: &Runtime{}})
			if err != nil || got != tc.want {
				t.Fatalf("got %v (%v), want %v", got, err, tc.want)
			}
		})
	}
}

// A program compiled without the registry that holds the definitions
// cannot call them: they belong to one deployment.
func TestAddDefs_PerRegistry(t *testing.T) {
	r := NewRegistry()
	if err := r.AddDefs("def dbl: . * 2;"); err != nil {
		t.Fatal(err)
	}
	if _, err := CompileJQ(".n | dbl", NewRegistry()); err == nil {
		t.Fatal("another registry's program called dbl")
	}
}

// Source carries the shared definitions a program was compiled with, so
// analyses of what it reads (sensitivity, the manifest) follow its helpers.
func TestAddDefs_Source(t *testing.T) {
	r := NewRegistry()
	if err := r.AddDefs("def village: .location_current_village_code;"); err != nil {
		t.Fatal(err)
	}
	j, err := CompileJQ("village | tostring", r)
	if err != nil {
		t.Fatal(err)
	}
	if j.String() != "village | tostring" {
		t.Errorf("String = %q, want the program as written", j.String())
	}
	if want := "def village: .location_current_village_code;\nvillage | tostring"; j.Source() != want {
		t.Errorf("Source = %q, want %q", j.Source(), want)
	}
}
