package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"casesync/engine"
	"casesync/internal/state"
)

// stateFlags are the flags of the commands that read or change the state
// file (status, runs, failures, retry, cursor): the shared deployment flags
// and an output format.
type stateFlags struct {
	common
	format string
}

func (f *stateFlags) register(cmd *cobra.Command) {
	f.common.register(cmd)
	cmd.Flags().StringVar(&f.format, "format", "text", "output format: text or json")
}

func (f *stateFlags) check() error {
	if f.format != "text" && f.format != "json" {
		return usageError("--format must be text or json, not %q", f.format)
	}
	return nil
}

// stateOf finds the state file of a deployment. The plan is loaded unless
// only a state file was named (--state or $CASESYNC_STATE without --specs
// or $CASESYNC_SPECS): the commands then work from the file alone, and
// pipeline names are not checked against the specs.
func (a *app) stateOf(c *common) (*engine.Plan, string, error) {
	explicitState := c.statePath != "" || a.getenv("CASESYNC_STATE") != ""
	explicitSpecs := c.specs != "" || a.getenv("CASESYNC_SPECS") != ""
	var plan *engine.Plan
	if !explicitState || explicitSpecs {
		p, err := a.loadPlan(c)
		if err != nil {
			return nil, "", err
		}
		plan = p
	}
	return plan, a.statePathFor(c, plan), nil
}

// openStateRead opens the state file read-only: these commands never
// create, migrate or lock it, so they are safe beside a running sync.
func openStateRead(path string) (*state.Store, error) {
	st, err := state.OpenReadOnly(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &exitError{code: 2, err: fmt.Errorf("no state file at %s: nothing has run yet (engine sync PIPELINE creates it), or pass --state", path)}
	case err != nil:
		return nil, &exitError{code: 2, err: err}
	}
	return st, nil
}

// openStateWrite opens the state file for writing, taking its writer lease:
// another engine process holding it (a daemon, a sync) is a refusal naming
// it, exit 2, unless --wait gives it time to finish.
func openStateWrite(path string, wait time.Duration) (*state.Store, error) {
	st, err := state.Open(path, state.WithWait(wait))
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return st, nil
}

// checkPipeline refuses a pipeline name the plan lacks (when there is a plan).
func checkPipeline(plan *engine.Plan, name string) error {
	if plan == nil || name == "" {
		return nil
	}
	if _, ok := plan.Pipelines[name]; !ok {
		return usageError("no pipeline %q in %s (have: %s)", name, plan.Name, strings.Join(plan.Order, ", "))
	}
	return nil
}

// actor names the person behind a CLI change in the audit trail.
func (a *app) actor() string {
	for _, k := range []string{"CASESYNC_ACTOR", "USER", "USERNAME"} {
		if v := a.getenv(k); v != "" {
			return "cli:" + v
		}
	}
	return "cli"
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// stamp shows a time in UTC to the second, with how long ago (or how
// soon) it is: "2026-03-01 10:00:05Z (3m ago)".
func stamp(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z") + " (" + relative(t, now) + ")"
}

// relative says "3m ago", "in 2h", or "now".
func relative(t, now time.Time) string {
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh", int(d.Hours()))
	default:
		s = fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// jsonTime is an RFC 3339 time, or null for the zero time.
func jsonTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

// runJSON is one run in --format json output.
type runJSON struct {
	ID       int64         `json:"id"`
	Pipeline string        `json:"pipeline"`
	Trigger  string        `json:"trigger"`
	SpecHash string        `json:"spec_hash"`
	Started  *string       `json:"started"`
	Finished *string       `json:"finished"`
	Status   string        `json:"status"`
	Counts   engine.Counts `json:"counts"`
	Error    string        `json:"error,omitempty"`
}

func toRunJSON(r engine.RunInfo) runJSON {
	return runJSON{ID: r.ID, Pipeline: r.Pipeline, Trigger: r.Trigger, SpecHash: r.SpecHash,
		Started: jsonTime(r.Started), Finished: jsonTime(r.Finished), Status: r.Status, Counts: r.Counts, Error: r.Error}
}

// duration is how long a run took, or "-" while it runs (or after a crash).
func duration(r engine.RunInfo) string {
	if r.Finished.IsZero() {
		return "-"
	}
	return r.Finished.Sub(r.Started).Round(time.Millisecond).String()
}

// pipelineNames lists the plan's pipelines and any others the state knows,
// sorted.
func pipelineNames(plan *engine.Plan, known map[string]state.PipelineStats) []string {
	var names []string
	if plan != nil {
		names = append(names, plan.Order...)
	}
	for n := range known {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}
