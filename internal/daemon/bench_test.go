package daemon_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkInbox measures durable acceptance of webhook deliveries through
// the real HTTP handler and SQLite state: each op is one authenticated
// POST, stored before its 202. "accept" runs no workers; "accept+process"
// runs the inbox worker at the same time, re-fetching each case from the
// Primero fake and upserting to the OSCaR fake, so acceptance competes
// with processing for the state's single writer.
//
//	go test -run '^$' -bench Inbox -benchtime 5000x ./internal/daemon
func BenchmarkInbox(b *testing.B) {
	for _, mode := range []string{"accept", "accept+process"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnv(b, envOptions{dep: deployment{inbox: fetchInbox}, noRun: mode == "accept"})
			ids := referredCases(e)
			secret := mustSecret(e)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var (
				seq  atomic.Int64
				mu   sync.Mutex
				lats []time.Duration
			)
			b.SetParallelism(4) // 4×GOMAXPROCS senders, as Primero's webhook jobs would
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					n := seq.Add(1)
					body := fmt.Sprintf(`{"data": {"record_id": %q, "delivery": %d}}`, ids[int(n)%len(ids)], n)
					req, _ := http.NewRequest("POST", e.srv.URL+"/hooks/primero", bytes.NewReader([]byte(body)))
					req.Header.Set("x-api-key", secret)
					req.Header.Set("Content-Type", "application/json")
					t := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mine = append(mine, time.Since(t))
					if resp.StatusCode != http.StatusAccepted {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
				mu.Lock()
				lats = append(lats, mine...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lats)
			if len(lats) == 0 {
				return
			}
			p := func(q float64) float64 { return float64(lats[int(q*float64(len(lats)-1))].Microseconds()) / 1000 }
			b.ReportMetric(float64(len(lats))/elapsed.Seconds(), "req/s")
			b.ReportMetric(p(0.50), "p50_ms")
			b.ReportMetric(p(0.99), "p99_ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
