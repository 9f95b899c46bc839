package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"casesync/engine"
	"casesync/internal/state"
)

const statusLong = `Status shows, for each pipeline of the deployment, where it stands:

  cursor     the value the next run reads from (less the overlap window),
             and when it last moved
  last run   its id, status (succeeded, failed, interrupted, running),
             trigger, start, duration and counts: read, created, updated,
             unchanged, skipped, failed
  queue      records waiting in the retry queue, and how many of them are
             parked (they failed max_attempts times and wait for a person:
             see engine failures and engine retry)

It reads the state file only, opened read-only: it is safe while a sync or
the daemon runs, and it makes no request to any system. A pipeline the specs
declare but that never ran shows as "never run".`

type statusFlags struct {
	stateFlags
	pipeline string
}

// statusJSON is one pipeline in --format json output.
type statusJSON struct {
	Pipeline      string   `json:"name"`
	Cursor        *string  `json:"cursor"`
	CursorUpdated *string  `json:"cursor_updated"`
	ReadsFrom     string   `json:"reads_from,omitempty"`
	LastRun       *runJSON `json:"last_run"`
	Queued        int      `json:"retry_queued"`
	Parked        int      `json:"retry_parked"`
}

func (a *app) statusCmd() *cobra.Command {
	var f statusFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each pipeline's cursor, last run and retry queue",
		Long:  statusLong,
		Example: `  engine status --specs specs/cambodia
  engine status --state /var/lib/casesync/kh.db --pipeline f1_referrals_to_oscar

  # Pipelines with records waiting for a person, for a script
  engine status --specs specs/cambodia --format json | jq -r '.[] | select(.retry_parked > 0) | .name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			return a.status(cmd, &f)
		},
	}
	f.stateFlags.register(cmd)
	cmd.Flags().StringVar(&f.pipeline, "pipeline", "", "show this pipeline only")
	return cmd
}

func (a *app) status(cmd *cobra.Command, f *statusFlags) error {
	plan, path, err := a.stateOf(&f.common)
	if err != nil {
		return err
	}
	if err := checkPipeline(plan, f.pipeline); err != nil {
		return err
	}
	stats := map[string]state.PipelineStats{}
	if _, serr := os.Stat(path); errors.Is(serr, fs.ErrNotExist) && plan != nil {
		// Nothing has run yet: every declared pipeline is "never run".
	} else {
		st, err := openStateRead(path)
		if err != nil {
			return err
		}
		defer st.Close()
		if stats, err = st.Stats(cmd.Context()); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	names := pipelineNames(plan, stats)
	if f.pipeline != "" {
		names = []string{f.pipeline}
	}
	out := make([]statusJSON, 0, len(names))
	for _, n := range names {
		s := stats[n]
		j := statusJSON{Pipeline: n, Queued: s.Queued, Parked: s.Parked}
		if s.HasCursor {
			j.Cursor, j.CursorUpdated = &s.Cursor, jsonTime(s.CursorUpdated)
		}
		if plan != nil {
			if p, ok := plan.Pipelines[n]; ok {
				j.ReadsFrom, _ = p.ReadFrom(s.Cursor, s.HasCursor)
			}
		}
		if s.HasRun {
			r := toRunJSON(s.LastRun)
			j.LastRun = &r
		}
		out = append(out, j)
	}
	if f.format == "json" {
		return writeJSON(a.stdout, out)
	}
	now := a.now()
	w := a.stdout
	if len(out) == 0 {
		fmt.Fprintf(w, "no pipelines in %s\n", path)
		return nil
	}
	for i, j := range out {
		if i > 0 {
			fmt.Fprintln(w)
		}
		s := stats[j.Pipeline]
		fmt.Fprintln(w, j.Pipeline)
		switch {
		case s.HasCursor:
			fmt.Fprintf(w, "  cursor     %s, moved %s\n", printable(s.Cursor), relative(s.CursorUpdated, now))
		case j.ReadsFrom != "":
			fmt.Fprintf(w, "  cursor     none yet: the first run reads from the initial value\n")
		default:
			fmt.Fprintf(w, "  cursor     none\n")
		}
		if j.ReadsFrom != "" {
			fmt.Fprintf(w, "  next read  from %s\n", j.ReadsFrom)
		}
		if !s.HasRun {
			fmt.Fprintf(w, "  last run   never run\n")
		} else {
			r := s.LastRun
			fmt.Fprintf(w, "  last run   #%d %s, trigger %s, started %s, took %s\n", r.ID, r.Status, r.Trigger, stamp(r.Started, now), duration(r))
			fmt.Fprintf(w, "             %s\n", countsLine(r.Counts))
			if r.Error != "" {
				fmt.Fprintf(w, "             error: %s\n", printable(r.Error))
			}
		}
		switch {
		case s.Queued == 0:
			fmt.Fprintf(w, "  queue      empty\n")
		default:
			fmt.Fprintf(w, "  queue      %d waiting to retry, %d parked (engine failures --pipeline %s)\n", s.Queued-s.Parked, s.Parked, j.Pipeline)
		}
	}
	return nil
}

func countsLine(c engine.Counts) string {
	return fmt.Sprintf("read %d, created %d, updated %d, unchanged %d, skipped %d, failed %d",
		c.Read, c.Created, c.Updated, c.Unchanged, c.Skipped, c.Failed)
}
