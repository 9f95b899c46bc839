// Command engine is casesync: it checks, previews and runs declarative
// sync pipelines between case-management systems. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

func main() { os.Exit(Main()) }

// Main runs the CLI with the process's arguments and returns the exit code.
// A first SIGINT/SIGTERM cancels the context (the current page finishes and
// commits); a second one exits at once.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore default handling: the next signal kills the process
	}()
	if os.Getenv("CASESYNC_MEMPROFILE") == "" {
		// The runtime samples an allocation every 512 kB for a heap
		// profile nothing reads unless CASESYNC_MEMPROFILE asks for one;
		// its bucket table and the stacks it records were ~1.5 MB of a
		// 100,000-case sync's resident memory (runtime/metrics
		// /memory/classes/profiling/buckets:bytes).
		runtime.MemProfileRate = 0
	}
	a := newApp(os.Stdout, os.Stderr, os.Getenv)
	if path := os.Getenv("CASESYNC_MEMSTATS"); path != "" {
		// engine bench measures a child process's memory this way.
		defer startMemStats(path)()
	}
	if path := os.Getenv("CASESYNC_CPUPROFILE"); path != "" {
		// A CPU profile of this process, for engine bench's per-record
		// cost (go tool pprof engine PATH).
		defer startCPUProfile(path)()
	}
	if path := os.Getenv("CASESYNC_MEMPROFILE"); path != "" {
		// Where the process allocated (go tool pprof -sample_index
		// alloc_space engine PATH), for engine bench --memprofile.
		defer writeHeapProfile(path)
	}
	return a.run(ctx, os.Args[1:])
}
