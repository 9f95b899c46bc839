package redact

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Handler wraps h so that every message and attribute (including those
// added with WithAttrs, inside groups, and errors) is redacted by r before
// h sees it.
func Handler(h slog.Handler, r *Redactor) slog.Handler {
	return &handler{inner: h, r: r}
}

type handler struct {
	inner slog.Handler
	r     *Redactor
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.r.attr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.r.attr(a)
	}
	return &handler{inner: h.inner.WithAttrs(red), r: h.r}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{inner: h.inner.WithGroup(name), r: h.r}
}

// attr redacts one attribute. Values that are not text (numbers, times,
// durations) cannot hold a secret and pass unchanged; any other value is
// rendered the way handlers render it and replaced by redacted text only
// when that rendering holds a secret, so ordinary structured values keep
// their shape.
func (r *Redactor) attr(a slog.Attr) slog.Attr {
	a.Key = r.String(a.Key)
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(r.String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]slog.Attr, len(g))
		for i, x := range g {
			out[i] = r.attr(x)
		}
		a.Value = slog.GroupValue(out...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			a.Value = slog.StringValue(r.String(x.Error()))
		case []byte:
			a.Value = slog.StringValue(string(r.Bytes(x)))
		default:
			s := fmt.Sprintf("%+v", x)
			leak := r.Contains(s)
			if !leak {
				if b, err := json.Marshal(x); err == nil {
					leak = r.Contains(string(b))
				}
			}
			if leak {
				a.Value = slog.StringValue(r.String(s))
			} else {
				a.Value = v
			}
		}
	default:
		a.Value = v
	}
	return a
}
