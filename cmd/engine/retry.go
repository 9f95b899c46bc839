package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"casesync/engine"
	"casesync/internal/state"
)

const retryLong = `Retry makes queued failures due now, parked ones included, and then (unless
--queue-only) runs a sync of their pipelines at once.

The sync never replays a stored payload: the state file holds none. For a
pipeline whose source declares "get", each queued record is fetched again
from the source by its key and run through the CURRENT spec: filters,
enrich, mapping, lookups, upsert and after-steps. So fix the spec (or the
lookup table, or the source record), then retry. A pipeline without "get"
runs a normal sync whose listing is wound back to the oldest queued record.

A record that fails again goes back in the queue with one more attempt; a
parked record that fails again parks again. Every requeued record gets an
audit row naming who asked ($CASESYNC_ACTOR, else $USER).

--queue-only requeues without syncing: the records then run with the next
scheduled or manual sync. It needs no secrets.

A record failed with write_unconfirmed is one whose create may have reached
a target that cannot be searched (its answer was lost): the engine will not
send it again on its own, because that could make a duplicate. Check the
target by hand; if the record is NOT there, retry it with --not-written
(with --pipeline and --record), which is audited and lets the create be sent
again. If it IS there, leave it: nothing is resent.

Exit codes: 0 every retried record went through (or nothing was queued);
1 spec problems, a retried record failed again, or the sync failed; 2 usage
or I/O error, no state file yet, a secret not set, or a state file held by
another engine process (see --wait), damaged or not casesync's.`

type retryFlags struct {
	stateFlags
	pipeline   string
	record     string
	queueOnly  bool
	notWritten bool
}

// retryJSON is the --format json answer.
type retryJSON struct {
	Requeued map[string]int `json:"requeued"`
	Runs     []retryRunJSON `json:"runs,omitempty"`
}

type retryRunJSON struct {
	Pipeline string         `json:"pipeline"`
	RunID    int64          `json:"run_id"`
	Keys     []string       `json:"keys,omitempty"` // re-fetched by key; empty for a full sync
	Counts   engine.Counts  `json:"counts"`
	Reasons  map[string]int `json:"reasons,omitempty"`
	Error    string         `json:"error,omitempty"`
}

func (a *app) retryCmd() *cobra.Command {
	var f retryFlags
	cmd := &cobra.Command{
		Use:   "retry",
		Short: "Retry queued failures now with the current spec",
		Long:  retryLong,
		Example: `  # One record of one pipeline (its key as engine failures shows it)
  key=$(engine failures --specs specs/cambodia --pipeline f1_referrals_to_oscar --format json | jq -r '.[0].record_key')
  engine retry --specs specs/cambodia --secrets-file /etc/casesync/kh.env --pipeline f1_referrals_to_oscar --record "$key"

  # Make parked records due again, and let the next scheduled run take them
  engine retry --specs specs/cambodia --pipeline f1_referrals_to_oscar --queue-only

  # After fixing the data or a lookup table: retry everything that failed in
  # a pipeline (without --pipeline: in every pipeline)
  engine retry --specs specs/cambodia --secrets-file /etc/casesync/kh.env --pipeline f1_referrals_to_oscar`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			if f.notWritten && (f.pipeline == "" || f.record == "") {
				return usageError("--not-written needs --pipeline and --record: it vouches for one record at a time")
			}
			return a.retry(cmd, &f)
		},
	}
	f.stateFlags.register(cmd)
	f.registerWait(cmd)
	cmd.Flags().StringVar(&f.pipeline, "pipeline", "", "retry this pipeline's failures only (default: every pipeline with queued failures)")
	cmd.Flags().StringVar(&f.record, "record", "", "retry this record key only (a fanned-out record's items included)")
	cmd.Flags().BoolVar(&f.queueOnly, "queue-only", false, "requeue without running a sync")
	cmd.Flags().BoolVar(&f.notWritten, "not-written", false, "a person checked the target: this write_unconfirmed record is not there, so its create may be sent again (needs --pipeline and --record)")
	return cmd
}

func (a *app) retry(cmd *cobra.Command, f *retryFlags) error {
	ctx := cmd.Context()
	var (
		plan  *engine.Plan
		path  string
		store *state.Store
		d     *deployment
		err   error
	)
	if f.queueOnly {
		plan, path, err = a.stateOf(&f.common)
	} else {
		plan, err = a.loadPlan(&f.common)
		if err == nil {
			path = a.statePathFor(&f.common, plan)
		}
	}
	if err != nil {
		return err
	}
	if err := checkPipeline(plan, f.pipeline); err != nil {
		return err
	}
	// Retry never creates a state file: with none there is nothing queued.
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return &exitError{code: 2, err: fmt.Errorf("no state file at %s: nothing has run yet, so nothing is queued", path)}
	}
	if f.queueOnly {
		if store, err = openStateWrite(path, f.wait); err != nil {
			return err
		}
		defer store.Close()
	} else {
		if d, err = a.openPlan(ctx, &f.common, plan, false); err != nil {
			return err
		}
		defer d.Close()
		store = d.store
	}

	items, err := store.Failures(ctx, f.pipeline)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	// Queue keys to requeue, per pipeline; --record matches a key or the
	// record a fanned-out item key ("<record>#<item>") belongs to.
	keys := map[string][]string{}
	// pushed are records a webhook pushed, kept with their body: the run
	// takes them from the queue, not by re-fetching.
	pushed := map[string]bool{}
	var pipelines []string
	for _, it := range items {
		if f.record != "" && it.RecordKey != f.record && baseKey(it.RecordKey) != f.record {
			continue
		}
		if len(it.Body) > 0 {
			pushed[it.Pipeline+"\x00"+baseKey(it.RecordKey)] = true
		}
		if _, ok := keys[it.Pipeline]; !ok {
			pipelines = append(pipelines, it.Pipeline)
		}
		keys[it.Pipeline] = append(keys[it.Pipeline], it.RecordKey)
	}
	slices.Sort(pipelines)
	if len(pipelines) == 0 {
		if f.record != "" {
			return &exitError{code: 1, err: fmt.Errorf("no queued record %q%s (engine failures lists the queue)", f.record, inPipeline(f.pipeline))}
		}
		if f.format == "json" {
			return writeJSON(a.stdout, retryJSON{Requeued: map[string]int{}})
		}
		fmt.Fprintf(a.stdout, "nothing to retry: the retry queue%s is empty\n", inPipeline(f.pipeline))
		return nil
	}

	now, actor := a.now(), a.actor()
	if f.notWritten {
		// The person checked the target: the unconfirmed creates of this
		// record did not land, so the engine may send them again.
		for _, k := range keys[f.pipeline] {
			if err := store.AbandonCreate(ctx, f.pipeline, k); err != nil {
				return &exitError{code: 2, err: err}
			}
			if err := store.Audit(ctx, engine.AuditEntry{At: now, Actor: actor, Action: "create_confirmed_not_written", Pipeline: f.pipeline, RecordKey: k}); err != nil {
				return &exitError{code: 2, err: err}
			}
		}
	}
	out := retryJSON{Requeued: map[string]int{}}
	for _, p := range pipelines {
		n := 0
		if f.record == "" {
			if n, err = store.RequeueNow(ctx, p, "", actor, now); err != nil {
				return &exitError{code: 2, err: err}
			}
		} else {
			for _, k := range keys[p] {
				m, err := store.RequeueNow(ctx, p, k, actor, now)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				n += m
			}
		}
		out.Requeued[p] = n
		if f.format == "text" {
			fmt.Fprintf(a.stdout, "%s: %d record(s) requeued\n", p, n)
		}
	}
	if f.queueOnly {
		if f.format == "json" {
			return writeJSON(a.stdout, out)
		}
		fmt.Fprintln(a.stdout, "they run with the next sync of their pipeline")
		return nil
	}

	failing, runFailed := 0, false
	for _, p := range pipelines {
		pl, ok := d.plan.Pipelines[p]
		if !ok {
			a.note(&f.common, slog.LevelError, fmt.Sprintf("%s is no longer in %s: its queued records were requeued but cannot run", p, d.plan.Name), true)
			runFailed = true
			continue
		}
		opts := engine.SyncOptions{Trigger: "retry"}
		if pl.Source.Get != nil {
			seen := map[string]bool{}
			for _, k := range keys[p] {
				if b := baseKey(k); !seen[b] && !pushed[p+"\x00"+b] {
					seen[b] = true
					opts.Keys = append(opts.Keys, b)
				}
			}
		}
		res, err := d.runner.Sync(ctx, p, opts)
		rj := retryRunJSON{Pipeline: p, Keys: opts.Keys}
		if res != nil {
			rj.RunID, rj.Counts, rj.Reasons = res.RunID, res.Counts, res.Reasons
			failing += res.Counts.Failed
			if f.format == "text" {
				printResult(a.stdout, res)
			}
		}
		// At the level an alert needs (error, or warn with failed records),
		// through the logger so --log-format json stays JSON.
		logRun(d.log, p, opts.Trigger, res, err)
		if err != nil {
			runFailed = true
			rj.Error = d.red.String(err.Error())
		}
		out.Runs = append(out.Runs, rj)
		if ctx.Err() != nil {
			break
		}
	}
	if f.format == "json" {
		if err := writeJSON(a.stdout, out); err != nil {
			return err
		}
	}
	switch {
	case runFailed:
		return &exitError{code: 1}
	case failing > 0:
		return &exitError{code: 1, err: fmt.Errorf("%d record(s) failed again (engine failures%s)", failing, pipelineFlag(f.pipeline))}
	}
	return nil
}

// baseKey is the source record key of a queue key: a fanned-out item's
// key is "<record>#<item>".
func baseKey(k string) string {
	if i := strings.IndexByte(k, '#'); i >= 0 {
		return k[:i]
	}
	return k
}

func inPipeline(p string) string {
	if p == "" {
		return ""
	}
	return " of " + p
}

func pipelineFlag(p string) string {
	if p == "" {
		return ""
	}
	return " --pipeline " + p
}
