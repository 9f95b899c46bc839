package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"casesync/internal/daemon"
	"casesync/internal/testenv"
	"casesync/internal/version"
)

// breakReferred gives every referred case a date of birth the mapping
// refuses, so a run has failed records (reason map_error) on every page.
func breakReferred(e *env) int {
	ids := testenv.ReferredCases(e.sb)
	for _, id := range ids {
		e.sb.Primero.Touch(id, map[string]any{"date_of_birth": "2015-13-45"})
	}
	return len(ids)
}

func statusOf(t *testing.T, e *env) daemon.Status {
	t.Helper()
	code, _, body := get(t, e.srv.URL+"/status")
	var st daemon.Status
	if code != http.StatusOK {
		t.Fatalf("/status: %d %s", code, body)
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	return st
}

// scrape parses /metrics with the Prometheus text-format parser, failing
// on anything a Prometheus server would refuse.
func scrape(t *testing.T, e *env) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// sample is the value of the family's series whose labels include these.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// TestStatus_TellsTheTruth: while a run is held on its third page,
// /status shows the counts of the pages committed so far, the same as
// /metrics, and the failed records already; after the run, a run that
// "succeeded" with failed records shows as needing attention, with its
// failures by reason, and the last success; the page says so too.
func TestStatus_TellsTheTruth(t *testing.T) {
	e := newEnv(t, envOptions{dep: deployment{cron: "0 0 1 1 *"}, noRun: true})
	if n := breakReferred(e); n == 0 {
		t.Fatal("the seed refers no case")
	}
	hit, release := e.gate.hold(3)
	e.run()
	if got := e.post("/pipelines/"+pipeline+"/run", "", nil).StatusCode; got != http.StatusAccepted {
		t.Fatalf("manual run: %d", got)
	}
	<-hit

	// The listing asks for page 3 while page 2 is still being decided
	// (one page ahead): the run is held once page 2 is committed.
	var (
		st           daemon.Status
		ps           daemon.PipelineStatus
		read, failed float64
	)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st = statusOf(t, e)
		ps = st.Pipelines[0]
		if ps.Running == nil {
			t.Fatalf("/status during the run: not running: %+v", ps)
		}
		fams := scrape(t, e)
		read, _ = sample(fams, "casesync_records_total", map[string]string{"pipeline": pipeline, "outcome": "read"})
		failed, _ = sample(fams, "casesync_records_total", map[string]string{"pipeline": pipeline, "outcome": "failed"})
		c := ps.Running.Counts
		if c.Read != 0 && float64(c.Read) == read && float64(c.Failed) == failed {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("during the run /status counts %+v, /metrics read %v failed %v: want the same, not zero", c, read, failed)
			break
		}
	}
	if ps.Running.Counts.Failed == 0 || ps.Health != daemon.HealthAttention || st.Attention != 1 {
		t.Errorf("during the run: health %q, attention %d, failed so far %d; want attention", ps.Health, st.Attention, ps.Running.Counts.Failed)
	}
	_, _, page := get(t, e.srv.URL+"/")
	if !strings.Contains(page, "record(s) failed so far") || !strings.Contains(page, `class="card attention"`) {
		t.Errorf("page during the run does not show the failures so far:\n%s", page)
	}

	release()
	e.waitKind(daemon.EventRunFinished)
	st = statusOf(t, e)
	ps = st.Pipelines[0]
	if ps.Running != nil || ps.LastRun == nil || ps.LastRun.Status != "succeeded" || ps.LastRun.Counts.Failed == 0 {
		t.Fatalf("after the run: %+v", ps)
	}
	if ps.Health != daemon.HealthAttention || st.Attention != 1 || ps.LastSuccess == nil || ps.LastSuccess.ID != ps.LastRun.ID ||
		ps.RetryQueued != ps.LastRun.Counts.Failed || ps.RetryByReason["map_error"] != ps.RetryQueued {
		t.Errorf("after the run: health %q, attention %d, last success %+v, queue %d by reason %v (failed %d)",
			ps.Health, st.Attention, ps.LastSuccess, ps.RetryQueued, ps.RetryByReason, ps.LastRun.Counts.Failed)
	}
	_, _, page = get(t, e.srv.URL+"/")
	for _, want := range []string{"1 pipeline(s) need attention", "failed record(s)", "map_error", `class="badge attention">needs attention`} {
		if !strings.Contains(page, want) {
			t.Errorf("page after the run lacks %q", want)
		}
	}
}

// TestMetrics_Parse: /metrics parses with Prometheus's own text-format
// parser and carries the families an admin alerts on, Go runtime and
// process ones included.
func TestMetrics_Parse(t *testing.T) {
	e := newEnv(t, envOptions{dep: deployment{cron: "0 0 1 1 *"}, noRun: true})
	breakReferred(e)
	e.run()
	if got := e.post("/pipelines/"+pipeline+"/run", "", nil).StatusCode; got != http.StatusAccepted {
		t.Fatalf("manual run: %d", got)
	}
	e.waitKind(daemon.EventRunFinished)
	// Read once: the finished event comes after the run's row is final,
	// and nothing else runs (catching up at start leaves the daemon's own
	// run alone: TestDaemon_NoCatchUpForItsOwnRunInFlight).
	st := statusOf(t, e)
	ps := st.Pipelines[0]
	fams := scrape(t, e)
	if ps.Running != nil || ps.LastRun == nil || ps.LastRun.Trigger != "manual" || ps.LastRun.Counts.Failed == 0 {
		t.Fatalf("/status after the run: running %+v, last run %+v; want the manual run, with failed records", ps.Running, ps.LastRun)
	}

	p := map[string]string{"pipeline": pipeline}
	if v, ok := sample(fams, "casesync_last_success_timestamp_seconds", p); !ok || int64(v) != ps.LastSuccess.Finished.Unix() {
		t.Errorf("casesync_last_success_timestamp_seconds = %v (%v), want %v", v, ok, ps.LastSuccess.Finished.Unix())
	}
	if v, ok := sample(fams, "casesync_retry_parked", p); !ok || int(v) != ps.RetryParked {
		t.Errorf("casesync_retry_parked = %v (%v), want %d", v, ok, ps.RetryParked)
	}
	if v, ok := sample(fams, "casesync_retry_queue", p); !ok || int(v) != ps.RetryQueued {
		t.Errorf("casesync_retry_queue = %v (%v), want %d", v, ok, ps.RetryQueued)
	}
	if v, _ := sample(fams, "casesync_records_total", map[string]string{"pipeline": pipeline, "outcome": "failed"}); int(v) != ps.LastRun.Counts.Failed {
		t.Errorf("failed records: metrics %v, status %d", v, ps.LastRun.Counts.Failed)
	}
	if v, ok := sample(fams, "casesync_build_info", map[string]string{"version": version.Get().Version, "revision": version.Get().Revision}); !ok || v != 1 {
		t.Errorf("casesync_build_info = %v (%v), want 1 for this build", v, ok)
	}
	if st.Version != version.Get().String() {
		t.Errorf("/status version = %q, want %q", st.Version, version.Get().String())
	}
	want := []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "go_gc_duration_seconds"}
	if runtime.GOOS == "linux" {
		want = append(want, "process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds")
	}
	for _, name := range want {
		if fams[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

// TestStatus_StoppedRunCountsNotProcessed: a run stopped by a refused
// login (a WAF's 403 in front of OSCaR) shows as failed with the records
// it left "not processed", never "failed": in /status, on the page and in
// /metrics, which agree; nothing waits in the retry queue.
func TestStatus_StoppedRunCountsNotProcessed(t *testing.T) {
	waf := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/v1/admin_auth/sign_in" {
				http.Error(w, "403 Forbidden: your address is not allowed", http.StatusForbidden)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	e := newEnv(t, envOptions{dep: deployment{cron: "0 0 1 1 *"}, oscar: waf})
	if got := e.post("/pipelines/"+pipeline+"/run", "", nil).StatusCode; got != http.StatusAccepted {
		t.Fatalf("manual run: %d", got)
	}
	fin := e.waitKind(daemon.EventRunFinished)
	if fin.Err == nil || fin.Result == nil {
		t.Fatalf("run finished without the refused login: %+v", fin)
	}
	c := fin.Result.Counts
	if c.Failed != 0 || c.NotProcessed == 0 {
		t.Fatalf("counts %+v: want 0 failed and the records left as not processed", c)
	}

	ps := statusOf(t, e).Pipelines[0]
	if r := ps.LastRun; r == nil || r.Status != "failed" || r.Counts.Failed != 0 || r.Counts.NotProcessed != c.NotProcessed ||
		!strings.Contains(r.Error, fmt.Sprintf("credentials refused by oscar; %d record(s) not processed", c.NotProcessed)) {
		t.Errorf("/status last run %+v, want failed, 0 failed, %d not processed, saying why", r, c.NotProcessed)
	}
	if ps.Health != daemon.HealthFailed || ps.RetryQueued != 0 {
		t.Errorf("/status: health %q, %d queued; want failed, nothing queued", ps.Health, ps.RetryQueued)
	}
	fams := scrape(t, e)
	if v, _ := sample(fams, "casesync_records_total", map[string]string{"pipeline": pipeline, "outcome": "failed"}); v != 0 {
		t.Errorf("casesync_records_total failed = %v, want 0", v)
	}
	if v, _ := sample(fams, "casesync_records_total", map[string]string{"pipeline": pipeline, "outcome": "not_processed"}); int(v) != c.NotProcessed {
		t.Errorf("casesync_records_total not_processed = %v, want %d", v, c.NotProcessed)
	}
	_, _, page := get(t, e.srv.URL+"/")
	if want := fmt.Sprintf("not processed %d", c.NotProcessed); !strings.Contains(page, want) || !strings.Contains(page, "failed 0") {
		t.Errorf("page lacks %q beside failed 0", want)
	}
}
