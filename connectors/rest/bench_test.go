package rest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"testing"

	"casesync/connectors/rest"
	"casesync/engine"
)

// benchServer serves n generated records, 100 a page, with a total; pages
// are encoded straight to the connection so the server holds none.
func benchServer(n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		per, _ := strconv.Atoi(r.URL.Query().Get("per"))
		from := min((page-1)*per, n)
		to := min(from+per, n)
		data := make([]map[string]any, 0, to-from)
		for i := from; i < to; i++ {
			data = append(data, map[string]any{
				"id": fmt.Sprintf("00000000-0000-4000-8000-%012d", i), "enabled": true,
				"case_id_display": fmt.Sprintf("c%06d", i), "sex": "female", "age": i % 18,
				"services_section": []any{map[string]any{"unique_id": fmt.Sprintf("s-%d", i), "service_type": "case_work"}},
				"last_updated_at":  "2025-08-02T09:38:34.074Z",
			})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"data": data, "metadata": map[string]any{"total": n, "per": per, "page": page}})
	}
}

func benchList(b *testing.B, n int) {
	srv := serve(b, benchServer(n))
	c, _ := newClient(b, connector(srv.URL), nil)
	call := &rest.Call{Path: "/cases", Pagination: pageSpec(100, 0, ".metadata.total"), Records: dataRecords}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	b.ReportAllocs()
	records := 0
	for b.Loop() {
		err := c.List(b.Context(), call, func(p *engine.Page) error {
			records += len(p.Records)
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if records != n*b.N {
		b.Fatalf("listed %d records, want %d", records, n*b.N)
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(peak-base)/(1<<20), "peak-heap-MB")
}

// BenchmarkList_10k streams a 10,000-record paged listing; one op is the
// whole listing (client and in-process server both count in B/op).
// peak-heap-MB is the largest HeapInuse above the starting heap, sampled
// after every page: it must stay flat as the record count grows (compare
// BenchmarkList_100k).
func BenchmarkList_10k(b *testing.B) { benchList(b, 10_000) }

// BenchmarkList_100k is the same listing ten times longer.
func BenchmarkList_100k(b *testing.B) { benchList(b, 100_000) }
