package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var writesLine = regexp.MustCompile(`(\w+) (\d+) \(engine's count (\d+)\)`)

// TestDemo_NumbersMatchTheFakes runs README's first command in-process:
// it exits 0, every deployment's writes as the fakes counted them equal the
// engine's, the second pass writes nothing, and no duplicate is made.
func TestDemo_NumbersMatchTheFakes(t *testing.T) {
	out, errOut, code := runCLI(t, nil, "demo", "--specs", "../../specs", "--cases", "120", "--clients", "40")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
	var passes int
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "writes applied") {
			continue
		}
		passes++
		second := passes%2 == 0
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
}
