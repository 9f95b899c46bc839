package specs_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"casesync/internal/fakes/faults"
	"casesync/internal/fakes/primero"
	"casesync/internal/inboxrun"
	"casesync/internal/sandbox"
)

// upstreamLatency is added to every request the fakes serve: the
// deployment's latency bound is stated against it.
const upstreamLatency = 20 * time.Millisecond

// BenchmarkThailand_WebhookToWriteBack measures, per Sync press, the time
// from the webhook POST reaching the inbox to the fake Primero having
// applied the write-back PATCH, with 20 ms on every upstream request. The
// flow's sequential upstream requests per press are HIS findOne and the
// Primero PATCH (the logins are made once and reused), so the bound is
// 1.2 × 40 ms + 50 ms = 98 ms at p99. Presses are sent one at a time, as
// people press buttons; the daemon and state are the real ones.
//
//	go test ./specs_test -run '^$' -bench WebhookToWriteBack -benchtime 300x
func BenchmarkThailand_WebhookToWriteBack(b *testing.B) {
	sb, err := sandbox.Start(sandbox.Options{Cases: 5, Seed: 1, Thailand: true, Faults: faults.Config{Latency: upstreamLatency}})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	// Primero behind a recorder: when each PATCH of a case was applied.
	var mu sync.Mutex
	applied := map[string]chan time.Time{}
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sb.Primero.ServeHTTP(w, r)
		if r.Method == http.MethodPatch {
			id := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
			mu.Lock()
			ch := applied[id]
			mu.Unlock()
			if ch != nil {
				ch <- time.Now()
			}
		}
	}))
	defer rec.Close()
	plan := load(b, "specs/thailand").WithBaseURLs(map[string]string{"primero": rec.URL, "his": sb.URLs["his"]})
	in, err := inboxrun.Start(inboxrun.Options{Plan: plan, Secrets: sb, StatePath: filepath.Join(b.TempDir(), "state.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	key, _ := sb.Secret("PRIMERO_WEBHOOK_KEY")
	hdr := http.Header{"X-Api-Key": {key}}
	bodies := map[string][]byte{}
	for _, id := range []string{sandbox.ThaiCaseMinimal, sandbox.ThaiCaseFull, sandbox.ThaiCaseNoDates} {
		applied[id] = make(chan time.Time, 4)
		c, _ := sb.Primero.Case(id)
		bodies[id] = []byte(fmt.Sprintf(`{"data":{"record_id":%q,"record_type":"case","national_id_no":%q}}`, id, c["national_id_no"]))
	}
	ids := []string{sandbox.ThaiCaseMinimal, sandbox.ThaiCaseFull, sandbox.ThaiCaseNoDates}
	ctx := context.Background()
	press := func(id string) time.Duration {
		start := time.Now()
		st, err := in.Post(ctx, "/inbox/thailand/sync?event="+primero.EventCasePost, hdr, bodies[id])
		if err != nil || st != http.StatusAccepted {
			b.Fatalf("post: %d %v", st, err)
		}
		select {
		case at := <-applied[id]:
			return at.Sub(start)
		case <-time.After(30 * time.Second):
			b.Fatal("no write-back within 30s")
		}
		return 0
	}
	// Warm up: the first press of each system logs in.
	for _, id := range ids {
		press(id)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lat = append(lat, press(ids[i%len(ids)]))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(float64(len(lat))*p))] }
	bound := time.Duration(1.2*float64(2*upstreamLatency)) + 50*time.Millisecond
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(bound.Microseconds())/1000, "bound-ms")
}
