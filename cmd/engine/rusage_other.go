//go:build !unix

package main

import "time"

// threadCPU is unknown here: bench falls back to the wall clock.
func threadCPU() time.Duration { return 0 }

// maxRSS is unknown here (0): bench reports the Go heap beside it.
func maxRSS() int64 { return 0 }
