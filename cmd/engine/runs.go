package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"casesync/engine"
)

const runsLong = `Runs lists the runs recorded in the state file, newest first: id, pipeline,
trigger (manual, cron, after:<pipeline>, retry, inbox), start, duration,
status and counts. A run marked "interrupted" was cut short by a crash or a
kill; the next run of its pipeline picked up from its last committed page.
A failed run shows why in the error column (in full with --format json). A
run stopped by refused credentials or a broken configuration counts the
records it left under NOT PROCESSED, not FAILED: none was charged a retry
attempt, and the next run takes them again.

It reads the state file only, opened read-only, and is safe while a sync runs.

Exit codes: 0 listed; 1 spec problems; 2 usage or I/O error, no state file
yet, or a state file that is damaged or not casesync's.`

type runsFlags struct {
	stateFlags
	pipeline string
	limit    int
}

func (a *app) runsCmd() *cobra.Command {
	var f runsFlags
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List recorded runs, newest first",
		Long:  runsLong,
		Example: `  engine runs --specs specs/cambodia
  engine runs --specs specs/cambodia --pipeline f1_referrals_to_oscar --limit 5

  # Runs that did not succeed, for a script
  engine runs --state /var/lib/casesync/kh.db --format json | jq '.[] | select(.status != "succeeded")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			if f.limit < 0 {
				return usageError("--limit must be 0 (all) or more, not %d", f.limit)
			}
			plan, path, err := a.stateOf(&f.common)
			if err != nil {
				return err
			}
			if err := checkPipeline(plan, f.pipeline); err != nil {
				return err
			}
			st, err := openStateRead(path)
			if err != nil {
				return err
			}
			defer st.Close()
			runs, err := st.Runs(cmd.Context(), f.pipeline, f.limit)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if f.format == "json" {
				out := make([]runJSON, 0, len(runs))
				for _, r := range runs {
					out = append(out, toRunJSON(r))
				}
				return writeJSON(a.stdout, out)
			}
			if len(runs) == 0 {
				fmt.Fprintln(a.stdout, "no runs yet")
				return nil
			}
			now := a.now()
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPIPELINE\tTRIGGER\tSTARTED\tTOOK\tSTATUS\tREAD\tCREATED\tUPDATED\tUNCHANGED\tSKIPPED\tFAILED\tNOT PROCESSED\tNOTES\tLOOKUP MISSES\tERROR")
			for _, r := range runs {
				c := r.Counts
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", r.ID, r.Pipeline, r.Trigger,
					stamp(r.Started, now), duration(r), r.Status, c.Read, c.Created, c.Updated, c.Unchanged, c.Skipped, c.Failed, c.NotProcessed,
					notesText(c.Notes), notesText(c.LookupMisses), clip(r.Error, 60))
			}
			return tw.Flush()
		},
	}
	f.stateFlags.register(cmd)
	cmd.Flags().StringVar(&f.pipeline, "pipeline", "", "list this pipeline's runs only")
	cmd.Flags().IntVar(&f.limit, "limit", 20, "show at most this many runs (0 = all)")
	return cmd
}

// notesText is a run's field-level notes by code ("-" for none):
// "date_of_birth_unreadable 3".
func notesText(n map[string]int) string {
	if len(n) == 0 {
		return "-"
	}
	var parts []string
	for _, code := range engine.SortedReasons(n) {
		parts = append(parts, fmt.Sprintf("%s %d", code, n[code]))
	}
	return strings.Join(parts, ", ")
}
