package engine

import (
	"context"
	"errors"
	"fmt"
)

// Preparer runs a pipeline's select stage (filters, fan-out) and map stage
// on records already read, exactly as a run does but with nothing written:
// what the mapping benchmark and the mapping fuzz test measure is the
// runner's own path. It is not safe for concurrent use.
type Preparer struct {
	ru *run
	kn *Known
}

// Preparer returns a Preparer for pipeline. It opens no run in the state,
// and needs connectors only for Enrich.
func (r *Runner) Preparer(ctx context.Context, pipeline string) (*Preparer, error) {
	ru, err := r.newRun(ctx, pipeline, SyncOptions{DryRun: func(Decision) {}})
	if err != nil {
		return nil, err
	}
	return &Preparer{ru: ru, kn: &Known{}}, nil
}

// Enrich runs the enrich stage on records (over the network) and returns
// those it kept, enriched, for Map to take untimed work out of a benchmark.
func (pr *Preparer) Enrich(ctx context.Context, recs []any) ([]any, error) {
	out := make([]any, 0, len(recs))
	for _, rec := range recs {
		m, ok := rec.(map[string]any)
		if !ok {
			continue
		}
		o, ok := pr.ru.enrich.record(ctx, &selected{key: "enrich", rec: m})
		if !ok {
			return nil, errors.New(o.Error)
		}
		out = append(out, m)
	}
	return out, nil
}

// Map selects and maps one record and returns how many payloads it made
// (0 when a filter excluded it), or the failure that stopped it.
func (pr *Preparer) Map(ctx context.Context, rec any) (int, error) {
	ru := pr.ru
	// Each record is taken as new: the repeat check of a listing does not
	// apply to records handed in one by one.
	ru.sel.forget()
	s, outs := ru.sel.choose(ctx, rec, pr.kn)
	if s == nil {
		return 0, failure(outs)
	}
	items, out, ok := ru.sel.fanOut(ctx, s)
	if !ok {
		return 0, failure([]Outcome{out})
	}
	v := *ru.vars
	v.Record = s.rec
	for _, it := range items {
		if _, out, ok := ru.mapper.item(ctx, s, it, &v); !ok {
			return 0, failure([]Outcome{out})
		}
	}
	return len(items), nil
}

// failure is the error of the first failed outcome, if any, naming the
// record and the reason code.
func failure(outs []Outcome) error {
	for _, o := range outs {
		if o.Action == ActionFailed {
			return fmt.Errorf("record %s: %s: %s", o.RecordKey, o.Reason, o.Error)
		}
	}
	return nil
}
