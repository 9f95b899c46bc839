package testenv

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The tests are self-contained (issue 15): every file a test or a fake
// reads is inside the module, so a test never skips because a fixture is
// absent and a fresh clone runs every test. These checks keep it so.

// fileCalls are the calls that touch the file system; a Skip guarded by
// one of them (or by their error) is a skip for a missing file.
var fileCalls = map[string]bool{
	"os.Stat": true, "os.Lstat": true, "os.ReadFile": true, "os.Open": true, "os.ReadDir": true,
	"os.IsNotExist": true, "filepath.Glob": true, "fs.Stat": true, "fs.ReadFile": true,
}

// missingWords are what a skip message says when a file is absent.
var missingWords = regexp.MustCompile(`(?i)fixture|absent|not present|not readable|does not exist|missing|not found`)

// sharedDir is the folder beside the module that round 1's tests read.
const sharedDir = "shared"

// finding is one problem at a position, for the table test's comparison.
type finding struct {
	Line int
	What string
}

// checkSource reports, in one Go file, every Skip that a missing file
// triggers and every path that leaves the module for the shared folder.
func checkSource(name string, src []byte) ([]finding, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, 0)
	if err != nil {
		return nil, err
	}
	var out []finding
	line := func(n ast.Node) int { return fset.Position(n.Pos()).Line }
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		readsFiles := false // set once a file-system call appears in the body, in source order
		var stack []ast.Node
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if n == nil {
				stack = stack[:len(stack)-1]
				return true
			}
			stack = append(stack, n)
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			callee := selector(call.Fun)
			if isFixtureRead(call) {
				readsFiles = true
			}
			if callee == "filepath.Join" && leavesForShared(call.Args) {
				out = append(out, finding{line(call), "reads the shared folder outside the module"})
			}
			method := callee[strings.LastIndex(callee, ".")+1:]
			if method != "Skip" && method != "Skipf" && method != "SkipNow" {
				return true
			}
			if msg := firstString(call.Args); msg != "" && missingWords.MatchString(msg) {
				out = append(out, finding{line(call), "skips for a missing file: " + msg})
				return true
			}
			for i := len(stack) - 2; i >= 0; i-- {
				st, ok := stack[i].(*ast.IfStmt)
				if !ok {
					continue
				}
				if mentionsFileCall(st.Init) || mentionsFileCall(st.Cond) || (readsFiles && mentionsIdent(st.Cond, "err")) {
					out = append(out, finding{line(call), "skips when a file cannot be read"})
				}
				break
			}
			return true
		})
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if s, err := strconv.Unquote(lit.Value); err == nil && (strings.Contains(s, "../"+sharedDir) || strings.Contains(s, sharedDir+"/fixtures")) {
				out = append(out, finding{line(lit), "reads the shared folder outside the module"})
			}
		}
		return true
	})
	return out, nil
}

// selector renders a callee as "pkg.Name" or "recv.Method".
func selector(e ast.Expr) string {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	if id, ok := sel.X.(*ast.Ident); ok {
		return id.Name + "." + sel.Sel.Name
	}
	return "." + sel.Sel.Name
}

// isFixtureRead: a file-system call, unless it reads a fixed absolute
// path (/proc/self/status): that is the platform, and a test may skip
// where the platform lacks it.
func isFixtureRead(c *ast.CallExpr) bool {
	if !fileCalls[selector(c.Fun)] {
		return false
	}
	return !strings.HasPrefix(firstString(c.Args), "/")
}

func firstString(args []ast.Expr) string {
	if len(args) == 0 {
		return ""
	}
	lit, ok := args[0].(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return ""
	}
	s, _ := strconv.Unquote(lit.Value)
	return s
}

// leavesForShared: filepath.Join(…, "..", …, "shared", …).
func leavesForShared(args []ast.Expr) bool {
	up := false
	for _, a := range args {
		switch firstString([]ast.Expr{a}) {
		case "..":
			up = true
		case sharedDir:
			if up {
				return true
			}
		}
	}
	return false
}

func mentionsFileCall(n ast.Node) bool {
	found := false
	if n == nil {
		return false
	}
	ast.Inspect(n, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok && isFixtureRead(c) {
			found = true
		}
		return !found
	})
	return found
}

func mentionsIdent(n ast.Node, name string) bool {
	found := false
	ast.Inspect(n, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok && id.Name == name {
			found = true
		}
		return !found
	})
	return found
}

// TestCheckSource: the checker finds each way round 1's tests skipped for
// an absent fixture, and passes the skips that are legitimate.
func TestCheckSource(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []finding
	}{
		{"skips for a missing file", "skips.go.txt", []finding{
			{9, "skips when a file cannot be read"},
			{17, "skips when a file cannot be read"},
			{25, "skips when a file cannot be read"},
			{33, "skips for a missing file: fixture not readable"},
			{40, "skips for a missing file: specs/lib/ping does not exist"},
		}},
		{"reads outside the module", "shared.go.txt", []finding{
			{6, "reads the shared folder outside the module"},
			{10, "reads the shared folder outside the module"},
		}},
		{"legitimate skips and paths", "clean.go.txt", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", "selfcontained", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := checkSource(tc.file, src)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestSelfContained runs the checker over every Go file of the module.
func TestSelfContained(t *testing.T) {
	root := RepoRoot(t)
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		found, err := checkSource(path, src)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, f := range found {
			t.Errorf("%s:%d: %s", rel, f.Line, f.What)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("checked only %d Go files under %s", files, root)
	}
}
