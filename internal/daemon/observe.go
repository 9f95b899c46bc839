package daemon

import (
	"context"
	"sync/atomic"

	"casesync/internal/version"
)

// daemonMetrics are the daemon's own metric families.
type daemonMetrics struct {
	reg            *registry
	records        *counterVec
	lookupMisses   *counterVec
	runs           *counterVec
	coalesced      *counterVec
	reloads        *counterVec
	reloadFailures *counterVec
	inbox          *counterVec
	inboxDone      *counterVec
	requestDur     *histVec
	acceptDur      *histVec
	runDur         *histVec
	inProgress     atomic.Int64
}

func newDaemonMetrics(d *Daemon) *daemonMetrics {
	r := newRegistry()
	m := &daemonMetrics{
		reg:            r,
		records:        r.counter("casesync_records_total", "Source records read and their outcomes (created, updated, unchanged, skipped, failed, not_processed: left by a run stopped by refused credentials or a broken configuration, for the next run to take again), by pipeline.", "pipeline", "outcome"),
		lookupMisses:   r.counter("casesync_lookup_misses_total", "Lookup misses of finished runs by pipeline, lookup and its on_miss policy (fail, null, skip, default): every miss, including those that sent null or a default.", "pipeline", "lookup", "policy"),
		runs:           r.counter("casesync_runs_total", "Finished runs by pipeline, trigger kind (cron, after, manual, inbox) and status.", "pipeline", "trigger", "status"),
		coalesced:      r.counter("casesync_runs_coalesced_total", "Cron or chained triggers folded into a run already waiting, so runs never overlap.", "pipeline"),
		reloads:        r.counter("casesync_reloads_total", "Spec reloads that replaced the running plan."),
		reloadFailures: r.counter("casesync_reload_failures_total", "Spec reloads rejected; the previous plan kept running."),
		inbox:          r.counter("casesync_inbox_deliveries_total", "Webhook deliveries by pipeline and result (accepted, duplicate, unauthorized, too_large, bad_request, unprocessable, error).", "pipeline", "result"),
		inboxDone:      r.counter("casesync_inbox_processed_total", "Webhook deliveries processed through their pipeline.", "pipeline"),
		requestDur:     r.histogram("casesync_request_duration_seconds", "Connector call latency, retries included: call=do for single requests, call=page for each listing page.", latencyBuckets, "connector", "call"),
		acceptDur:      r.histogram("casesync_inbox_accept_seconds", "Time to accept a webhook delivery durably (authenticated, stored, answered).", latencyBuckets, "pipeline"),
		runDur:         r.histogram("casesync_run_duration_seconds", "Run duration by pipeline.", runBuckets, "pipeline"),
	}
	// Sorted by name, "go_…" and "process_…" come after the casesync_ families.
	r.register("go_and_process", newRuntimeFamilies())
	r.gaugeFunc("casesync_runs_in_progress", "Runs in flight.", nil, func() []sample {
		return []sample{{v: float64(m.inProgress.Load())}}
	})
	r.gaugeFunc("casesync_ready", "1 while a plan is loaded, the state is open and the daemon is not shutting down.", nil, func() []sample {
		v := 0.0
		if d.Ready() {
			v = 1
		}
		return []sample{{v: v}}
	})
	r.gaugeFunc("casesync_build_info", "The running build: 1, labelled with its version, VCS revision and Go version.", []string{"version", "revision", "goversion"}, func() []sample {
		v := version.Get()
		return []sample{{[]string{v.Version, v.Revision, v.Go}, 1}}
	})
	r.gaugeFunc("casesync_spec_info", "The running spec: 1, labelled with the deployment and the spec hash.", []string{"deployment", "hash"}, func() []sample {
		p := d.Plan()
		return []sample{{[]string{p.Name, p.Hash}, 1}}
	})
	r.gaugeFunc("casesync_inbox_pending", "Webhook deliveries stored and not yet processed.", []string{"pipeline"}, func() []sample {
		plan := d.Plan()
		var out []sample
		for _, name := range plan.Order {
			if plan.Pipelines[name].Inbox != nil {
				out = append(out, sample{[]string{name}, float64(d.slot(name).pending.Load())})
			}
		}
		return out
	})
	r.gaugeFunc("casesync_retry_queue", "Records in the retry queue by pipeline, parked ones included.", []string{"pipeline"}, func() []sample {
		st, err := d.cfg.State.Stats(context.Background())
		if err != nil {
			return nil
		}
		var out []sample
		for name, s := range st {
			out = append(out, sample{[]string{name}, float64(s.Queued)})
		}
		return out
	})
	r.gaugeFunc("casesync_retry_parked", "Records parked in the retry queue by pipeline: they failed max_attempts times and wait for a person (engine failures, engine retry).", []string{"pipeline"}, func() []sample {
		st, err := d.cfg.State.Stats(context.Background())
		if err != nil {
			return nil
		}
		var out []sample
		for name, s := range st {
			out = append(out, sample{[]string{name}, float64(s.Parked)})
		}
		return out
	})
	r.gaugeFunc("casesync_last_success_timestamp_seconds", "When the pipeline's last run that succeeded finished, Unix seconds; alert on time() minus this. Its records may still have failed (casesync_records_total).", []string{"pipeline"}, func() []sample {
		st, err := d.cfg.State.Stats(context.Background())
		if err != nil {
			return nil
		}
		var out []sample
		for name, s := range st {
			if s.HasSuccess && !s.LastSuccess.Finished.IsZero() {
				out = append(out, sample{[]string{name}, float64(s.LastSuccess.Finished.UnixMilli()) / 1000})
			}
		}
		return out
	})
	conn := func(pick func(requests, retries, throttled, logins int64) int64) func() []sample {
		return func() []sample {
			var out []sample
			for name, s := range d.connectorStats() {
				out = append(out, sample{[]string{name}, float64(pick(s.Requests, s.Retries, s.Throttled, s.Logins))})
			}
			return out
		}
	}
	r.counterFunc("casesync_connector_requests_total", "HTTP requests sent by connector, logins and retries included.", []string{"connector"},
		conn(func(n, _, _, _ int64) int64 { return n }))
	r.counterFunc("casesync_connector_retries_total", "Requests repeated after a retryable failure, by connector.", []string{"connector"},
		conn(func(_, n, _, _ int64) int64 { return n }))
	r.counterFunc("casesync_connector_throttled_total", "429 answers by connector.", []string{"connector"},
		conn(func(_, _, n, _ int64) int64 { return n }))
	return m
}
