//go:build unix

package main

import (
	"syscall"
	"time"
)

// threadCPU is the calling thread's user + system CPU time so far (0
// where the system cannot tell a thread's: RUSAGE_THREAD is Linux's).
func threadCPU() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD (Linux)
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// maxRSS is getrusage's high-water RSS of this process, in bytes (Linux
// counts ru_maxrss in KiB).
func maxRSS() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss * 1024
}
