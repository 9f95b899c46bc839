package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/pflag"

	"casesync/internal/redact"
)

// logFlags are --log-level and --log-format, checked when the flags are
// parsed so a typo is a usage error rather than a silently different log.
type logFlags struct {
	level  choice
	format choice
}

func (l *logFlags) register(fs *pflag.FlagSet, level string) {
	l.level = choice{value: level, allowed: []string{"debug", "info", "warn", "error"}}
	l.format = choice{value: "text", allowed: []string{"text", "json"}}
	fs.Var(&l.level, "log-level", "log level: debug, info, warn, error (failed records log at warn, failed runs at error)")
	fs.Var(&l.format, "log-format", "log format: text (key=value lines) or json (one JSON object a line, for log shippers)")
}

// newLogger writes to w in the chosen format, with every secret value in
// red masked.
func (l *logFlags) newLogger(w io.Writer, red *redact.Redactor) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(l.level.value)); err != nil {
		lvl = slog.LevelWarn // unreachable: choice checked it
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	if l.format.value == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(redact.Handler(h, red))
}

// choice is a string flag limited to a few values.
type choice struct {
	value   string
	allowed []string
}

func (c *choice) String() string { return c.value }
func (c *choice) Type() string   { return "string" }
func (c *choice) Set(s string) error {
	for _, a := range c.allowed {
		if s == a {
			c.value = s
			return nil
		}
	}
	return fmt.Errorf("want one of %s, not %q", strings.Join(c.allowed, ", "), s)
}

// note tells the person or the log shipper reading stderr something
// outside a run: a plain line ("engine: " first when prefixed), or with
// --log-format json a JSON log line, so that stream stays JSON throughout.
func (a *app) note(c *common, lvl slog.Level, msg string, prefixed bool) {
	if c != nil && c.logs.format.value == "json" {
		slog.New(slog.NewJSONHandler(a.stderr, nil)).Log(context.Background(), lvl, msg)
		return
	}
	if prefixed {
		msg = "engine: " + msg
	}
	fmt.Fprintln(a.stderr, msg)
}
