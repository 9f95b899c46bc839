package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"casesync/engine"
	"casesync/internal/daemon"
	"casesync/internal/state"
)

const statusLong = `Status shows, for each pipeline of the deployment, where it stands:

  cursor     the value the next run reads from (less the overlap window),
             and when it last moved
  last run   its id, status (succeeded, failed, interrupted, running),
             trigger, start, duration and counts: read, created, updated,
             unchanged, skipped, failed
  success    the last run that succeeded, when it is not the last run
  queue      records waiting in the retry queue, how many of them are
             parked (they failed max_attempts times and wait for a person:
             see engine failures and engine retry), and their reasons

A pipeline whose last run failed is marked FAILED; one whose last run
finished with failed records, or with parked records, NEEDS ATTENTION.
--format json gives the same fields, under the same names, as the daemon's
/status (health: failed, attention, running, ok, never_run).

It reads the state file only, opened read-only: it is safe while a sync or
the daemon runs, and it makes no request to any system. A pipeline the specs
declare but that never ran shows as "never run".

Exit codes: 0 shown; 1 spec problems; 2 usage or I/O error, no state file
yet, or a state file that is damaged or not casesync's.`

type statusFlags struct {
	stateFlags
	pipeline string
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
	// The daemon's /status type: both speak the same field names.
	out := make([]daemon.PipelineStatus, 0, len(names))
	for _, n := range names {
		var p *engine.Pipeline
		if plan != nil {
			p = plan.Pipelines[n]
		}
		out = append(out, daemon.PipelineFromState(n, p, stats[n]))
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
		s := stats[j.Name]
		switch j.Health {
		case daemon.HealthFailed:
			fmt.Fprintf(w, "%s — FAILED: the last run did not finish\n", j.Name)
		case daemon.HealthAttention:
			fmt.Fprintf(w, "%s — NEEDS ATTENTION: failed or parked records\n", j.Name)
		default:
			fmt.Fprintln(w, j.Name)
		}
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
			if s.HasSuccess && s.LastSuccess.ID != r.ID {
				fmt.Fprintf(w, "  success    last #%d, finished %s\n", s.LastSuccess.ID, stamp(s.LastSuccess.Finished, now))
			} else if !s.HasSuccess {
				fmt.Fprintf(w, "  success    none yet\n")
			}
		}
		switch {
		case s.Queued == 0:
			fmt.Fprintf(w, "  queue      empty\n")
		default:
			fmt.Fprintf(w, "  queue      %d waiting to retry, %d parked (engine failures --pipeline %s)\n", s.Queued-s.Parked, s.Parked, j.Name)
			for _, r := range engine.SortedReasons(j.RetryByReason) {
				fmt.Fprintf(w, "             %-32s %d\n", r, j.RetryByReason[r])
			}
		}
	}
	return nil
}

// countsLine is a run's counts as its result line and engine status show
// them; records a stopped run left are named apart from failed ones.
func countsLine(c engine.Counts) string {
	s := fmt.Sprintf("read %d, created %d, updated %d, unchanged %d, skipped %d, failed %d",
		c.Read, c.Created, c.Updated, c.Unchanged, c.Skipped, c.Failed)
	if c.NotProcessed > 0 {
		s += fmt.Sprintf(", not processed %d", c.NotProcessed)
	}
	return s
}
