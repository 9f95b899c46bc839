//go:build !unix

package state

// processCPU is not measured here: the CPU metric reads 0.
func processCPU() float64 { return 0 }
