package daemon_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"casesync/internal/daemon"
	"casesync/internal/watch"
)

const pipeline = "cases_to_oscar"

// watchSpecs connects a real file system watcher on the spec folder to the
// daemon, as `engine run` does.
func (e *env) watchSpecs() {
	e.tb.Helper()
	w, err := watch.New(watch.Options{Dirs: []string{e.dir}})
	if err != nil {
		e.tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		go w.Run(ctx)
		for {
			select {
			case <-ctx.Done():
				return
			case paths := <-w.Changes():
				e.d.RequestReload(paths...)
			}
		}
	}()
	e.tb.Cleanup(func() { cancel(); <-done })
}

// runNow starts a manual run through the HTTP API and waits for its end.
func (e *env) runNow() daemon.Event {
	e.tb.Helper()
	if resp := e.post("/pipelines/"+pipeline+"/run", "", nil); resp.StatusCode != http.StatusAccepted {
		e.tb.Fatalf("POST run: status %d, want 202", resp.StatusCode)
	}
	return e.waitKind(daemon.EventRunFinished)
}

func (e *env) status() map[string]any {
	e.tb.Helper()
	resp, err := http.Get(e.srv.URL + "/status")
	if err != nil {
		e.tb.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		e.tb.Fatal(err)
	}
	return m
}

func (e *env) metrics() string {
	e.tb.Helper()
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		e.tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

const femaleOnly = `{expr: "record.sex == \"female\"", reason: "test_female_only"},`

func TestDaemon_EditChangesNextRun(t *testing.T) {
	e := newEnv(t, envOptions{dep: deployment{extraFilter: femaleOnly}})
	e.watchSpecs()
	hash1 := e.d.Plan().Hash

	first := e.runNow()
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	w1 := e.oscarWrites()
	if w1 == 0 || first.Result.Reasons["test_female_only"] == 0 {
		t.Fatalf("first run: %d OSCaR writes, reasons %v; want writes and test_female_only skips", w1, first.Result.Reasons)
	}

	writeSpec(t, e.dir, deployment{}) // an editor's save: temp file renamed over sync.cue
	re := e.waitKind(daemon.EventReloaded)
	if re.Hash == hash1 {
		t.Fatal("reloaded with the old hash")
	}

	second := e.runNow()
	if second.Err != nil {
		t.Fatal(second.Err)
	}
	if second.Hash != re.Hash {
		t.Errorf("second run used spec %s, want the reloaded %s", second.Hash, re.Hash)
	}
	if n := second.Result.Reasons["test_female_only"]; n != 0 {
		t.Errorf("second run still applied the removed filter %d times", n)
	}
	if w2 := e.oscarWrites(); w2 <= w1 {
		t.Errorf("OSCaR writes %d after the edit, %d before: the removed filter should let more cases through", w2, w1)
	}
	last, _, err := e.store.LastRun(context.Background(), pipeline)
	if err != nil || last.SpecHash != re.Hash {
		t.Errorf("last run recorded spec %q (err %v), want %s", last.SpecHash, err, re.Hash)
	}
	if !strings.Contains(e.metrics(), "casesync_reloads_total 1\n") {
		t.Error("metrics do not count the reload")
	}
}

func TestDaemon_BrokenEditKeepsOldPlan(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.watchSpecs()
	hash1 := e.d.Plan().Hash
	good, err := os.ReadFile(filepath.Join(e.dir, "sync.cue"))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(good), `given_name: jq:          ".name_first"`, `given_name: jq:          ".name_first |"`, 1)
	if broken == string(good) {
		t.Fatal("test spec changed: nothing to break")
	}
	if err := os.WriteFile(filepath.Join(e.dir, "sync.cue"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	failed := e.waitKind(daemon.EventReloadFailed)
	if failed.Err == nil {
		t.Fatal("reload failed without an error")
	}

	st := e.status()
	le, _ := st["last_reload_error"].(map[string]any)
	probs, _ := le["problems"].([]any)
	if len(probs) == 0 {
		t.Fatalf("/status last_reload_error = %v, want positioned problems", st["last_reload_error"])
	}
	p0 := probs[0].(map[string]any)
	if p0["file"] != "sync.cue" || p0["line"].(float64) == 0 || p0["code"] != "bad-jq" {
		t.Errorf("problem = %v, want sync.cue:LINE bad-jq", p0)
	}
	if st["spec_hash"] != hash1 {
		t.Errorf("/status spec_hash = %v, want the old %s", st["spec_hash"], hash1)
	}
	if m := e.metrics(); !strings.Contains(m, "casesync_reload_failures_total 1\n") || !strings.Contains(m, "casesync_reloads_total 0\n") {
		t.Errorf("metrics do not show one failed reload:\n%s", m)
	}

	run := e.runNow()
	if run.Err != nil || run.Hash != hash1 || run.Result.Counts.Created == 0 {
		t.Fatalf("run after a broken edit: hash %s err %v counts %+v; want the old plan %s writing", run.Hash, run.Err, run.Result.Counts, hash1)
	}

	// Undoing the edit brings back the running spec: a no-op that clears
	// the error.
	if err := os.WriteFile(filepath.Join(e.dir, "sync.cue"), good, 0o644); err != nil {
		t.Fatal(err)
	}
	e.waitKind(daemon.EventReloadUnchanged)
	if st := e.status(); st["last_reload_error"] != nil {
		t.Errorf("last_reload_error = %v after the fix, want null", st["last_reload_error"])
	}
}

func TestDaemon_ReloadNeverInterruptsARun(t *testing.T) {
	e := newEnv(t, envOptions{dep: deployment{per: 20}}) // 200 cases: 10 pages
	e.watchSpecs()
	hash1 := e.d.Plan().Hash
	hit, release := e.gate.hold(3)
	if resp := e.post("/pipelines/"+pipeline+"/run", "", nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST run: %d", resp.StatusCode)
	}
	<-hit // the run is between pages 2 and 3
	if resp := e.post("/pipelines/"+pipeline+"/run", "", nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("second manual run while one is in flight: status %d, want 409", resp.StatusCode)
	}

	writeSpec(t, e.dir, deployment{per: 20, extraFilter: `{expr: "false", reason: "after_reload"},`})
	var order []daemon.EventKind
	var reloaded, finished daemon.Event
	for reloaded.Kind == "" {
		ev := e.waitFor("reload", func(daemon.Event) bool { return true })
		order = append(order, ev.Kind)
		if ev.Kind == daemon.EventReloaded {
			reloaded = ev
		}
	}
	release()
	for {
		ev := e.waitFor("the end of the run and the old pool's close", func(daemon.Event) bool { return true })
		order = append(order, ev.Kind)
		if ev.Kind == daemon.EventRunFinished {
			finished = ev
		}
		if ev.Kind == daemon.EventPoolClosed {
			if ev.Hash != hash1 {
				t.Fatalf("closed pool of %s, want the old %s", ev.Hash, hash1)
			}
			break
		}
	}
	if finished.Kind == "" {
		t.Fatalf("the old plan's connectors closed before its run ended; events %v", order)
	}
	if finished.Err != nil || finished.Hash != hash1 {
		t.Fatalf("run in flight during the reload: hash %s err %v; want %s, no error", finished.Hash, finished.Err, hash1)
	}
	if n := finished.Result.Counts.Read; n != 200 {
		t.Errorf("run in flight read %d records, want all 200", n)
	}
	if n := finished.Result.Reasons["after_reload"]; n != 0 {
		t.Errorf("the reloaded filter applied %d times to a run that started before it", n)
	}

	next := e.runNow()
	if next.Hash != reloaded.Hash || next.Result.Reasons["after_reload"] == 0 {
		t.Errorf("next run: hash %s reasons %v; want %s with after_reload skips", next.Hash, next.Result.Reasons, reloaded.Hash)
	}
}
