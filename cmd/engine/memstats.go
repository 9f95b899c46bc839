package main

import (
	"encoding/json"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
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
	// What the garbage collector cost over the whole process: its CPU
	// time as the runtime estimates it (the idle mark workers included,
	// which run on otherwise idle cores and count in rusage), its cycles,
	// and the bytes allocated that it had to collect.
	GCCPUSeconds   float64 `json:"gc_cpu_seconds"`
	GCCycles       int64   `json:"gc_cycles"`
	AllocatedBytes int64   `json:"allocated_bytes"`
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
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rep := memReport{PeakRSSBytes: peakRSS(), PeakHeapBytes: peak, GoSysBytes: int64(ms.Sys)}
		gc := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/allocs:bytes"}}
		metrics.Read(gc)
		rep.GCCPUSeconds = gc[0].Value.Float64()
		rep.GCCycles = int64(gc[1].Value.Uint64())
		rep.AllocatedBytes = int64(gc[2].Value.Uint64())
		b, _ := json.Marshal(rep)
		_ = os.WriteFile(path, b, 0o644)
	}
}

// peakRSS is this process's own high-water RSS. getrusage's ru_maxrss is
// wrong for a child started by os/exec on Linux: the child shares its
// parent's address space until exec (CLONE_VM), and exec records that
// space's high-water mark into the child's maxrss, so a child of a large
// parent (the bench, holding 100,000 fake cases) reports the parent's
// peak. /proc/self/status VmHWM is the new address space's alone.
func peakRSS() int64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return maxRSS()
}

// startCPUProfile writes a CPU profile of the process to path until the
// returned function is called.
func startCPUProfile(path string) func() {
	f, err := os.Create(path)
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// writeHeapProfile writes the heap profile, whose alloc_space and
// alloc_objects samples cover everything the process allocated.
func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_ = pprof.Lookup("allocs").WriteTo(f, 0)
}
