package daemon_test

import (
	"context"
	"log/slog"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"casesync/engine"
	"casesync/internal/daemon"
	"casesync/internal/state"
)

// seedRun writes a finished run into a new state file.
func seedRun(t *testing.T, path string, started time.Time, status string) {
	t.Helper()
	st, err := state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	id, err := st.StartRun(ctx, pipeline, "before", "cron", started)
	if err != nil {
		t.Fatal(err)
	}
	if status != state.StatusRunning {
		if err := st.FinishRun(ctx, id, status, engine.Counts{}, "", started.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) runs() []engine.RunInfo {
	e.tb.Helper()
	runs, err := e.store.Runs(context.Background(), pipeline, 0)
	if err != nil {
		e.tb.Fatal(err)
	}
	slices.Reverse(runs) // oldest first
	return runs
}

// midHour is the wall clock moved to half past the hour it starts in, so
// a test of an hourly schedule (and of what a run at :00 would have
// missed) cannot meet the top of an hour while it runs, whenever it runs.
type midHour struct{ off time.Duration }

func newMidHour() midHour {
	now := time.Now()
	return midHour{off: now.Truncate(time.Hour).Add(30 * time.Minute).Sub(now)}
}

func (c midHour) Now() time.Time { return time.Now().UTC().Add(c.off) }

func TestDaemon_MissedScheduleRunsOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	clock := newMidHour()
	// Hourly, last run three hours ago: three slots missed while down.
	seedRun(t, path, clock.Now().Add(-3*time.Hour), "succeeded")
	e := newEnv(t, envOptions{dep: deployment{cron: "0 * * * *"}, statePath: path, clock: clock})
	var fin daemon.Event
	scheduled := false
	for fin.Kind == "" || !scheduled {
		ev := e.waitFor("the catch-up run and the schedule", func(daemon.Event) bool { return true })
		switch ev.Kind {
		case daemon.EventRunFinished:
			fin = ev
		case daemon.EventScheduled:
			scheduled = true
		}
	}
	if fin.Trigger != "cron" || fin.Err != nil {
		t.Fatalf("catch-up run: trigger %q err %v", fin.Trigger, fin.Err)
	}
	if runs := e.runs(); len(runs) != 2 {
		t.Fatalf("%d runs after catching up, want the seeded one and exactly one more", len(runs))
	}
	next := e.d.NextRuns()[pipeline]
	if !next.After(clock.Now()) || next.Minute() != 0 {
		t.Errorf("next scheduled run %v, want the next full hour", next)
	}
	select {
	case ev := <-e.events:
		if ev.Kind == daemon.EventRunStarted {
			t.Errorf("a second catch-up run started: %+v", ev)
		}
	default:
	}
}

func TestDaemon_NoCatchUpWhenNothingWasMissed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	clock := newMidHour()
	seedRun(t, path, clock.Now(), "succeeded")
	e := newEnv(t, envOptions{dep: deployment{cron: "0 * * * *"}, statePath: path, clock: clock})
	e.waitKind(daemon.EventScheduled) // catch-up decisions come before the first schedule
	for {
		select {
		case ev := <-e.events:
			if ev.Kind == daemon.EventRunStarted {
				t.Fatalf("run started although no schedule was missed: %+v", ev)
			}
			continue
		default:
		}
		break
	}
	if runs := e.runs(); len(runs) != 1 {
		t.Errorf("%d runs, want only the seeded one", len(runs))
	}
}

// A cron firing every second against a run held for several seconds: the
// firings fold into one queued run, and runs never overlap.
func TestDaemon_NoOverlappingRuns(t *testing.T) {
	e := newEnv(t, envOptions{dep: deployment{cron: "@every 1s", per: 50}})
	hit, _ := e.gate.hold(2)
	<-hit
	e.waitKind(daemon.EventRunCoalesced) // one firing queued, a later one folded into it
	e.gate.openAll()
	inflight, finished := 1, 0 // the held run has started
	for finished < 3 {
		ev := e.waitFor("runs", func(ev daemon.Event) bool {
			return ev.Kind == daemon.EventRunStarted || ev.Kind == daemon.EventRunFinished
		})
		switch ev.Kind {
		case daemon.EventRunStarted:
			inflight++
		case daemon.EventRunFinished:
			inflight--
			finished++
		}
		if inflight > 1 {
			t.Fatal("two runs of one pipeline in flight")
		}
	}
	e.stop()
	runs := e.runs()
	for i := 1; i < len(runs); i++ {
		if runs[i].Started.Before(runs[i-1].Finished) {
			t.Errorf("run %d started at %v before run %d finished at %v", runs[i].ID, runs[i].Started, runs[i-1].ID, runs[i-1].Finished)
		}
	}
	if m := e.metrics(); !containsLine(m, `casesync_runs_coalesced_total{pipeline="cases_to_oscar"}`) {
		t.Errorf("metrics lack the coalesced firings:\n%s", m)
	}
}

func TestDaemon_ChainedRunAfterSuccess(t *testing.T) {
	e := newEnv(t, envOptions{dep: deployment{chained: true}})
	first := e.runNow()
	if first.Err != nil || first.Pipeline != pipeline {
		t.Fatalf("first run: %+v", first)
	}
	next := e.waitKind(daemon.EventRunFinished)
	if next.Pipeline != "again" || next.Trigger != "after:"+pipeline || next.Err != nil {
		t.Fatalf("chained run: pipeline %q trigger %q err %v", next.Pipeline, next.Trigger, next.Err)
	}
	if c := next.Result.Counts; c.Failed != 0 || c.Read == 0 || c.Created+c.Updated != 0 {
		t.Errorf("chained run counts %+v", next.Result.Counts)
	}
	if n := e.sb.Oscar.Counters().Duplicates.Load(); n != 0 {
		t.Errorf("%d duplicates at OSCaR", n)
	}
}

// A pipeline with branches chained after another runs once, as one: one
// listing of Primero, a finished run (event, /status, /metrics) for each
// branch under its own name, the trigger naming what it followed.
func TestDaemon_BranchesRunOverOneListing(t *testing.T) {
	e := newEnv(t, envOptions{dep: deployment{branched: true}})
	if first := e.runNow(); first.Err != nil || first.Pipeline != pipeline {
		t.Fatalf("first run: %+v", first)
	}
	got := map[string]daemon.Event{}
	for len(got) < 2 {
		ev := e.waitKind(daemon.EventRunFinished)
		got[ev.Pipeline] = ev
	}
	for _, name := range []string{"both_one", "both_two"} {
		ev, ok := got[name]
		if !ok || ev.Err != nil || ev.Trigger != "after:"+pipeline {
			t.Fatalf("%s: %+v (finished: %v)", name, ev, slices.Collect(maps.Keys(got)))
		}
		if c := ev.Result.Counts; c.Read == 0 || c.Skipped != c.Read || ev.Result.Reasons["not_this_branch"] != c.Read {
			t.Errorf("%s counts %+v reasons %v", name, c, ev.Result.Reasons)
		}
	}
	// cases_to_oscar's listing, then the branches' one.
	listings := 0
	for _, r := range e.sb.Primero.Requests() {
		if q, _ := url.ParseQuery(r.Query); r.Method == "GET" && r.Path == "/api/v2/cases" && q.Get("page") == "1" {
			listings++
		}
	}
	if listings != 2 {
		t.Errorf("Primero listed %d times for one pipeline and two branches, want twice", listings)
	}
	if m := e.metrics(); !containsLine(m, `casesync_runs_total{pipeline="both_one",trigger="after",status="succeeded"} 1`) ||
		!containsLine(m, `casesync_runs_total{pipeline="both_two",trigger="after",status="succeeded"} 1`) {
		t.Errorf("metrics lack a run per branch:\n%s", m)
	}
}

// SIGTERM in the middle of a listing: the page in flight finishes and
// commits, the run stops at the next page boundary, the cursor stays, and
// the next start resumes and ends where a clean run ends.
func TestDaemon_ShutdownDuringARunLosesNothing(t *testing.T) {
	dep := deployment{cursor: true, per: 20, cron: "0 0 1 1 *"} // yearly: only the catch-up runs
	ref := newEnv(t, envOptions{dep: dep})
	if ev := ref.runNow(); ev.Err != nil {
		t.Fatal(ev.Err)
	}
	want := externalIDs(ref)

	path := filepath.Join(t.TempDir(), "state.db")
	e := newEnv(t, envOptions{dep: dep, statePath: path})
	hit, release := e.gate.hold(4)
	if resp := e.post("/pipelines/"+pipeline+"/run", "", nil); resp.StatusCode != 202 {
		t.Fatalf("POST run: %d", resp.StatusCode)
	}
	<-hit // pages 1 to 3 committed, page 4 held before it is handed over
	stopped := make(chan struct{})
	go func() { e.stop(); close(stopped) }()
	e.waitKind(daemon.EventDraining)
	if e.d.Ready() {
		t.Error("/readyz still ready while draining")
	}
	release()
	fin := e.waitKind(daemon.EventRunFinished)
	<-stopped
	if fin.Err == nil {
		t.Fatal("the run finished although shutdown began before its last page")
	}
	last, _, _ := e.store.LastRun(context.Background(), pipeline)
	if last.Status != "interrupted" {
		t.Errorf("run status %q, want interrupted", last.Status)
	}
	if fin.Result.Counts.Read != 60 {
		t.Errorf("interrupted run processed %d records, want the 60 of the three pages before the boundary", fin.Result.Counts.Read)
	}
	if _, ok, _ := e.store.Cursor(context.Background(), pipeline); ok {
		t.Error("the cursor moved although the listing did not finish")
	}
	e.store.Close()

	// Restart on the same state: the interrupted run is resumed at once.
	again := newEnv(t, envOptions{dep: dep, statePath: path, sb: e.sb})
	if ev := again.waitKind(daemon.EventRunFinished); ev.Err != nil || ev.Trigger != "cron" {
		t.Fatalf("resumed run: trigger %q err %v", ev.Trigger, ev.Err)
	}
	if diff := slicesDiff(want, externalIDs(again)); diff != "" {
		t.Errorf("OSCaR after interrupt and resume differs from a clean run: %s", diff)
	}
	if n := again.sb.Oscar.Counters().Duplicates.Load(); n != 0 {
		t.Errorf("%d duplicates at OSCaR", n)
	}
}

// A run the daemon itself has in flight when its scheduler starts (a
// manual run asked for as the daemon came up) is not "a last run that did
// not finish": catching up must not queue a second full run behind it. It
// once did, and the second run's fresh row (0 failed) replaced the first
// as /status's last run right after the first run's finished event, while
// /metrics still counted the first run's failures.
func TestDaemon_NoCatchUpForItsOwnRunInFlight(t *testing.T) {
	var logs lockedBuffer
	e := newEnv(t, envOptions{dep: deployment{cron: "0 0 1 1 *"}, noRun: true,
		log: slog.New(slog.NewTextHandler(&logs, nil))})
	hit, release := e.gate.hold(1)
	if got := e.post("/pipelines/"+pipeline+"/run", "", nil).StatusCode; got != 202 {
		t.Fatalf("manual run: %d", got)
	}
	<-hit // the run's row is in the state, status running
	e.run()
	e.waitKind(daemon.EventScheduled) // catch-up decisions come before the first schedule
	release()
	fin := e.waitKind(daemon.EventRunFinished)
	if fin.Trigger != "manual" || fin.Err != nil {
		t.Fatalf("finished run: trigger %q err %v", fin.Trigger, fin.Err)
	}
	if strings.Contains(logs.String(), "catching up") {
		t.Errorf("the scheduler caught up on the daemon's own run in flight:\n%s", logs.String())
	}
	ps := statusOf(t, e).Pipelines[0]
	if ps.Running != nil || ps.LastRun == nil || ps.LastRun.Trigger != "manual" || ps.LastRun.Status != "succeeded" {
		t.Errorf("/status after the manual run: running %+v, last run %+v; want the manual run, nothing after it", ps.Running, ps.LastRun)
	}
	e.stop()
	if runs := e.runs(); len(runs) != 1 {
		t.Errorf("%d runs, want only the manual one", len(runs))
	}
}
