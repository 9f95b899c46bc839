package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"casesync/engine"
	"casesync/internal/state"
)

const syncLong = `Sync runs one pipeline once, now: the "Run" button. It first retries queued
failures that are due, then reads the source from the pipeline's cursor page
by page, and for every record runs the filters, enrich steps, mapping,
lookups, upsert and after-steps. Each page's outcomes commit to the state
file together; the cursor moves with the last page. A record that fails is
recorded with its reason and queued for retry; the others carry on.

PIPELINE may be a pipeline with branches: all its branches run over one
listing of its source, as the daemon runs them; a branch named alone runs on
its own, with its own listing.

Pipelines chained after this one (trigger.after) run when it succeeds,
unless --no-chain is given.

On a terminal a live line shows records, rate and, when the source
announces a total, an ETA; otherwise progress is logged at info
(--log-level info) at most every 5 s. A record that fails is logged at warn,
a run that finishes with failed records at warn, a failed run at error;
--log-format json writes one JSON object a line for a log shipper.

Exit codes: 0 the run went through and no record failed; 1 spec problems, a
run that failed or stopped (refused credentials: no record is charged), or
a record that failed (it waits in the retry queue: engine failures); 2 usage
or I/O error, a secret not set, the state file held by another engine process (see --wait), damaged or
not casesync's.`

type syncFlags struct {
	common
	limit    int
	noChain  bool
	trigger  string
	baseline bool
}

func (a *app) syncCmd() *cobra.Command {
	var f syncFlags
	cmd := &cobra.Command{
		Use:   "sync PIPELINE",
		Short: "Run one pipeline once now (and the pipelines chained after it)",
		Long:  syncLong,
		Example: `  # Run a pipeline and those chained after it; secrets from a dotenv file.
  # Exit 1 with a run that went through means records failed: list them
  engine sync f1_referrals_to_oscar --specs specs/cambodia --secrets-file /etc/casesync/kh.env ||
    engine failures --specs specs/cambodia

  # This pipeline only, JSON logs for a log shipper; a scheduler tells
  # failed records (exit 1) from a setup that cannot run (exit 2)
  engine sync f1_referrals_to_oscar --specs specs/cambodia --secrets-file /etc/casesync/kh.env \
    --no-chain --log-format json --log-level info || [ $? -eq 1 ]`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			plan, err := a.loadPlan(&f.common)
			if err != nil {
				return err
			}
			// Before the state is opened: a typo must not leave a new,
			// empty state file behind.
			if err := knownPipeline(plan, args[0]); err != nil {
				return err
			}
			d, err := a.openPlan(cmd.Context(), &f.common, plan, false)
			if err != nil {
				return err
			}
			defer d.Close()
			if f.baseline {
				return a.baseline(cmd.Context(), d, args[0], f)
			}
			return a.syncChain(cmd.Context(), d, args[0], engine.SyncOptions{Limit: f.limit, Trigger: orDefault(f.trigger, "manual")}, !f.noChain)
		},
	}
	f.common.register(cmd)
	f.registerWait(cmd)
	f.registerNow(cmd)
	cmd.Flags().IntVar(&f.limit, "limit", 0, "stop after this many source records (the cursor does not move)")
	cmd.Flags().BoolVar(&f.noChain, "no-chain", false, "do not run the pipelines chained after this one")
	cmd.Flags().StringVar(&f.trigger, "trigger", "", "trigger recorded on the run (default manual)")
	cmd.Flags().BoolVar(&f.baseline, "baseline", false, "cutover from the integration that ran before: record every write this run would send as already delivered (ledger and audit trail) without sending it; this pipeline only, no retries, no chain (see README, Deployment)")
	return cmd
}

// baseline is sync --baseline: one run of pipeline whose writes are
// recorded as delivered by the previous integration, not sent, and one
// audit row saying so.
func (a *app) baseline(ctx context.Context, d *deployment, pipeline string, f syncFlags) error {
	opts := engine.SyncOptions{Limit: f.limit, Trigger: orDefault(f.trigger, "baseline"), Baseline: true, SkipRetries: true}
	pr := newProgress(a.stderr, d.log)
	d.runner.Progress = pr.update
	res, err := d.runner.Sync(ctx, pipeline, opts)
	pr.finish()
	if res != nil {
		printResult(a.stdout, res)
		fmt.Fprintf(a.stdout, "  %d write(s) recorded as delivered by the previous integration, not sent (reason %s)\n",
			res.Counts.Baselined, engine.ReasonBaseline)
	}
	logRun(d.log, pipeline, opts.Trigger, res, err)
	if res != nil && res.RunID != 0 {
		detail := fmt.Sprintf("run=%d baselined=%d", res.RunID, res.Counts.Baselined)
		if aerr := d.store.Audit(ctx, engine.AuditEntry{At: a.now(), Actor: a.actor(), Action: "baseline", Pipeline: pipeline, Detail: detail}); aerr != nil && err == nil {
			err = aerr
		}
	}
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("%s: %s", pipeline, d.red.String(err.Error()))}
	}
	if res != nil && res.Counts.Failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d %s (engine failures)", res.Counts.Failed, failedRecordsMsg)}
	}
	return nil
}

// failedRecordsMsg ends engine sync's exit-1 message for a run that went
// through with failed records (engine bench reads it from its child).
const failedRecordsMsg = "record(s) failed and wait in the retry queue"

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// syncChain runs pipeline (a pipeline with branches: all of them, over one
// listing), then every pipeline whose trigger.after names it or one of its
// branches, in order, when it succeeded.
func (a *app) syncChain(ctx context.Context, d *deployment, pipeline string, opts engine.SyncOptions, chain bool) error {
	if err := knownPipeline(d.plan, pipeline); err != nil {
		return err
	}
	queue := []string{pipeline}
	done := map[string]bool{}
	var failed bool
	recordsFailed := 0
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if done[name] {
			continue
		}
		done[name] = true
		pr := newProgress(a.stderr, d.log)
		d.runner.Progress = pr.update
		results, err := d.runner.SyncUnit(ctx, name, opts)
		pr.finish()
		var next []string
		for _, res := range results {
			printResult(a.stdout, res)
			logRun(d.log, res.Pipeline, opts.Trigger, res, res.Err)
			recordsFailed += res.Counts.Failed
			if res.Err == nil {
				for _, c := range d.plan.ChainedAfter(res.Pipeline) {
					next = append(next, d.plan.Unit(c))
				}
			}
		}
		if len(results) == 0 {
			logRun(d.log, name, opts.Trigger, nil, err)
		}
		if err != nil {
			failed = true
			if ctx.Err() != nil {
				break
			}
		}
		if !chain || len(next) == 0 {
			continue
		}
		queue = append(queue, next...)
		opts.Trigger = "after:" + name
	}
	if failed {
		return &exitError{code: 1}
	}
	if recordsFailed > 0 {
		// The run itself went through, but a scheduler or a script must
		// not read "all written" from it.
		return &exitError{code: 1, err: fmt.Errorf("%d %s (engine failures)", recordsFailed, failedRecordsMsg)}
	}
	return nil
}

func knownPipeline(plan *engine.Plan, name string) error {
	if _, ok := plan.Pipelines[name]; !ok && plan.Groups[name] == nil {
		have := strings.Join(plan.Order, ", ")
		if len(plan.Groups) > 0 {
			have += "; with branches: " + strings.Join(slices.Sorted(maps.Keys(plan.Groups)), ", ")
		}
		return usageError("no pipeline %q in %s (have: %s)", name, plan.Name, have)
	}
	return nil
}

func printResult(w io.Writer, res *engine.RunResult) {
	fmt.Fprintf(w, "%s: %s (%s)\n", res.Pipeline, countsLine(res.Counts), res.Duration.Round(time.Millisecond))
	var stop *engine.RunStoppedError
	if errors.As(res.Err, &stop) {
		// Not the error itself (logged, redacted): what became of the run.
		fmt.Fprintf(w, "  stopped: %s\n", stop.Summary())
	}
	for _, r := range engine.SortedReasons(res.Reasons) {
		fmt.Fprintf(w, "  %-32s %d\n", printable(r), res.Reasons[r])
	}
	for name, n := range res.Misses {
		fmt.Fprintf(w, "  lookup %s missed %d time(s)\n", name, n)
	}
}

// logRun logs a finished run at the level an alert should see it: error
// when it failed, warn when it finished with failed records, info when
// clean. The error is redacted by the logger's handler.
func logRun(log *slog.Logger, pipeline, trigger string, res *engine.RunResult, err error) {
	var attrs []any
	attrs = append(attrs, "pipeline", pipeline, "trigger", trigger)
	if res != nil {
		c := res.Counts
		attrs = append(attrs, "read", c.Read, "created", c.Created, "updated", c.Updated, "unchanged", c.Unchanged,
			"skipped", c.Skipped, "failed", c.Failed)
		if c.NotProcessed > 0 {
			attrs = append(attrs, "not_processed", c.NotProcessed)
		}
		attrs = append(attrs, "duration", res.Duration.Round(time.Millisecond))
	}
	switch {
	case err != nil:
		log.Error("run failed", append(attrs, "error", err)...)
	case res != nil && res.Counts.Failed > 0:
		log.Warn("run finished with failed records", attrs...)
	default:
		log.Info("run succeeded", attrs...)
	}
}

// progress draws a live line on a terminal and, elsewhere, logs a line
// per page at most every 5 s (through the logger, so --log-format json
// keeps stderr all JSON).
type progress struct {
	w     io.Writer
	log   *slog.Logger
	tty   bool
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer, log *slog.Logger) *progress {
	p := &progress{w: w, log: log}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(e engine.ProgressEvent) {
	now := time.Now()
	if !p.tty {
		// One line per page at most every 5 s keeps CI logs short. Info,
		// not warn: an alert on warnings must not fire for a long run.
		if now.Sub(p.last) < 5*time.Second {
			return
		}
		p.last = now
		p.log.Info("progress", "pipeline", e.Pipeline, "page", e.Page, "read", e.Counts.Read, "elapsed", e.Elapsed.Round(time.Second))
		return
	}
	if now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	rate := 0.0
	if s := e.Elapsed.Seconds(); s > 0 {
		rate = float64(e.Counts.Read) / s
	}
	line := fmt.Sprintf("%s: %d read, %d written, %d failed, %.0f/s", e.Pipeline, e.Counts.Read, e.Counts.Created+e.Counts.Updated, e.Counts.Failed, rate)
	if e.Total > 0 && rate > 0 && e.Counts.Read < e.Total {
		eta := time.Duration(float64(e.Total-e.Counts.Read)/rate) * time.Second
		line += fmt.Sprintf(", %d/%d, ETA %s", e.Counts.Read, e.Total, eta.Round(time.Second))
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
}

func (p *progress) finish() {
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// openStateForDryRun opens an existing state file read-only, or an empty
// throwaway one: a dry-run must never create or change the real file.
// throwaway is the throwaway's folder ("" for none), for the caller to
// remove once the store is closed.
func openStateForDryRun(path string) (st *state.Store, throwaway string, err error) {
	if _, err := os.Stat(path); err == nil {
		st, err := state.OpenReadOnly(path)
		return st, "", err
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", err
	}
	dir, err := os.MkdirTemp("", "casesync-dryrun-")
	if err != nil {
		return nil, "", err
	}
	st, err = state.Open(filepath.Join(dir, "empty.db"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	return st, dir, nil
}
