//go:build unix

package state

import "syscall"

// processCPU is this process's user + system time in µs, for benchmarks'
// CPU metrics: on a shared machine wall time measures the neighbours.
func processCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e3
}
