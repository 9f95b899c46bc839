package spectest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/tools/txtar"

	"casesync/engine"
)

// Expect is the expected outcome of one source record: its decision, or
// per item when the pipeline fans a record out.
type Expect struct {
	Decision string            `json:"decision,omitempty"`
	Reason   string            `json:"reason,omitempty"`
	Request  *Call             `json:"request,omitempty"`
	After    []Call            `json:"after,omitempty"`
	Items    map[string]Expect `json:"items,omitempty"`
	// LookupMisses counts the lookups that found no value for the record
	// (on_miss null, default or skip included).
	LookupMisses map[string]int `json:"lookup_misses,omitempty"`
	// Notes counts the field-level notes the mapping attached to the
	// record's items (jq note($code)).
	Notes map[string]int `json:"notes,omitempty"`
}

// Result is one test's run.
type Result struct {
	Test *Test
	// Got is the actual outcome per source record key, in source order.
	Got   map[string]Expect
	Order []string
	// Errors are per record: the outcome's error text, shown beside a
	// failing decision.
	Errors map[string]string
	// Diffs are the mismatches with the expectations; empty when it passes.
	Diffs []Diff
	// Problems are errors in the test itself (a read without an answer).
	Problems []string
}

// Diff is one expectation that does not hold.
type Diff struct {
	Record string
	Path   string // e.g. request.body.given_name
	Want   string
	Got    string
	// Field names the map field that produced the value and its spec
	// position, when the path is inside a request body.
	Field string
	// Error, on a record's last diff, is what its outcomes failed with
	// (naming the field and spec position of a mapping failure).
	Error string
}

func (d Diff) String() string {
	s := fmt.Sprintf("%s: %s: want %s, got %s", d.Record, d.Path, d.Want, d.Got)
	if d.Field != "" {
		s += "\n      " + d.Field
	}
	if d.Error != "" {
		s += "\n    " + d.Record + " failed with: " + d.Error
	}
	return s
}

// Passed reports whether the test passed.
func (r *Result) Passed() bool { return len(r.Diffs) == 0 && len(r.Problems) == 0 }

var decisions = map[engine.Action]string{
	engine.ActionCreated: "create", engine.ActionUpdated: "update", engine.ActionUnchanged: "unchanged",
	engine.ActionSkipped: "skip", engine.ActionFailed: "fail",
}

// Run runs test t against plan: each source record in its own run of the
// pipeline, through the real stages, with one in-memory state for the
// whole test.
func Run(ctx context.Context, plan *engine.Plan, t *Test) (*Result, error) {
	p, ok := plan.Pipelines[t.Pipeline]
	if !ok {
		return nil, fmt.Errorf("%s: no pipeline %q in %s (have: %s)", t.Path, t.Pipeline, plan.Name, strings.Join(plan.Order, ", "))
	}
	rem := newRemote(plan, t)
	st := newMemState()
	clk := &clock{t: t.Now}
	runner := engine.NewRunner(plan, rem, st, clk, nil)
	runner.Sleep = clk.sleep
	res := &Result{Test: t, Got: map[string]Expect{}, Errors: map[string]string{}}
	for i, rec := range t.Records {
		src := recordKey(ctx, p, rec, i)
		key := src
		if _, dup := res.Got[key]; dup {
			// The same record read again (changed): its own expectation.
			key = fmt.Sprintf("%s (record %d)", key, i+1)
		}
		rem.reset()
		opts := engine.SyncOptions{Records: []any{rec}, Trigger: "test"}
		if d, ok := t.Deliveries[src]; ok {
			opts.Deliveries = map[string]any{src: d}
		}
		rr, err := runner.Sync(ctx, p.Name, opts)
		outs := st.take()
		got, errText := expectOf(p, src, outs, rem)
		if err != nil && len(outs) == 0 {
			var stop *engine.RunStoppedError
			reason := "run_failed"
			if errors.As(err, &stop) {
				reason = "run_stopped"
			}
			got = Expect{Decision: "fail", Reason: reason}
			errText = err.Error()
		}
		if rr != nil {
			for name, n := range rr.Misses {
				if n > 0 {
					if got.LookupMisses == nil {
						got.LookupMisses = map[string]int{}
					}
					got.LookupMisses[name] = n
				}
			}
		}
		if rr != nil && len(rr.Counts.Notes) > 0 {
			got.Notes = rr.Counts.Notes
		}
		res.Got[key] = got
		res.Order = append(res.Order, key)
		if errText != "" {
			res.Errors[key] = errText
		}
		for _, u := range rem.unanswered {
			res.Problems = append(res.Problems, fmt.Sprintf("%s: record %s: the test has no section for this request; add -- %s --", t.Path, key, u))
		}
	}
	res.Diffs = compare(p, res)
	return res, nil
}

func recordKey(ctx context.Context, p *engine.Pipeline, rec any, i int) string {
	k, err := p.Source.Key.One(ctx, rec, nil)
	if s := engine.ScalarString(k); err == nil && s != "" {
		return s
	}
	return fmt.Sprintf("record-%d", i+1)
}

// expectOf turns a record's outcomes and the writes its items sent into
// its expectation. Writes are matched to outcomes in item order: an item
// sends a write only when it is created, updated or fails at the write or
// after it, and nothing after a failed item is sent.
func expectOf(p *engine.Pipeline, key string, outs []engine.Outcome, rem *remote) (Expect, string) {
	rem.mu.Lock()
	var writes []*group
	for _, g := range rem.groups {
		if g.write {
			writes = append(writes, g)
		}
	}
	unwritten := rem.unwritten
	rem.mu.Unlock()
	var errs []string
	one := func(o engine.Outcome) (e Expect) {
		e = Expect{Decision: decisions[o.Action], Reason: o.Reason}
		defer func() {
			// The steps run for an item that was not written come after
			// its outcome, in order; an item whose steps sent nothing has
			// no group.
			if len(unwritten) > 0 && unwritten[0].action == string(o.Action) && unwritten[0].reason == o.Reason {
				e.After = append(e.After, unwritten[0].calls...)
				unwritten = unwritten[1:]
			}
		}()
		switch o.Action {
		case engine.ActionCreated, engine.ActionUpdated, engine.ActionFailed:
			if len(writes) > 0 && (o.Action != engine.ActionFailed || o.Reason != "waits_for_item") {
				g := writes[0]
				writes = writes[1:]
				for i, c := range g.calls {
					if i == 0 && c.Step == "" {
						cc := c
						e.Request = &cc
						continue
					}
					e.After = append(e.After, c)
				}
			}
		}
		if o.Error != "" && o.Reason != "waits_for_item" {
			errs = append(errs, o.RecordKey+": "+o.Error)
		}
		return e
	}
	if len(outs) == 1 && (p.Each == nil || !strings.HasPrefix(outs[0].RecordKey, key+"#")) {
		// One outcome for the record: not fanned out, or ended before.
		return one(outs[0]), strings.Join(errs, "; ")
	}
	e := Expect{}
	e.Items = map[string]Expect{}
	for _, o := range outs {
		item := strings.TrimPrefix(o.RecordKey, key+"#")
		if item == o.RecordKey && item == key {
			item = "(record)"
		}
		// A record both decided and removed from a batch target (it left
		// the source set) has two outcomes under one key.
		name := item
		for n := 2; ; n++ {
			if _, dup := e.Items[name]; !dup {
				break
			}
			name = fmt.Sprintf("%s (%d)", item, n)
		}
		e.Items[name] = one(o)
	}
	return e, strings.Join(errs, "; ")
}

// canonical is an expectation as plain JSON values, for comparison.
func canonical(e Expect) any {
	b, _ := json.Marshal(e)
	var v any
	_ = json.Unmarshal(b, &v)
	return v
}

func canonicalText(b []byte) (any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return map[string]any{}, nil
	}
	var e Expect
	if err := strictJSON(b, &e); err != nil {
		return nil, err
	}
	return canonical(e), nil
}

func compare(p *engine.Pipeline, res *Result) []Diff {
	var out []Diff
	t := res.Test
	for _, key := range res.Order {
		raw, ok := t.Expect[key]
		if !ok {
			out = append(out, Diff{Record: key, Path: "(expectation)", Want: "an -- expect " + key + " -- section", Got: "none (engine test --update writes it)"})
			continue
		}
		want, err := canonicalText(raw)
		if err != nil {
			out = append(out, Diff{Record: key, Path: "(expectation)", Want: "valid JSON", Got: err.Error()})
			continue
		}
		var ds []Diff
		diffValues(key, "", want, canonical(res.Got[key]), &ds)
		for i := range ds {
			ds[i].Field = fieldAt(p, ds[i].Path)
		}
		if len(ds) > 0 {
			ds[len(ds)-1].Error = res.Errors[key]
		}
		out = append(out, ds...)
	}
	for key := range t.Expect {
		if _, ok := res.Got[key]; !ok {
			out = append(out, Diff{Record: key, Path: "(expectation)", Want: "a source record with this key", Got: "none in source.json"})
		}
	}
	return out
}

// diffValues lists the leaves where want and got differ.
func diffValues(rec, path string, want, got any, out *[]Diff) {
	wm, wok := want.(map[string]any)
	gm, gok := got.(map[string]any)
	if wok && gok {
		keys := map[string]bool{}
		for k := range wm {
			keys[k] = true
		}
		for k := range gm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			diffValues(rec, join(path, k), wm[k], gm[k], out)
		}
		return
	}
	wa, wok := want.([]any)
	ga, gok := got.([]any)
	if wok && gok && len(wa) == len(ga) {
		for i := range wa {
			diffValues(rec, fmt.Sprintf("%s[%d]", path, i), wa[i], ga[i], out)
		}
		return
	}
	wb, _ := json.Marshal(want)
	gb, _ := json.Marshal(got)
	if !bytes.Equal(wb, gb) {
		*out = append(*out, Diff{Record: rec, Path: path, Want: show(want, wb), Got: show(got, gb)})
	}
}

func show(v any, b []byte) string {
	if v == nil {
		return "(nothing)"
	}
	s := string(b)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// Update rewrites the test file's expectations that differ from what the
// run produced, leaving every other section byte for byte as it was; it
// reports how many it rewrote.
func Update(res *Result) (int, error) {
	t := res.Test
	ar := t.archive
	changed := 0
	seen := map[string]bool{}
	var files []txtar.File
	for _, f := range ar.Files {
		kind, key, _ := strings.Cut(strings.TrimSpace(f.Name), " ")
		key = strings.TrimSpace(key)
		if kind != "expect" {
			files = append(files, f)
			continue
		}
		got, ok := res.Got[key]
		if !ok {
			changed++ // no such record any more
			continue
		}
		seen[key] = true
		want, err := canonicalText(f.Data)
		if err == nil && sameJSON(want, canonical(got)) {
			files = append(files, f)
			continue
		}
		f.Data = render(got)
		files = append(files, f)
		changed++
	}
	for _, key := range res.Order {
		if !seen[key] {
			files = append(files, txtar.File{Name: "expect " + key, Data: render(res.Got[key])})
			changed++
		}
	}
	if changed == 0 {
		return 0, nil
	}
	ar.Files = files
	if err := os.WriteFile(t.Path, txtar.Format(ar), 0o644); err != nil {
		return 0, err
	}
	return changed, nil
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func render(e Expect) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(e)
	return buf.Bytes()
}

// Files lists the test files of a deployment folder (dir/tests/*.txtar).
func Files(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "tests", "*.txtar"))
	sort.Strings(files)
	return files, err
}
