package main

import (
	"fmt"
	"sync"
	"time"
)

// startClock is the clock of a command asked to run as if it were a given
// time (--now): its first reading is exactly that time, later readings
// move on with the wall clock, so $now, ages and windows are reproducible
// while durations, retry schedules and chained runs stay consistent.
type startClock struct {
	at    time.Time
	mu    sync.Mutex
	first time.Time // wall time of the first reading
}

func (c *startClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.first.IsZero() {
		c.first = now
	}
	return c.at.Add(now.Sub(c.first))
}

// nowLayouts are the forms --now accepts; without a zone the time is UTC.
var nowLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", time.DateOnly}

// parseNow reads a --now value.
func parseNow(s string) (time.Time, error) {
	for _, l := range nowLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("--now %q is not a time: use RFC 3339 (2025-06-01T08:00:00Z), \"2025-06-01 08:00:00\" (UTC) or 2025-06-01", s)
}
