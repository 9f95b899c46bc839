package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"casesync/engine"
	"casesync/internal/state"
)

const cursorLong = `Cursor shows a pipeline's cursor, or moves it by hand.

The cursor is where incremental reading resumes: each run asks the source
for records changed since the cursor, less the pipeline's overlap window,
and the last page's commit moves it to the newest change seen. Moving it
back makes the next run read older records again; that is safe, because
unchanged records are recognised and not written twice. Moving it forward
skips records for good, so a time in the future is refused.

  --set VALUE        set it to a time: RFC 3339 (2025-05-01T00:00:00Z),
                     "2025-05-01 00:00:00" or 2025-05-01, in UTC
  --rewind DURATION  move it back: 36h, 90m, or days such as 7d

Every change is written to the audit trail with the old and new values and
who made it ($CASESYNC_ACTOR, else $USER). Change a cursor while no sync of
that pipeline runs: a run in progress commits its own cursor at its end.

Exit codes: 0 shown or moved; 1 spec problems, or no cursor to rewind; 2
usage or I/O error, the state file held by another engine process (see --wait), damaged or
not casesync's.`

type cursorFlags struct {
	stateFlags
	set    string
	rewind string
}

// cursorJSON is the --format json answer.
type cursorJSON struct {
	Pipeline  string  `json:"pipeline"`
	Cursor    *string `json:"cursor"`
	Previous  *string `json:"previous,omitempty"`
	Updated   *string `json:"updated,omitempty"`
	ReadsFrom string  `json:"reads_from"`
	Actor     string  `json:"actor,omitempty"`
}

func (a *app) cursorCmd() *cobra.Command {
	var f cursorFlags
	cmd := &cobra.Command{
		Use:   "cursor PIPELINE",
		Short: "Show a pipeline's cursor, or set or rewind it (audited)",
		Long:  cursorLong,
		Example: `  engine cursor f1_referrals_to_oscar --specs specs/cambodia

  # Re-read the last week, e.g. after fixing a lookup table
  engine cursor f1_referrals_to_oscar --specs specs/cambodia --rewind 7d

  # Start a new deployment from a date instead of the spec's initial value
  engine cursor f1_referrals_to_oscar --specs specs/cambodia --set 2025-05-01`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			if f.set != "" && f.rewind != "" {
				return usageError("give --set or --rewind, not both")
			}
			return a.cursor(cmd, &f, args[0])
		},
	}
	f.stateFlags.register(cmd)
	f.registerWait(cmd)
	cmd.Flags().StringVar(&f.set, "set", "", "set the cursor to this time (UTC)")
	cmd.Flags().StringVar(&f.rewind, "rewind", "", "move the cursor back by this long (36h, 90m, 7d)")
	return cmd
}

func (a *app) cursor(cmd *cobra.Command, f *cursorFlags, name string) error {
	ctx := cmd.Context()
	plan, err := a.loadPlan(&f.common)
	if err != nil {
		return err
	}
	if err := checkPipeline(plan, name); err != nil {
		return err
	}
	p := plan.Pipelines[name]
	if p.Source.Cursor == nil {
		return usageError("%s reads its whole source every run: it has no cursor", name)
	}
	path := a.statePathFor(&f.common, plan)
	_, statErr := os.Stat(path)
	exists := !errors.Is(statErr, fs.ErrNotExist)

	if f.set == "" && f.rewind == "" {
		out := cursorJSON{Pipeline: name}
		var st state.PipelineStats
		if exists {
			store, err := openStateRead(path)
			if err != nil {
				return err
			}
			defer store.Close()
			all, err := store.Stats(ctx)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			st = all[name]
		}
		if st.HasCursor {
			out.Cursor, out.Updated = &st.Cursor, jsonTime(st.CursorUpdated)
		}
		out.ReadsFrom, _ = p.ReadFrom(st.Cursor, st.HasCursor)
		if f.format == "json" {
			return writeJSON(a.stdout, out)
		}
		if st.HasCursor {
			fmt.Fprintf(a.stdout, "%s: cursor %s, moved %s\n", name, st.Cursor, stamp(st.CursorUpdated, a.now()))
		} else {
			fmt.Fprintf(a.stdout, "%s: no cursor yet (initial %s)\n", name, engine.FormatCursor(p.Source.Cursor.Initial))
		}
		fmt.Fprintf(a.stdout, "next run reads from %s (overlap %s)\n", out.ReadsFrom, p.Source.Cursor.Overlap)
		return nil
	}

	if !exists && f.rewind != "" {
		return &exitError{code: 1, err: fmt.Errorf("%s has no cursor yet to rewind (no state file at %s); use --set", name, path)}
	}
	store, err := openStateWrite(path, f.wait)
	if err != nil {
		return err
	}
	defer store.Close()
	old, had, err := store.Cursor(ctx, name)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	now := a.now()
	var to time.Time
	if f.set != "" {
		if to, err = engine.ParseCursor(f.set); err != nil {
			return usageError("--set: %v; want a time such as 2025-05-01T00:00:00Z or 2025-05-01", err)
		}
	} else {
		d, err := parseRewind(f.rewind)
		if err != nil {
			return usageError("--rewind: %v", err)
		}
		if !had {
			return &exitError{code: 1, err: fmt.Errorf("%s has no cursor yet to rewind; use --set", name)}
		}
		cur, err := engine.ParseCursor(old)
		if err != nil {
			return &exitError{code: 1, err: fmt.Errorf("the stored cursor of %s is not a time (%w); use --set", name, err)}
		}
		to = cur.Add(-d)
	}
	if to.After(now) {
		return usageError("%s is in the future: a cursor there would skip every record changed until then", engine.FormatCursor(to))
	}
	value := engine.FormatCursor(to)
	actor := a.actor()
	if err := store.SetCursor(ctx, name, value, actor, now); err != nil {
		return &exitError{code: 2, err: err}
	}
	out := cursorJSON{Pipeline: name, Cursor: &value, Actor: actor}
	if had {
		out.Previous = &old
	}
	out.ReadsFrom, _ = p.ReadFrom(value, true)
	if f.format == "json" {
		return writeJSON(a.stdout, out)
	}
	prev := "none"
	if had {
		prev = old
	}
	fmt.Fprintf(a.stdout, "%s: cursor %s -> %s (audited as %s)\nnext run reads from %s\n", name, prev, value, actor, out.ReadsFrom)
	return nil
}

// parseRewind reads a positive duration, with "d" for days.
func parseRewind(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 36h, 90m or 7d", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 36h, 90m or 7d", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q: rewind by a positive duration", s)
	}
	return d, nil
}
