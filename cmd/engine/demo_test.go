package main

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"casesync/engine/spec"
)

var writesLine = regexp.MustCompile(`(\w+) (\d+) \(engine's count (\d+)\)`)

// TestDemo_NumbersMatchTheFakes runs README's first command in-process:
// it exits 0, every deployment's writes as the fakes counted them equal the
// engine's, the second pass over an unchanged source writes nothing, and no
// duplicate is made.
func TestDemo_NumbersMatchTheFakes(t *testing.T) {
	out, errOut, code := runCLI(t, nil, "demo", "--specs", "../../specs", "--cases", "120", "--clients", "40")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
	var passes int
	// A second pass over an unchanged source writes nothing; a second
	// Sync press (an inbox deployment's second pass) is answered again.
	expectNone := false
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "nothing should be written") {
			expectNone = true
		}
		if !strings.Contains(line, "writes applied") {
			continue
		}
		passes++
		second := expectNone
		expectNone = false
		for _, m := range writesLine.FindAllStringSubmatch(line, -1) {
			fake, _ := strconv.Atoi(m[2])
			eng, _ := strconv.Atoi(m[3])
			if fake != eng {
				t.Errorf("%s: the fake applied %d writes, the engine counted %d: %s", m[1], fake, eng, line)
			}
			if second && fake != 0 {
				t.Errorf("%s: second pass wrote %d times: %s", m[1], fake, line)
			}
		}
	}
	if passes < 6 {
		t.Errorf("saw %d passes, want two per shipped deployment:\n%s", passes, out)
	}
	if !strings.Contains(out, "duplicates created at the fakes: 0") {
		t.Errorf("duplicates:\n%s", out)
	}
	// Issue 19.10: a newcomer's run shows no failed record; the refusal
	// paths are the spec tests' and specs_test's.
	for _, m := range regexp.MustCompile(`(?m)^  (\S+.*?)\s+read .* failed +(\d+)$`).FindAllStringSubmatch(out, -1) {
		if m[2] != "0" {
			t.Errorf("%s: %s failed records in the demo:\n%s", m[1], m[2], out)
		}
	}
	// The ONA dashboard deployment writes into a SQLite file and shows
	// what it wrote.
	if m := regexp.MustCompile(`(?m)^    cases: (\d+) rows$`).FindStringSubmatch(out); m == nil || m[1] == "0" {
		t.Errorf("the demo shows no dashboard rows for cambodia-ona:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^      case_id=\S+ `).MatchString(out) {
		t.Errorf("the demo shows no dashboard row:\n%s", out)
	}
}

// TestDemo_OutsideTheRepository: from a folder without specs/ (as after
// go install), the demo runs the deployments built into the binary, every
// one of them.
func TestDemo_OutsideTheRepository(t *testing.T) {
	dirs, err := spec.Deployments("../../specs")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	out, errOut, code := runCLI(t, nil, "demo", "--cases", "30", "--clients", "10")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "every deployment under the binary (no ./specs folder here)") {
		t.Errorf("the demo does not say where its deployments come from:\n%s", out)
	}
	for _, d := range dirs {
		if name := filepath.Base(d); !strings.Contains(out, "\n"+name+" (") {
			t.Errorf("deployment %s did not run:\n%s", name, out)
		}
	}
	if _, _, code := runCLI(t, nil, "demo", "--specs", "nowhere"); code != 2 {
		t.Errorf("demo --specs nowhere: exit %d, want 2", code)
	}
}
