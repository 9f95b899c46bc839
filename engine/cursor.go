package engine

import (
	"fmt"
	"time"
)

// ParseCursor reads a cursor value as the runner stores it or a person
// types it: RFC 3339, "2006-01-02 15:04:05" or "2006-01-02", taken as UTC
// when it has no zone.
func ParseCursor(s string) (time.Time, error) { return parseCursor(s) }

// FormatCursor renders a time the way the runner stores a cursor.
func FormatCursor(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ReadFrom is the $cursor the next run of p sends to its source: the stored
// cursor value minus the overlap (or the initial value when ok is false),
// rendered in the source's format. It is "" for a source without a cursor.
func (p *Pipeline) ReadFrom(value string, ok bool) (string, error) {
	c := p.Source.Cursor
	if c == nil {
		return "", nil
	}
	if !ok {
		return renderCursor(c, c.Initial), nil
	}
	t, err := parseCursor(value)
	if err != nil {
		return "", fmt.Errorf("stored cursor of %s is not a time: %w", p.Name, err)
	}
	return renderCursor(c, t.Add(-c.Overlap)), nil
}
