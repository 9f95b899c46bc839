package main

import (
	"encoding/json"
	"os"
	"runtime"
	"runtime/metrics"
	"syscall"
	"time"
)

// memReport is what a process reports about its own memory for engine
// bench: peak RSS from the kernel, peak live Go heap sampled every 20 ms.
type memReport struct {
	PeakRSSBytes  int64 `json:"peak_rss_bytes"`
	PeakHeapBytes int64 `json:"peak_heap_bytes"`
	// GoSysBytes is what the Go runtime took from the OS; the rest of the
	// RSS is the binary and memory allocated outside Go (SQLite's pages).
	GoSysBytes int64 `json:"go_sys_bytes"`
}

// startMemStats samples the heap until the returned stop function writes
// the report to path.
func startMemStats(path string) func() {
	done := make(chan struct{})
	finished := make(chan int64)
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak int64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := int64(sample[0].Value.Uint64()); v > peak {
				peak = v
			}
			select {
			case <-done:
				finished <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		peak := <-finished
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rep := memReport{PeakRSSBytes: ru.Maxrss * 1024, PeakHeapBytes: peak, GoSysBytes: int64(ms.Sys)}
		b, _ := json.Marshal(rep)
		_ = os.WriteFile(path, b, 0o644)
	}
}
