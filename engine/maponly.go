package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"casesync/engine/mapping"
)

// Mapper runs a pipeline's filters, fan-out and mapping on records that are
// already enriched, with no I/O: the hot path the mapping benchmark
// measures. It is safe for concurrent use.
type Mapper struct {
	p    *Pipeline
	vars *mapping.Vars
}

// NewMapper returns a Mapper for pipeline.
func (r *Runner) NewMapper(pipeline string) (*Mapper, error) {
	p, ok := r.plan.Pipelines[pipeline]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownPipeline, pipeline)
	}
	return &Mapper{p: p, vars: &mapping.Vars{Vars: r.plan.Vars, Now: time.Now().UTC().Format(time.RFC3339)}}, nil
}

// Map filters and maps one record and returns how many payloads it made
// (0 when a filter excluded it).
func (m *Mapper) Map(ctx context.Context, rec any) (int, error) {
	obj, ok := rec.(map[string]any)
	if !ok {
		return 0, errors.New("record is not an object")
	}
	env := mapping.ExprEnvFor(obj, m.vars)
	for _, f := range m.p.Filters {
		keep, err := f.Expr.Bool(env)
		if err != nil {
			// Worded as the runner words it, so the error names the filter.
			return 0, fmt.Errorf("filter %s (%s): %w", f.Reason, f.Pos, err)
		}
		if !keep {
			return 0, nil
		}
	}
	items := []any{obj}
	if m.p.Each != nil {
		vals, err := m.p.Each.JQ.All(ctx, obj, m.vars)
		if err != nil {
			return 0, fmt.Errorf("each: %w", err)
		}
		if len(vals) == 1 {
			if arr, ok := vals[0].([]any); ok {
				vals = arr
			}
		}
		items = vals
	}
	v := *m.vars
	v.Record = obj
	for _, it := range items {
		if _, err := m.p.Map.Apply(ctx, it, &v); err != nil {
			return 0, err
		}
	}
	return len(items), nil
}

// Enrich runs a pipeline's enrich steps on records (over the network) and
// returns them enriched, for a benchmark to map afterwards.
func (r *Runner) Enrich(ctx context.Context, pipeline string, recs []any) ([]any, error) {
	p, ok := r.plan.Pipelines[pipeline]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownPipeline, pipeline)
	}
	ru := &run{r: r, p: p, started: r.clock.Now().UTC(), reasons: map[string]int{}, seen: map[[16]byte]struct{}{}}
	ru.rt = mapping.NewRuntime(ctx, &apiResolver{r: r})
	ru.vars = &mapping.Vars{Vars: r.plan.Vars, Now: ru.started.Format(time.RFC3339), Runtime: ru.rt}
	out := make([]any, 0, len(recs))
	for _, rec := range recs {
		m, ok := rec.(map[string]any)
		if !ok {
			continue
		}
		for _, e := range p.Enrich {
			val, err := ru.enrich(ctx, &e, m)
			if err != nil {
				return nil, fmt.Errorf("enrich %s: %w", e.Name, err)
			}
			m[e.As] = val
		}
		out = append(out, m)
	}
	return out, nil
}
