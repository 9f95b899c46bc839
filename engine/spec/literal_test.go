package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// TestLiteralMap_AgreesWithCUE: literalMap places errors inside program
// strings by reading the literal itself; for every string literal of the
// shipped specs and libraries (raw #"…"#, multi-line """ with stripped
// indentation, escapes) it must decode exactly what CUE's own
// literal.Unquote decodes, and place every byte inside the literal. A CUE
// upgrade that changes string syntax fails here, not as positions that
// quietly fall back to the start of the string.
func TestLiteralMap_AgreesWithCUE(t *testing.T) {
	var files []string
	err := filepath.WalkDir("../../specs", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".cue") {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("no spec files: %v", err)
	}
	checked := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(file, data)
		if err != nil {
			t.Fatal(err)
		}
		ast.Walk(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			want, err := literal.Unquote(lit.Value)
			if err != nil {
				return true // an interpolation's fragment: not a whole literal
			}
			checked++
			start := lit.Pos()
			m := literalMap(data, start.Offset(), want)
			if m == nil {
				t.Errorf("%s:%d:%d: literalMap cannot follow the literal CUE decodes as %q", file, start.Line(), start.Column(), want)
				return true
			}
			endLine := start.Line() + strings.Count(lit.Value, "\n")
			for i, p := range m {
				if p.line < start.Line() || p.line > endLine {
					t.Errorf("%s:%d:%d: byte %d placed on line %d, outside the literal", file, start.Line(), start.Column(), i, p.line)
					break
				}
			}
			return true
		}, nil)
	}
	if checked < 100 {
		t.Errorf("only %d string literals checked", checked)
	}
}
