package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"casesync/engine"
)

const failuresLong = `Failures lists the records in the retry queue: records that failed (a mapping
error, a lookup miss with on_miss "fail", a 4xx or 5xx from the target, …)
and did not stop their page. For each: the pipeline, the record key (the
source's id, never a name), how many attempts failed, the reason code, the
class of the failure, when it is retried next, and the last error with any
record content removed.

Classes: retryable (5xx, 429, timeouts: retried with backoff by later runs),
permanent (the target refused it), data (the record cannot be mapped: fix
the source or the spec), auth, config. After max_attempts failures a record
is parked: runs leave it alone until "engine retry" requeues it.

Fixing the source record is usually enough: the next run reads it again and
a success clears it from this list. After fixing the spec instead, run
"engine retry" to re-fetch the queued records and run the current spec.

It reads the state file only, opened read-only.

Exit codes: 0 listed (an empty queue too); 1 spec problems; 2 usage or I/O
error, no state file yet, or a state file that is damaged or not casesync's.`

type failuresFlags struct {
	stateFlags
	pipeline string
}

// failureJSON is one queued record in --format json output.
type failureJSON struct {
	Pipeline  string       `json:"pipeline"`
	RecordKey string       `json:"record_key"`
	Attempts  int          `json:"attempts"`
	Reason    string       `json:"reason"`
	Class     engine.Class `json:"class"`
	NextRetry *string      `json:"next_retry"` // null when parked
	Parked    bool         `json:"parked"`
	LastError string       `json:"last_error"`
	Updated   *string      `json:"updated"`
}

func (a *app) failuresCmd() *cobra.Command {
	var f failuresFlags
	cmd := &cobra.Command{
		Use:   "failures",
		Short: "List the records waiting in the retry queue, and why they failed",
		Long:  failuresLong,
		Example: `  engine failures --specs specs/cambodia
  engine failures --specs specs/cambodia --pipeline f1_referrals_to_oscar

  # The keys of parked records, for a script
  engine failures --state /var/lib/casesync/kh.db --format json | jq -r '.[] | select(.parked) | .record_key'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
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
			items, err := st.Failures(cmd.Context(), f.pipeline)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if f.format == "json" {
				out := make([]failureJSON, 0, len(items))
				for _, it := range items {
					j := failureJSON{Pipeline: it.Pipeline, RecordKey: it.RecordKey, Attempts: it.Attempts, Reason: it.Reason,
						Class: it.Class, Parked: it.Parked, LastError: it.LastError, Updated: jsonTime(it.UpdatedAt)}
					if !it.Parked {
						j.NextRetry = jsonTime(it.NextAt)
					}
					out = append(out, j)
				}
				return writeJSON(a.stdout, out)
			}
			if len(items) == 0 {
				fmt.Fprintln(a.stdout, "no failures: the retry queue is empty")
				return nil
			}
			now := a.now()
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "PIPELINE\tRECORD\tATTEMPTS\tREASON\tCLASS\tNEXT RETRY\tPARKED\tLAST ERROR")
			parked := 0
			for _, it := range items {
				next, pk := "", "no"
				switch {
				case it.Parked:
					next, pk = "-", "yes"
					parked++
				case !it.NextAt.After(now):
					next = "next run"
				default:
					next = relative(it.NextAt, now)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", it.Pipeline, printable(it.RecordKey), it.Attempts, printable(it.Reason), it.Class, next, pk, clip(it.LastError, 80))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "\n%d record(s) queued, %d parked. Fix the source and the next run retries them, or run: engine retry\n", len(items), parked)
			return nil
		},
	}
	f.stateFlags.register(cmd)
	cmd.Flags().StringVar(&f.pipeline, "pipeline", "", "list this pipeline's failures only")
	return cmd
}
