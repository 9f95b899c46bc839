package daemon

import (
	"context"
	_ "embed"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/state"
	"casesync/internal/version"
)

// Status is the /status document.
type Status struct {
	// Version is the build serving this document (engine --version).
	Version    string       `json:"version"`
	Deployment string       `json:"deployment"`
	SpecHash   string       `json:"spec_hash"`
	LoadedAt   time.Time    `json:"loaded_at"`
	Started    time.Time    `json:"started"`
	Ready      bool         `json:"ready"`
	Reloads    int64        `json:"reloads"`
	Failures   int64        `json:"reload_failures"`
	LastError  *ReloadError `json:"last_reload_error"`
	// Attention counts the pipelines whose health is "failed" or
	// "attention": the one number an admin glancing at the page needs.
	Attention int              `json:"attention"`
	Pipelines []PipelineStatus `json:"pipelines"`
}

// ReloadError is the last rejected reload, with the problems' positions.
type ReloadError struct {
	At       time.Time     `json:"at"`
	Error    string        `json:"error"`
	Problems spec.Problems `json:"problems,omitempty"`
	Paths    []string      `json:"paths,omitempty"`
}

// Health of a pipeline, worst first.
const (
	// HealthFailed: the last run failed or was cut short.
	HealthFailed = "failed"
	// HealthAttention: records failed (in the last run, or so far in the
	// run going on) or wait parked for a person; the run itself finished.
	HealthAttention = "attention"
	HealthRunning   = "running"
	HealthOK        = "ok"
	HealthNeverRun  = "never_run"
)

// PipelineStatus is one pipeline in /status and in engine status --format
// json: one type, so the two always use the same field names.
type PipelineStatus struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Cron        string   `json:"cron,omitempty"`
	After       []string `json:"after,omitempty"`
	InboxPath   string   `json:"inbox_path,omitempty"`
	Manual      bool     `json:"manual"`
	// Health sums the rest up: failed, attention, running, ok, never_run.
	Health        string      `json:"health"`
	NextRun       *time.Time  `json:"next_run,omitempty"`
	Running       *RunningRun `json:"running,omitempty"`
	Cursor        string      `json:"cursor,omitempty"`
	CursorUpdated *time.Time  `json:"cursor_updated,omitempty"`
	// ReadsFrom is where the next run starts reading (the cursor less the
	// overlap, or the spec's initial value).
	ReadsFrom   string   `json:"reads_from,omitempty"`
	LastRun     *LastRun `json:"last_run,omitempty"`
	LastSuccess *LastRun `json:"last_success,omitempty"`
	RetryQueued int      `json:"retry_queued"`
	RetryParked int      `json:"retry_parked"`
	// RetryByReason counts the retry queue (parked included) by reason.
	RetryByReason map[string]int `json:"retry_by_reason,omitempty"`
	InboxPending  *int64         `json:"inbox_pending,omitempty"`
}

// RunningRun is a run in flight, with the counts of the pages committed
// so far.
type RunningRun struct {
	Trigger  string        `json:"trigger"`
	Started  time.Time     `json:"started"`
	SpecHash string        `json:"spec_hash"`
	Counts   engine.Counts `json:"counts"`
}

// LastRun is a recorded run.
type LastRun struct {
	ID       int64         `json:"id"`
	Trigger  string        `json:"trigger"`
	Status   string        `json:"status"`
	Started  time.Time     `json:"started"`
	Finished *time.Time    `json:"finished,omitempty"`
	SpecHash string        `json:"spec_hash"`
	Counts   engine.Counts `json:"counts"`
	Error    string        `json:"error,omitempty"`
}

func lastRun(r engine.RunInfo) *LastRun {
	lr := &LastRun{ID: r.ID, Trigger: r.Trigger, Status: r.Status, Started: r.Started, SpecHash: r.SpecHash, Counts: r.Counts, Error: r.Error}
	if !r.Finished.IsZero() {
		f := r.Finished
		lr.Finished = &f
	}
	return lr
}

// PipelineFromState is what the spec and the state file say of one
// pipeline; p is nil for a pipeline the state knows and the spec no longer
// has. The daemon adds what only it knows (running, next run, inbox).
func PipelineFromState(name string, p *engine.Pipeline, s state.PipelineStats) PipelineStatus {
	ps := PipelineStatus{Name: name}
	if p != nil {
		t := p.Spec.Trigger
		ps.Description, ps.Cron, ps.After, ps.Manual = p.Spec.Description, t.Cron, t.After, t.Manual
		if p.Inbox != nil {
			ps.InboxPath = p.Inbox.Path
		}
		ps.ReadsFrom, _ = p.ReadFrom(s.Cursor, s.HasCursor)
	}
	if s.HasCursor {
		ps.Cursor = s.Cursor
		t := s.CursorUpdated
		ps.CursorUpdated = &t
	}
	if s.HasRun {
		ps.LastRun = lastRun(s.LastRun)
	}
	if s.HasSuccess {
		ps.LastSuccess = lastRun(s.LastSuccess)
	}
	ps.RetryQueued, ps.RetryParked = s.Queued, s.Parked
	if len(s.QueuedByReason) > 0 {
		ps.RetryByReason = maps.Clone(s.QueuedByReason)
	}
	ps.Health = ps.health()
	return ps
}

func (ps *PipelineStatus) health() string {
	if r := ps.Running; r != nil {
		if r.Counts.Failed > 0 {
			return HealthAttention
		}
		return HealthRunning
	}
	r := ps.LastRun
	switch {
	case r == nil:
		return HealthNeverRun
	case r.Status == "running":
		return HealthRunning // another process's run, or one cut short and not yet seen
	case r.Status != "succeeded":
		return HealthFailed
	case r.Counts.Failed > 0 || ps.RetryParked > 0:
		return HealthAttention
	}
	return HealthOK
}

// NeedsAttention is true for the failed and attention healths.
func (ps *PipelineStatus) NeedsAttention() bool {
	return ps.Health == HealthFailed || ps.Health == HealthAttention
}

// Status reads the running plan, the state and the schedule.
func (d *Daemon) Status(ctx context.Context) (*Status, error) {
	b := d.cur.Load()
	stats, err := d.cfg.State.Stats(ctx)
	if err != nil {
		return nil, err
	}
	next := d.NextRuns()
	d.mu.Lock()
	ri := d.reloadInfo
	d.mu.Unlock()
	st := &Status{Version: version.Get().String(), Deployment: b.plan.Name, SpecHash: b.plan.Hash, LoadedAt: ri.loadedAt, Started: d.started, Ready: d.Ready(),
		Reloads: ri.count, Failures: ri.failures}
	if ri.lastErr != "" {
		st.LastError = &ReloadError{At: ri.lastErrAt, Error: ri.lastErr, Problems: ri.problems, Paths: ri.lastPaths}
	}
	names := slices.Clone(b.plan.Order)
	for name := range stats {
		if _, ok := b.plan.Pipelines[name]; !ok {
			names = append(names, name) // known to the state, gone from the spec
		}
	}
	for _, name := range names {
		ps := PipelineFromState(name, b.plan.Pipelines[name], stats[name])
		sl := d.slot(name)
		if ps.InboxPath != "" {
			n := sl.pending.Load()
			ps.InboxPending = &n
		}
		if t, ok := next[name]; ok {
			ps.NextRun = &t
		}
		if ri := sl.running.Load(); ri != nil {
			// The state's run row gets its counts when the run ends; the
			// pages committed so far are in the slot (as in /metrics).
			sl.mu.Lock()
			c := sl.seen
			sl.mu.Unlock()
			ps.Running = &RunningRun{Trigger: ri.Trigger, Started: ri.Started, SpecHash: ri.Hash, Counts: c}
		}
		ps.Health = ps.health()
		if ps.NeedsAttention() {
			st.Attention++
		}
		st.Pipelines = append(st.Pipelines, ps)
	}
	return st, nil
}

//go:embed status.html
var pageHTML string

var pageTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
	"when":       func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"reasons":    engine.SortedReasons,
	"healthText": func(h string) string { return strings.ReplaceAll(h, "_", " ") },
}).Parse(pageHTML))

func (d *Daemon) servePage(w http.ResponseWriter, r *http.Request) {
	st, err := d.Status(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, st); err != nil {
		d.log.Warn("render status page", "error", err)
	}
}
