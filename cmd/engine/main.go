// Command engine is casesync: it checks, previews and runs declarative
// sync pipelines between case-management systems. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
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
