package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"casesync/engine/spec"
	"casesync/internal/spectest"
)

const testLong = `Test runs the spec tests kept beside a deployment (DIR/tests/*.txtar): for
each source record a test gives, the pipeline's real stages run — filters,
enrich, fan-out, mapping, lookups, the upsert decision, the write and its
after-steps — against the test's canned answers instead of the network, with
no state file. What they produce is compared with the test's expectation
per record: the decision (create, update, unchanged, skip, fail), its
reason, the exact request body, the after-steps and the lookup misses.

A mismatch prints one line per differing field and the map field that
produced it, with its spec position:

  FAIL specs/cambodia/tests/f1_referrals.txtar
    case-1: items.ref-1.request.body.given_name: want "Sokha", got "Dara"
        map field given_name at specs/cambodia/f1_primero_to_oscar.cue:65:3

--update rewrites the expectations that differ (and adds missing ones),
leaving every other section of the file as it was: review the change with
git diff before committing it.

A test file is a txtar archive:

  pipeline: f1_referrals_to_oscar
  now: 2026-03-01T10:00:00Z           (optional: the run's $now)
  -- source.json --                   source records: an array or one object
  -- answer GET /api/v2/cases/{id}/referrals --
  {"data": []}                        the remote's answer; {…} matches any text
  -- answer POST /api/v1/clients 422 --   a status other than 200
  -- target KEY --                    the target's current record for that key
  -- delivery KEY --                  the webhook delivery source record KEY came in
  -- table NAME --                    a lookup loaded whole (lookups.NAME.sql): {key: value}
  -- expect case-1 --                 the expected outcome of source record case-1

DIR is a deployment folder, a folder of deployments, DIR/... (every
deployment below), or a test file. Exit codes: 0 all passed, 1 a test
failed or a spec has problems, 2 usage or I/O error.`

type testFlags struct {
	update bool
	run    string
}

func (a *app) testCmd() *cobra.Command {
	var f testFlags
	cmd := &cobra.Command{
		Use:   "test [DIR...]",
		Short: "Run a deployment's spec tests: records in, expected decisions and requests out",
		Long:  testLong,
		Example: `  engine test specs/...

  # One deployment, only the tests whose file name contains "oscar"
  engine test specs/example --run oscar

  # After a deliberate spec change: rewrite the expectations that changed (here in a
  # copy), then review them with diff or git diff
  cp -r specs /tmp/specs && engine test /tmp/specs/example --update`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"specs/..."}
			}
			targets, err := testTargets(args)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			failed, passed, updated := 0, 0, 0
			for _, tg := range targets {
				files := tg.files
				if len(files) == 0 {
					all, err := spectest.Files(tg.dir)
					if err != nil {
						return &exitError{code: 2, err: err}
					}
					for _, p := range all {
						if f.run == "" || strings.Contains(filepath.Base(p), f.run) {
							files = append(files, p)
						}
					}
					if len(files) == 0 {
						if !tg.explicit {
							continue
						}
						fmt.Fprintf(a.stdout, "?    %s: no tests (add %s)\n", tg.dir, filepath.Join(tg.dir, "tests", "NAME.txtar"))
						continue
					}
				}
				_, results, err := spectest.RunDir(cmd.Context(), tg.dir, files, f.update)
				var ps spec.Problems
				if errors.As(err, &ps) {
					for _, p := range ps {
						fmt.Fprintln(a.stdout, p.String())
					}
					fmt.Fprintf(a.stdout, "FAIL %s: the spec has problems (engine check %s)\n", tg.dir, tg.dir)
					failed++
					continue
				} else if err != nil {
					return &exitError{code: 2, err: err}
				}
				for _, fr := range results {
					a.printTestResult(fr)
					updated += fr.Updated
					if fr.Passed() {
						passed++
					} else {
						failed++
					}
				}
			}
			if f.update && updated > 0 {
				fmt.Fprintf(a.stderr, "%d expectation(s) rewritten: review them with git diff\n", updated)
			}
			fmt.Fprintf(a.stderr, "%d test file(s) passed, %d failed\n", passed, failed)
			if failed > 0 {
				return &exitError{code: 1}
			}
			if passed == 0 {
				return &exitError{code: 2, err: fmt.Errorf("no test files found under %s", strings.Join(args, " "))}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&f.update, "update", false, "rewrite the expectations that differ from what the spec now produces")
	cmd.Flags().StringVar(&f.run, "run", "", "only test files whose name contains this text")
	return cmd
}

func (a *app) printTestResult(fr spectest.FileResult) {
	switch {
	case len(fr.Problems) > 0:
		fmt.Fprintf(a.stdout, "FAIL %s: the test file has problems\n", fr.Path)
		for _, p := range fr.Problems {
			fmt.Fprintf(a.stdout, "  %s\n", p.Error())
		}
	case fr.Err != nil:
		fmt.Fprintf(a.stdout, "FAIL %s: %v\n", fr.Path, fr.Err)
	case !fr.Result.Passed():
		fmt.Fprintf(a.stdout, "FAIL %s\n", fr.Path)
		for _, p := range fr.Result.Problems {
			fmt.Fprintf(a.stdout, "  %s\n", p)
		}
		for _, d := range fr.Result.Diffs {
			fmt.Fprintf(a.stdout, "  %s\n", d.String())
		}
	case fr.Updated > 0:
		fmt.Fprintf(a.stdout, "ok   %s (%d record(s); %d expectation(s) rewritten)\n", fr.Path, len(fr.Result.Order), fr.Updated)
	default:
		fmt.Fprintf(a.stdout, "ok   %s (%d record(s))\n", fr.Path, len(fr.Result.Order))
	}
}

// testTarget is one deployment to test, and its test files when the
// arguments named some.
type testTarget struct {
	dir      string
	files    []string
	explicit bool // named by the user, not found by walking
}

// testTargets resolves engine test's arguments to deployments.
func testTargets(args []string) ([]testTarget, error) {
	byDir := map[string]*testTarget{}
	var order []string
	add := func(dir string, file string, explicit bool) {
		t := byDir[dir]
		if t == nil {
			t = &testTarget{dir: dir}
			byDir[dir] = t
			order = append(order, dir)
		}
		t.explicit = t.explicit || explicit
		if file != "" {
			t.files = append(t.files, file)
		}
	}
	for _, arg := range args {
		root, walk := strings.CutSuffix(arg, "/...")
		if root == "" {
			root = "."
		}
		st, err := os.Stat(root)
		if err != nil {
			return nil, err
		}
		switch {
		case !st.IsDir() && strings.HasSuffix(root, ".txtar"):
			add(filepath.Dir(filepath.Dir(root)), root, true)
		case !st.IsDir():
			return nil, fmt.Errorf("%s: want a deployment folder, DIR/... or a .txtar test file", arg)
		default:
			dirs, err := spec.Deployments(root)
			if err != nil {
				return nil, err
			}
			if len(dirs) == 0 {
				return nil, fmt.Errorf("no deployment (folder with .cue files) under %s", root)
			}
			for _, d := range dirs {
				add(d, "", !walk && len(dirs) == 1)
			}
		}
	}
	sort.Strings(order)
	out := make([]testTarget, 0, len(order))
	for _, d := range order {
		out = append(out, *byDir[d])
	}
	return out, nil
}
