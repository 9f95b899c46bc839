package spectest

import (
	"context"
	"fmt"
	"strings"

	"casesync/engine"
	"casesync/engine/spec"
)

// FileResult is one test file's result: its run, or why it could not run.
type FileResult struct {
	Path     string
	Result   *Result
	Problems []Problem
	Err      error
	// Updated counts the expectations --update rewrote.
	Updated int
}

// Passed reports whether the file passed.
func (f *FileResult) Passed() bool {
	return f.Err == nil && len(f.Problems) == 0 && f.Result != nil && f.Result.Passed()
}

// RunDir loads the deployment in dir and runs its tests (files, or every
// tests/*.txtar when files is empty). With update, expectations that
// differ are rewritten and the file then counts as passed unless the test
// itself has problems.
func RunDir(ctx context.Context, dir string, files []string, update bool) (*engine.Plan, []FileResult, error) {
	plan, err := spec.Load(dir, spec.Options{})
	if err != nil {
		return nil, nil, err
	}
	if len(files) == 0 {
		if files, err = Files(dir); err != nil {
			return plan, nil, err
		}
	}
	var out []FileResult
	for _, path := range files {
		fr := FileResult{Path: path}
		t, ps := ParseFile(path)
		ps = append(ps, checkTest(plan, t)...)
		if len(ps) > 0 {
			fr.Problems = ps
			out = append(out, fr)
			continue
		}
		fr.Result, fr.Err = Run(ctx, plan, t)
		if fr.Err == nil && update && len(fr.Result.Problems) == 0 && !fr.Result.Passed() {
			fr.Updated, fr.Err = Update(fr.Result)
			if fr.Err == nil {
				fr.Result.Diffs = nil
			}
		}
		out = append(out, fr)
	}
	return plan, out, nil
}

// Check validates a deployment's test files against its plan without
// running them: engine check reports these with the spec's problems.
func Check(plan *engine.Plan, dir string) []Problem {
	files, err := Files(dir)
	if err != nil {
		return []Problem{{File: dir, Msg: err.Error()}}
	}
	var out []Problem
	for _, path := range files {
		t, ps := ParseFile(path)
		out = append(out, ps...)
		out = append(out, checkTest(plan, t)...)
	}
	return out
}

// checkTest checks what a test names against the plan.
func checkTest(plan *engine.Plan, t *Test) []Problem {
	if t == nil || t.Pipeline == "" {
		return nil
	}
	if _, ok := plan.Pipelines[t.Pipeline]; !ok {
		return []Problem{{File: t.Path, Line: pipelineLine(t), Msg: fmt.Sprintf("no pipeline %q in %s (have: %s)", t.Pipeline, plan.Name, strings.Join(plan.Order, ", "))}}
	}
	var ps []Problem
	for _, a := range t.Answers {
		switch a.Method {
		case "GET", "POST", "PUT", "PATCH", "DELETE":
		default:
			ps = append(ps, Problem{File: t.Path, Line: a.Line, Msg: fmt.Sprintf("answer: %q is not an HTTP method", a.Method)})
		}
	}
	return ps
}

func pipelineLine(t *Test) int {
	for i, ln := range strings.Split(string(t.archive.Comment), "\n") {
		if strings.HasPrefix(strings.TrimSpace(ln), "pipeline:") {
			return i + 1
		}
	}
	return 1
}
