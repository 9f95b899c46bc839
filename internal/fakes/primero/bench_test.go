package primero_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"casesync/internal/fakes/primero"
)

// discard is a ResponseWriter that keeps only the status, so the benchmark
// measures the fake and not a client.
type discard struct {
	h      http.Header
	status int
	n      int
	body   []byte
	keep   bool
}

func (d *discard) Header() http.Header { return d.h }
func (d *discard) WriteHeader(s int)   { d.status = s }
func (d *discard) Write(b []byte) (int, error) {
	d.n += len(b)
	if d.keep {
		d.body = append(d.body, b...)
	}
	return len(b), nil
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkServer_List100k pages through 100,000 seeded cases at per=1000
// and at per=100 (specs/cambodia-ona's page) with the connector's cursor
// filter; one op is the whole pass (100 or 1,000 pages).
// heap-MB is the live heap the seeded server holds.
//
//	go test -run '^$' -bench List100k -benchmem ./internal/fakes/primero
func BenchmarkServer_List100k(b *testing.B) {
	const n = 100_000
	before := liveHeap()
	s := primero.New(primero.Options{Cases: n, Seed: 1})
	b.Cleanup(s.Close)
	heap := liveHeap() - before
	auth := httptest.NewRequest("GET", "/", nil)
	auth.SetBasicAuth("openfn_cp_user", pass)
	authz := auth.Header.Get("Authorization")

	// One checked pass: every case exactly once.
	seen := map[string]bool{}
	for page := 1; page <= n/1000; page++ {
		w := &discard{h: http.Header{}, keep: true}
		r := httptest.NewRequest("GET", fmt.Sprintf("/api/v2/cases?per=1000&page=%d&last_updated_at=2024-01-01T00:00:00Z..", page), nil)
		r.Header.Set("Authorization", authz)
		s.ServeHTTP(w, r)
		var body struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(w.body, &body); err != nil || w.status != 200 {
			b.Fatalf("page %d: status %d, %v", page, w.status, err)
		}
		for _, d := range body.Data {
			seen[d.ID] = true
		}
	}
	if len(seen) != n {
		b.Fatalf("paging saw %d distinct cases, want %d", len(seen), n)
	}

	for _, per := range []int{1000, 100} {
		b.Run(fmt.Sprintf("per=%d", per), func(b *testing.B) {
			b.ReportAllocs()
			records := 0
			for b.Loop() {
				for page := 1; page <= n/per; page++ {
					w := &discard{h: http.Header{}}
					r := httptest.NewRequest("GET", fmt.Sprintf("/api/v2/cases?per=%d&page=%d&last_updated_at=2024-01-01T00:00:00Z..", per, page), nil)
					r.Header.Set("Authorization", authz)
					s.ServeHTTP(w, r)
					if w.status != 200 {
						b.Fatalf("page %d: status %d", page, w.status)
					}
					records += per
				}
			}
			b.ReportMetric(float64(heap)/(1<<20), "heap-MB")
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
