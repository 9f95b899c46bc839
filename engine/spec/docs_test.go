package spec_test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/engine/spec"
)

// TestCodes_Documented: docs/problem-codes.md has a section for every
// problem code and for no other, each with an example of what engine
// check prints and a fix; and every code that has a place in a file is
// asserted by a check case in testdata/check.
func TestCodes_Documented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/problem-codes.md")
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile("(?m)^### `([a-z-]+)`$")
	idx := heading.FindAllSubmatchIndex(doc, -1)
	var documented []string
	for i, m := range idx {
		code := string(doc[m[2]:m[3]])
		documented = append(documented, code)
		end := len(doc)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		section := string(doc[m[1]:end])
		if !strings.Contains(section, "**Fix:**") {
			t.Errorf("%s: no **Fix:**", code)
		}
		if !strings.Contains(section, ": "+code+": ") {
			t.Errorf("%s: no example of what engine check prints (a line with %q)", code, ": "+code+": ")
		}
	}
	var codes []string
	for c := range spec.Codes {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	sort.Strings(documented)
	if diff := cmp.Diff(codes, documented); diff != "" {
		t.Errorf("codes (-spec.Codes +docs/problem-codes.md):\n%s", diff)
	}

	cases, _ := filepath.Glob("../../testdata/check/*.txtar")
	asserted := map[string]bool{}
	want := regexp.MustCompile(`(?m)^\S+ ([a-z-]+) `)
	for _, f := range cases {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, tail, ok := strings.Cut(string(b), "-- want --\n"); ok {
			for _, m := range want.FindAllStringSubmatch(tail, -1) {
				asserted[m[1]] = true
			}
		}
	}
	// insecure-url and unclassified-field are warnings (warnings_test.go,
	// sensitivity_test.go); no-deployment has no file to place it in.
	for _, c := range codes {
		if !asserted[c] && c != "insecure-url" && c != "unclassified-field" && c != "no-deployment" {
			t.Errorf("no check case in testdata/check asserts %s", c)
		}
	}
}
