package daemon

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRegistry_TextExposition(t *testing.T) {
	r := newRegistry()
	c := r.counter("casesync_records_total", "Records by pipeline and outcome.", "pipeline", "outcome")
	c.Add(3, "b", "created")
	c.Inc("a", "failed")
	c.Inc("a", `we"ird\name`+"\n")
	r.counter("casesync_reloads_total", "Successful reloads.")
	h := r.histogram("casesync_request_duration_seconds", "Call latency.", []float64{0.01, 0.1}, "connector")
	h.Observe(0.01, "oscar") // on a bound: counted in that bucket (le is inclusive)
	h.Observe(0.05, "oscar")
	h.Observe(2, "oscar")
	r.gaugeFunc("casesync_ready", "1 when ready.", nil, func() []sample { return []sample{{v: 1}} })
	r.gaugeFunc("casesync_inbox_pending", "Pending deliveries.", []string{"pipeline"}, func() []sample {
		return []sample{{[]string{"z"}, 2}, {[]string{"a"}, 0}}
	})
	var b strings.Builder
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP casesync_inbox_pending Pending deliveries.
# TYPE casesync_inbox_pending gauge
casesync_inbox_pending{pipeline="a"} 0
casesync_inbox_pending{pipeline="z"} 2
# HELP casesync_ready 1 when ready.
# TYPE casesync_ready gauge
casesync_ready 1
# HELP casesync_records_total Records by pipeline and outcome.
# TYPE casesync_records_total counter
casesync_records_total{pipeline="a",outcome="failed"} 1
casesync_records_total{pipeline="a",outcome="we\"ird\\name\n"} 1
casesync_records_total{pipeline="b",outcome="created"} 3
# HELP casesync_reloads_total Successful reloads.
# TYPE casesync_reloads_total counter
casesync_reloads_total 0
# HELP casesync_request_duration_seconds Call latency.
# TYPE casesync_request_duration_seconds histogram
casesync_request_duration_seconds_bucket{connector="oscar",le="0.01"} 1
casesync_request_duration_seconds_bucket{connector="oscar",le="0.1"} 2
casesync_request_duration_seconds_bucket{connector="oscar",le="+Inf"} 3
casesync_request_duration_seconds_sum{connector="oscar"} 2.06
casesync_request_duration_seconds_count{connector="oscar"} 3
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("exposition (-want +got):\n%s", diff)
	}
}
