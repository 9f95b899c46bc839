package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// SyncGroup runs the branches of pipeline group (Plan.Groups) once, over
// one listing of the source they share. Each branch is a run of its own,
// under its own name: its due retries first (re-fetched by key, so a retry
// of one branch's record resends nothing another branch wrote), then
// every page of the listing through its own stages, committed with its own
// outcomes, links and retry entries. A branch whose run fails stops taking
// pages and keeps its cursor, so its next run reads the window again; the
// others go on and move theirs. The listing starts at the earliest of the
// branches' cursors (they differ only when one failed, or when pipelines
// that ran apart became branches): a branch whose cursor is later skips
// the records whose version it handled already.
//
// With Keys or Records (a retry by key, a delivery) or a dry run, each
// branch runs on its own in turn, as Sync would run it. The results are
// the branches', in Plan.Groups order; the error is the first branch's
// error.
func (r *Runner) SyncGroup(ctx context.Context, group string, opts SyncOptions) ([]*RunResult, error) {
	names, ok := r.plan.Groups[group]
	if !ok || len(names) == 0 {
		return nil, fmt.Errorf("%w %q (have: %s)", ErrUnknownPipeline, group, strings.Join(slices.Sorted(maps.Keys(r.plan.Groups)), ", "))
	}
	if opts.Records != nil || len(opts.Keys) > 0 || opts.DryRun != nil {
		return r.syncEach(ctx, names, opts)
	}
	runs := make([]*run, len(names))
	res := make([]*RunResult, len(names))
	errs := make([]error, len(names))
	for i, name := range names {
		ru, err := r.newRun(ctx, name, opts)
		if err != nil {
			for j := range i {
				_, _ = runs[j].finish(ctx, res[j], err)
			}
			return nil, err
		}
		ru.shared = true
		runs[i], res[i] = ru, &RunResult{Pipeline: name, RunID: ru.id}
		if errs[i] = ru.read.start(ctx); errs[i] == nil {
			errs[i] = ru.drive(ctx, res[i])
		}
	}
	var live []int
	for i := range runs {
		if errs[i] == nil {
			live = append(live, i)
		}
	}
	if len(live) > 0 {
		lr := make([]*run, len(live))
		lres := make([]*RunResult, len(live))
		for k, i := range live {
			lr[k], lres[k] = runs[i], res[i]
		}
		v := *lr[0].vars
		v.Cursor = earliestCursor(lr)
		for k, err := range listShared(ctx, lr[0].read.src, &v, lr, lres) {
			errs[live[k]] = err
		}
	}
	out := make([]*RunResult, len(runs))
	var first error
	for i, ru := range runs {
		var err error
		out[i], err = ru.finish(ctx, res[i], errs[i])
		if err != nil && first == nil {
			first = err
		}
	}
	return out, first
}

// syncEach runs each named pipeline on its own, in order, until ctx ends.
func (r *Runner) syncEach(ctx context.Context, names []string, opts SyncOptions) ([]*RunResult, error) {
	var out []*RunResult
	var first error
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		res, err := r.Sync(ctx, name, opts)
		if res != nil {
			out = append(out, res)
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return out, first
}

// earliestCursor is the earliest $cursor of runs that read one source.
func earliestCursor(runs []*run) string {
	cur, at := runs[0].vars.Cursor, time.Time{}
	for _, ru := range runs {
		t, err := parseCursor(ru.vars.Cursor)
		if err == nil && (at.IsZero() || t.Before(at)) {
			cur, at = ru.vars.Cursor, t
		}
	}
	return cur
}

// withCopies is the page with each record object copied, for one of the
// runs that share it.
func (pg *Page) withCopies() *Page {
	cp := *pg
	cp.Records = make([]any, len(pg.Records))
	for i, rec := range pg.Records {
		if m, ok := rec.(map[string]any); ok {
			rec = maps.Clone(m)
		}
		cp.Records[i] = rec
	}
	return &cp
}

// SyncUnit runs name as a trigger does: a pipeline with branches over one
// listing (SyncGroup), or one pipeline or branch on its own (Sync).
func (r *Runner) SyncUnit(ctx context.Context, name string, opts SyncOptions) ([]*RunResult, error) {
	if _, ok := r.plan.Groups[name]; ok {
		return r.SyncGroup(ctx, name, opts)
	}
	res, err := r.Sync(ctx, name, opts)
	if res == nil {
		return nil, err
	}
	return []*RunResult{res}, err
}
