package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"casesync/internal/version"
)

// app holds what every command needs; tests build their own, so no state
// leaks between them.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// now is the clock for what the CLI itself stamps (audit rows, "2m
	// ago"); tests set a fixed one.
	now func() time.Time
}

func newApp(stdout, stderr io.Writer, getenv func(string) string) *app {
	return &app{stdout: stdout, stderr: stderr, getenv: getenv, now: func() time.Time { return time.Now().UTC() }}
}

// exitError carries an exit code up to Main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// usageError is exit code 2 with a hint.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

const rootLong = `casesync moves case records between case-management systems (Primero,
OSCaR, proGres through PING, …) as declared in CUE pipeline specs: sources
with incremental cursors, filters, jq/expr mappings, lookups and upserts that
never create duplicates. State (cursors, id links, outcomes, retries) lives in
one SQLite file.

Exit codes (each command's --help gives its own): 0 success; 1 spec
problems, a failed or stopped run, or records that failed; 2 usage or I/O
error, a secret not set, or a state file held by another engine process,
damaged, or not casesync's.`

const rootExample = `  # See it work end to end against bundled fake servers
  engine demo

  # Validate a deployment before it runs
  engine check specs/cambodia

  # Preview what a pipeline would write, without writing
  engine dry-run f1_referrals_to_oscar --specs specs/cambodia --secrets-file /etc/casesync/kh.env --limit 5

  # Which build is this?
  engine --version`

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:           "engine",
		Short:         "Declarative sync between case-management systems",
		Long:          rootLong,
		Example:       rootExample,
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version: what to quote in a bug report (module version, commit
		// and its time, from the build info).
		Version: version.Get().String(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.AddCommand(a.checkCmd())
	for _, extra := range a.extraCommands() {
		root.AddCommand(extra)
	}
	return root
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.root()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" && jsonLogs(root, args) {
			// A log shipper reading stderr gets JSON to the last line.
			slog.New(slog.NewJSONHandler(a.stderr, nil)).Error(ee.err.Error(), "exit_code", ee.code)
			return ee.code
		}
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(a.stderr, "engine:", ee.err)
			if ee.code == 2 {
				fmt.Fprintln(a.stderr, "Try:", helpFor(root, args))
			}
		}
		return ee.code
	}
	// cobra's own flag and argument errors are usage errors.
	fmt.Fprintln(a.stderr, "engine:", err)
	fmt.Fprintln(a.stderr, "Try:", helpFor(root, args))
	return 2
}

// jsonLogs reports whether the command args ran asked for --log-format json.
func jsonLogs(root *cobra.Command, args []string) bool {
	cmd, _, err := root.Find(args)
	if err != nil {
		return false
	}
	f := cmd.Flags().Lookup("log-format")
	return f != nil && f.Value.String() == "json"
}

// helpFor is the help command for what args ran: "engine sync --help".
func helpFor(root *cobra.Command, args []string) string {
	if cmd, _, err := root.Find(args); err == nil {
		return cmd.CommandPath() + " --help"
	}
	return "engine --help"
}
