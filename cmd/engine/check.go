package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/spectest"
)

type checkFlags struct {
	format string
}

const checkLong = `Check loads every deployment under the given paths exactly as sync and the
daemon do: it unifies the specs with the schema, compiles every jq and expr
program, reads every lookup table, and resolves connectors, lookups, chained
pipelines and secret names. It prints ALL problems in one pass, one per line:

  specs/kh/cases.cue:42:7: pipelines.cases.map.sex: bad-jq: unexpected token "|"

The deployment's spec tests (tests/*.txtar, see engine test --help) are
checked too: their sections parse, their pipeline exists.

A path is a deployment folder, a spec file (its folder is checked), or a
folder of deployments (every folder below holding .cue files, except lib/
and cue.mod/). Secrets are only checked by name: no value is needed.

Every code (bad-value, unknown-var, lookup-row, …) is explained with an
example and its fix in docs/problem-codes.md.

Warnings (such as a plain http:// base_url to another machine,
insecure-url) are printed to stderr and do not fail the check.

Exit codes: 0 clean (warnings allowed), 1 problems found, 2 usage or I/O error.`

func (a *app) checkCmd() *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check [PATH...]",
		Short: "Validate spec files and report every problem with its position",
		Long:  checkLong,
		Example: `  engine check specs/
  engine check specs/cambodia --format json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.format != "text" && f.format != "json" {
				return usageError("--format must be text or json, not %q", f.format)
			}
			if len(args) == 0 {
				args = []string{"specs"}
			}
			var all spec.Problems
			var warnings []string
			n := 0
			for _, arg := range args {
				dirs, err := spec.Deployments(arg)
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("read %s: %w", arg, err)}
				}
				if len(dirs) == 0 {
					return &exitError{code: 2, err: fmt.Errorf("no deployment (folder with .cue files) under %s", arg)}
				}
				for _, dir := range dirs {
					n++
					plan, err := spec.Load(dir, spec.Options{})
					if plan != nil {
						warnings = append(warnings, plan.Warnings...)
					}
					var ps spec.Problems
					if errors.As(err, &ps) {
						all = append(all, ps...)
					} else if err != nil {
						return &exitError{code: 2, err: err}
					} else {
						all = append(all, testProblems(plan, dir)...)
					}
				}
			}
			all = all.Sort()
			// Warnings go to stderr, so --format json stays one document.
			for _, w := range warnings {
				fmt.Fprintln(a.stderr, "warning: "+w)
			}
			if f.format == "json" {
				a.stdout.Write(all.JSON())
			} else {
				for _, p := range all {
					fmt.Fprintln(a.stdout, p.String())
				}
				if len(all) == 0 {
					fmt.Fprintf(a.stderr, "%d deployment(s) checked: no problems\n", n)
				} else {
					fmt.Fprintf(a.stderr, "%d problem(s) in %d deployment(s)\n", len(all), n)
				}
			}
			if len(all) > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&f.format, "format", "text", "output format: text or json")
	return cmd
}

// testProblems are the problems of a deployment's spec test files, in the
// form of the spec's own.
func testProblems(plan *engine.Plan, dir string) spec.Problems {
	var out spec.Problems
	for _, p := range spectest.Check(plan, dir) {
		out = append(out, spec.Problem{File: p.File, Line: p.Line, Col: 1, Code: "test-file", Msg: p.Msg})
	}
	return out
}
