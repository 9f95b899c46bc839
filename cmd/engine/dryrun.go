package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"casesync/engine"
	"casesync/engine/mapping"
)

const dryRunLong = `Dry-run shows exactly what a pipeline would write, without writing: it reads
the source (read-only) or a file of source records, runs filters, enrich
steps, the mapping, lookups and the upsert decision — reading the current
target record to decide create / update / unchanged / skip / fail — and
prints, per record, the decision with its reason, the request that would be
sent, and for an update the field-level change old → new.

Nothing is written: no target write, no after-step, no state change, and the
cursor does not move. Secrets and auth headers never appear; --redact-pii
masks personal fields (names, dates of birth, phones, addresses, notes) so
the output can be pasted into a support ticket.

Exit codes: 0 previewed (records that would fail are shown, not counted as
an error); 1 spec problems or the source could not be read; 2 usage or I/O
error, a secret not set, or a damaged state file.`

type dryRunFlags struct {
	common
	from      string
	query     []string
	limit     int
	record    []string
	since     string
	format    string
	redactPII bool
}

func (a *app) dryRunCmd() *cobra.Command {
	var f dryRunFlags
	cmd := &cobra.Command{
		Use:   "dry-run PIPELINE",
		Short: "Preview what a pipeline would write, without writing anything",
		Long:  dryRunLong,
		Example: `  engine dry-run f1_referrals_to_oscar --specs specs/cambodia --secrets-file /etc/casesync/kh.env --limit 5

  # Records from a file (an export, a hand-made case) instead of the source
  engine dry-run cases_to_oscar --specs specs/example --secrets-file /etc/casesync/kh.env \
    --from docs/examples/primero-cases.json --format diff

  # The first record waiting in the retry queue, re-fetched, as JSON without names
  key=$(engine failures --specs specs/cambodia --pipeline f1_referrals_to_oscar --format json | jq -r '.[0].record_key')
  engine dry-run f1_referrals_to_oscar --specs specs/cambodia --secrets-file /etc/casesync/kh.env \
    --record "$key" --format json --redact-pii`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch f.format {
			case "table", "json", "diff":
			default:
				return usageError("--format must be table, json or diff, not %q", f.format)
			}
			d, err := a.open(cmd.Context(), &f.common, true)
			if err != nil {
				return err
			}
			defer d.Close()
			p, ok := d.plan.Pipelines[args[0]]
			if branches := d.plan.Groups[args[0]]; branches != nil {
				return usageError("%s has branches, each previewed on its own: engine dry-run %s", args[0], strings.Join(branches, " | "))
			}
			if !ok {
				return usageError("no pipeline %q in %s (have: %s)", args[0], d.plan.Name, strings.Join(d.plan.Order, ", "))
			}
			opts := engine.SyncOptions{Limit: f.limit, Keys: f.record, Since: f.since, Trigger: "dry-run"}
			if f.from != "" {
				recs, err := readRecords(f.from, cmd.InOrStdin())
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				if f.limit > 0 && len(recs) > f.limit {
					recs = recs[:f.limit]
				}
				if p.Inbox != nil {
					// The file holds webhook deliveries: each goes through the
					// inbox as the daemon would take it.
					if recs, err = asDeliveries(cmd.Context(), d.plan, p, recs, f.query, &opts); err != nil {
						return &exitError{code: 1, err: err}
					}
				}
				opts.Records = recs
			}
			var mu sync.Mutex
			var decisions []engine.Decision
			opts.DryRun = func(dec engine.Decision) {
				mu.Lock()
				decisions = append(decisions, dec)
				mu.Unlock()
			}
			res, err := d.runner.Sync(cmd.Context(), p.Name, opts)
			sort.SliceStable(decisions, func(i, j int) bool { return decisions[i].RecordKey < decisions[j].RecordKey })
			var buf strings.Builder
			pr := &previewer{w: &buf, redactPII: f.redactPII, keys: mergeKeysOf(d.plan, p), plan: d.plan}
			switch f.format {
			case "json":
				pr.json(p.Name, decisions, res)
			case "diff":
				pr.diff(decisions)
				pr.summary(p.Name, decisions, res)
			default:
				pr.table(p.Name, decisions)
				pr.summary(p.Name, decisions, res)
			}
			// Secrets are masked on the way out, whatever path they took.
			io.WriteString(a.stdout, d.red.String(buf.String()))
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("%s: %s", p.Name, d.red.String(err.Error()))}
			}
			return nil
		},
	}
	f.common.register(cmd)
	f.common.registerNow(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "read source records from a JSON file (array, {\"data\": [...]}, or one object per line); - for stdin. For a pipeline triggered by an inbox the file holds webhook deliveries, each taken as the inbox takes it")
	fl.StringArrayVar(&f.query, "query", nil, "with --from on an inbox pipeline: a query parameter NAME=VALUE of the deliveries (as delivery.query; e.g. event=case.post)")
	fl.IntVar(&f.limit, "limit", 0, "preview at most this many source records")
	fl.StringArrayVar(&f.record, "record", nil, "preview only this source record, re-fetched by key (repeatable)")
	fl.StringVar(&f.since, "since", "", "read the source from this cursor instead of the stored one")
	fl.StringVar(&f.format, "format", "table", "output: table, json or diff")
	fl.BoolVar(&f.redactPII, "redact-pii", false, "mask personal fields in the output")
	return cmd
}

// readRecords accepts a JSON array, an object with a data array, or JSON
// lines.
// asDeliveries turns the items of a --from file into what the pipeline's
// inbox makes of them: the records (or, with trigger.inbox.fetch, the keys
// to re-fetch) and each one's $delivery, with query as the delivery's
// query parameters.
func asDeliveries(ctx context.Context, plan *engine.Plan, p *engine.Pipeline, items []any, query []string, opts *engine.SyncOptions) ([]any, error) {
	q := map[string]any{}
	for _, kv := range query {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError("--query wants NAME=VALUE, not %q", kv)
		}
		q[k] = v
	}
	vars := &mapping.Vars{Vars: plan.Vars, Now: time.Now().UTC().Format(time.RFC3339)}
	opts.Deliveries = map[string]any{}
	var recs []any
	for i, it := range items {
		rec, key, dl, err := p.Inbox.Receive(ctx, p, engine.Delivery{Body: it, Query: q}, fmt.Sprintf("from-file-%d", i+1), vars)
		if err != nil {
			return nil, fmt.Errorf("delivery %d of the file: %w", i+1, err)
		}
		opts.Deliveries[key] = dl
		if rec == nil {
			opts.Keys = append(opts.Keys, key)
			if p.Inbox.Fetch != nil {
				opts.Fetch = p.Inbox.Fetch
			}
			continue
		}
		recs = append(recs, rec)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	return recs, nil
}

func readRecords(path string, stdin io.Reader) ([]any, error) {
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read records: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(bufio.NewReader(r))
	if err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err == nil {
		switch x := v.(type) {
		case []any:
			return x, nil
		case map[string]any:
			if arr, ok := x["data"].([]any); ok {
				return arr, nil
			}
			return []any{x}, nil
		}
	}
	var out []any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	for n := 1; dec.More(); n++ {
		var rec any
		if err := dec.Decode(&rec); err != nil {
			return nil, fmt.Errorf("%s: record %d is not JSON", path, n)
		}
		out = append(out, rec)
	}
	return out, nil
}

// previewer renders decisions. Table output fits 100 columns.
type previewer struct {
	w         io.Writer
	redactPII bool
	// keys pairs the rows of arrays the target merges by a key (the map
	// field's merge_key, else the target connector's), so rows are
	// compared the way the target applies them, not by position.
	keys mergeKeys
	// plan's sensitivity classes decide which fields are masked.
	plan *engine.Plan
}

// mergeKeys are a pipeline's merge keys: by top-level payload field, and
// the target connector's default.
type mergeKeys struct {
	fields map[string]string
	def    string
}

func mergeKeysOf(plan *engine.Plan, p *engine.Pipeline) mergeKeys {
	k := mergeKeys{fields: map[string]string{}}
	if c := plan.Connectors[p.Spec.Upsert.Connector]; c != nil {
		k.def = c.Spec.MergeKey
	}
	for name, v := range p.Spec.Map {
		if v.MergeKey != "" {
			k.fields[name] = v.MergeKey
		}
	}
	return k
}

// of is the merge key of the array at path (a payload path: its first
// segment is the map field).
func (m mergeKeys) of(path string) string {
	root := path
	if i := strings.IndexAny(path, ".["); i >= 0 {
		root = path[:i]
	}
	if k := m.fields[root]; k != "" {
		return k
	}
	return m.def
}

// bodyKeys is m for paths of a request body, which wraps the payload
// ({data: …}, {organization: …}).
func (m mergeKeys) bodyKeys(path string) string { return m.of(trimBodyPrefix(path)) }

const width = 100

var piiField = regexp.MustCompile(`(?i)(name|given|family|first|last|middle|nick|birth|dob|phone|mobile|tel|address|addr|email|national_id|id_no|individual_no|notes|reason|comment|caseworker|case_worker)`)

// sensitive reports whether a field's value is masked: the deployment's
// class for it (pii, health, protection; "none" shows it), else the names
// that usually hold personal data, so a deployment that classifies
// nothing still prints no child's name.
func (p *previewer) sensitive(field string) bool {
	if p.plan != nil && p.plan.Declared(field) {
		return p.plan.FieldClass(field) != ""
	}
	return piiField.MatchString(field) || engine.ClassBearing(field) != ""
}

// mask hides personal values when --redact-pii is on. Keys, ids and codes
// stay readable so a ticket still says which record went wrong.
func (p *previewer) mask(field string, v any) any {
	if !p.redactPII || !p.sensitive(field) {
		return v
	}
	switch x := v.(type) {
	case string:
		if x == "" {
			return x
		}
		return "•••"
	case nil, bool:
		return v
	case map[string]any, []any:
		return "•••"
	}
	return "•••"
}

func verb(a engine.Action) string {
	switch a {
	case engine.ActionCreated:
		return "CREATE"
	case engine.ActionUpdated:
		return "UPDATE"
	case engine.ActionUnchanged:
		return "UNCHANGED"
	case engine.ActionSkipped:
		return "SKIP"
	case engine.ActionFailed:
		return "FAIL"
	}
	return strings.ToUpper(string(a))
}

func (p *previewer) table(pipeline string, ds []engine.Decision) {
	fmt.Fprintf(p.w, "%s — dry-run: nothing is written, the cursor does not move\n", pipeline)
	fmt.Fprintln(p.w, strings.Repeat("─", width))
	for _, d := range ds {
		head := fmt.Sprintf("%-10s %s", verb(d.Action), d.RecordKey)
		if r := reasonText(d); r != "" {
			head += "  " + r
		}
		fmt.Fprintln(p.w, clip(head, width))
		if len(d.Notes) > 0 {
			fmt.Fprintln(p.w, clip("  notes: "+strings.Join(d.Notes, ", "), width))
		}
		if d.Request != nil {
			fmt.Fprintln(p.w, clip("  "+requestLine(d.Request), width))
			before := flatten("", d.Before, nil, p.keys.of)
			rowsBefore := keyedRows(before)
			shown := map[string]bool{}
			for _, kv := range flattenSorted(p.maskTree("", d.Request.Body), p.keys.bodyKeys) {
				val := p.render(kv.k, kv.v)
				if row, ok := keyedRow(trimBodyPrefix(kv.k)); ok && d.Action == engine.ActionUpdated && !rowsBefore[row] {
					// A row the target does not have: one added row.
					if !shown[row] {
						shown[row] = true
						wrapper := kv.k[:len(kv.k)-len(trimBodyPrefix(kv.k))] // "data." of the body
						fmt.Fprintln(p.w, clip(fmt.Sprintf("    %-34s + new row", wrapper+row), width))
					}
					continue
				}
				if old, ok := before[trimBodyPrefix(kv.k)]; ok && d.Action == engine.ActionUpdated {
					if jsonEq(old, kv.v) {
						continue
					}
					val = p.render(kv.k, old) + " → " + val
				}
				fmt.Fprintln(p.w, clip(fmt.Sprintf("    %-34s %s", kv.k, val), width))
			}
		}
	}
	if len(ds) == 0 {
		fmt.Fprintln(p.w, "(no records)")
	}
	fmt.Fprintln(p.w, strings.Repeat("─", width))
}

func reasonText(d engine.Decision) string {
	switch {
	case d.MissLookup != "":
		return fmt.Sprintf("%s: key %q", d.Reason, d.MissKey)
	case d.Action == engine.ActionFailed && d.Error != "":
		return d.Reason + ": " + d.Error
	}
	return d.Reason
}

func requestLine(c *engine.CallPreview) string {
	s := c.Method + " " + c.Path
	if len(c.Query) > 0 {
		keys := make([]string, 0, len(c.Query))
		for k := range c.Query {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + c.Query[k]
		}
		s += "?" + strings.Join(parts, "&")
	}
	return s
}

func (p *previewer) render(field string, v any) string {
	b, _ := json.Marshal(p.mask(field, v))
	return string(b)
}

// clip neutralises control characters (printable) and cuts s to n
// characters.
func clip(s string, n int) string {
	s = printable(s)
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

type kv struct {
	k string
	v any
}

// flatten turns nested JSON into dotted paths: arrays as [i], except an
// array of objects that all carry the merge key keyOf gives for its path,
// whose rows are [key=value] (see mergeKeys).
func flatten(prefix string, v any, out map[string]any, keyOf func(string) string) map[string]any {
	if out == nil {
		out = map[string]any{}
	}
	switch x := v.(type) {
	case map[string]any:
		for k, vv := range x {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flatten(key, vv, out, keyOf)
		}
		if len(x) == 0 && prefix != "" {
			out[prefix] = x
		}
	case []any:
		key := ""
		if keyOf != nil {
			key = keyOf(prefix)
		}
		if key != "" && allKeyed(x, key) {
			for _, vv := range x {
				flatten(fmt.Sprintf("%s[%s=%v]", prefix, key, vv.(map[string]any)[key]), vv, out, keyOf)
			}
		} else {
			for i, vv := range x {
				flatten(fmt.Sprintf("%s[%d]", prefix, i), vv, out, keyOf)
			}
		}
		if len(x) == 0 && prefix != "" {
			out[prefix] = x
		}
	default:
		if prefix != "" {
			out[prefix] = v
		}
	}
	return out
}

// allKeyed: every element is an object with a scalar, non-empty key, and
// no key value repeats.
func allKeyed(rows []any, key string) bool {
	seen := map[string]bool{}
	for _, r := range rows {
		m, ok := r.(map[string]any)
		if !ok {
			return false
		}
		switch k := m[key].(type) {
		case string, float64, int, int64, json.Number:
			ks := fmt.Sprint(k)
			if ks == "" || seen[ks] {
				return false
			}
			seen[ks] = true
		default:
			return false
		}
	}
	return len(rows) > 0
}

var keyedSegment = regexp.MustCompile(`^[^\[]*\[[^\]=]+=[^\]]*\]`)

// keyedRow is the path of the keyed row a path lies in
// ("services_section[unique_id=x]"), if it lies in one.
func keyedRow(path string) (string, bool) {
	m := keyedSegment.FindString(path)
	return m, m != ""
}

// keyedRows are the keyed rows a flattened record has.
func keyedRows(flat map[string]any) map[string]bool {
	rows := map[string]bool{}
	for k := range flat {
		if r, ok := keyedRow(k); ok {
			rows[r] = true
		}
	}
	return rows
}

func flattenSorted(v any, keyOf func(string) string) []kv {
	m := flatten("", v, nil, keyOf)
	out := make([]kv, 0, len(m))
	for k, vv := range m {
		out = append(out, kv{k, vv})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].k < out[j].k })
	return out
}

// trimBodyPrefix maps a body path to the target record's path: bodies wrap
// the payload ({data: …}, {organization: …}) while the target record does
// not.
func trimBodyPrefix(k string) string {
	if i := strings.IndexByte(k, '.'); i > 0 {
		return k[i+1:]
	}
	return k
}

func (p *previewer) diff(ds []engine.Decision) {
	for _, d := range ds {
		fmt.Fprintf(p.w, "=== %s %s %s\n", verb(d.Action), printable(d.RecordKey), printable(reasonText(d)))
		if len(d.Notes) > 0 {
			fmt.Fprintf(p.w, "# notes: %s\n", strings.Join(d.Notes, ", "))
		}
		if d.Request == nil {
			continue
		}
		fmt.Fprintf(p.w, "%s\n", requestLine(d.Request))
		before := flatten("", p.maskTree("", d.Before), nil, p.keys.of)
		after := flatten("", p.maskTree("", d.Payload), nil, p.keys.of)
		rowsBefore := keyedRows(before)
		added := addedRows(d, rowsBefore, p.maskTree("", d.Payload), p.keys.of)
		shownRows := map[string]bool{}
		keys := map[string]bool{}
		for k := range after {
			keys[k] = true
		}
		if d.Action == engine.ActionUpdated {
			for k := range before {
				if _, ok := after[k]; ok {
					keys[k] = true
				}
			}
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			old, hadOld := before[k]
			nv, hasNew := after[k]
			if row, ok := keyedRow(k); ok {
				if v, isAdded := added[row]; isAdded {
					// A row the target lacks is one added row, whole.
					if !shownRows[row] {
						shownRows[row] = true
						fmt.Fprintf(p.w, "+ %s: %s\n", row, p.render(row, v))
					}
					continue
				}
			}
			switch {
			case hadOld && hasNew && jsonEq(old, nv):
				continue
			case hadOld && d.Action == engine.ActionUpdated:
				fmt.Fprintf(p.w, "- %s: %s\n", k, p.render(k, old))
				fmt.Fprintf(p.w, "+ %s: %s\n", k, p.render(k, nv))
			default:
				fmt.Fprintf(p.w, "+ %s: %s\n", k, p.render(k, nv))
			}
		}
	}
}

func jsonEq(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

type summary struct {
	Pipeline string                    `json:"pipeline"`
	Records  int                       `json:"records"`
	Actions  map[string]int            `json:"actions"`
	Skipped  map[string]int            `json:"skipped_by_reason"`
	Failed   map[string]int            `json:"failed_by_reason"`
	Misses   map[string]map[string]int `json:"lookup_misses"`
	// Notes counts the records' field-level notes by code.
	Notes map[string]int `json:"notes,omitempty"`
}

func buildSummary(pipeline string, ds []engine.Decision, res *engine.RunResult) summary {
	s := summary{Pipeline: pipeline, Actions: map[string]int{}, Skipped: map[string]int{}, Failed: map[string]int{}, Misses: map[string]map[string]int{}}
	if res != nil {
		s.Records = res.Counts.Read
	}
	for _, d := range ds {
		s.Actions[strings.ToLower(verb(d.Action))]++
		switch d.Action {
		case engine.ActionSkipped:
			s.Skipped[d.Reason]++
		case engine.ActionFailed:
			s.Failed[d.Reason]++
		}
		for _, n := range d.Notes {
			if s.Notes == nil {
				s.Notes = map[string]int{}
			}
			s.Notes[n]++
		}
		if d.MissLookup != "" {
			if s.Misses[d.MissLookup] == nil {
				s.Misses[d.MissLookup] = map[string]int{}
			}
			s.Misses[d.MissLookup][d.MissKey]++
		}
	}
	return s
}

func (p *previewer) summary(pipeline string, ds []engine.Decision, res *engine.RunResult) {
	s := buildSummary(pipeline, ds, res)
	parts := []string{}
	for _, a := range []string{"create", "update", "unchanged", "skip", "fail"} {
		if n := s.Actions[a]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", a, n))
		}
	}
	fmt.Fprintf(p.w, "summary: %d source record(s) → %d decision(s): %s\n", s.Records, len(ds), strings.Join(parts, ", "))
	for _, group := range []struct {
		title string
		m     map[string]int
	}{{"skipped", s.Skipped}, {"failed", s.Failed}, {"notes", s.Notes}} {
		if len(group.m) == 0 {
			continue
		}
		if group.title == "notes" {
			fmt.Fprint(p.w, "  notes (values left out or changed, by code):")
		} else {
			fmt.Fprintf(p.w, "  %s by reason:", group.title)
		}
		for _, r := range engine.SortedReasons(group.m) {
			fmt.Fprintf(p.w, " %s %d;", r, group.m[r])
		}
		fmt.Fprintln(p.w)
	}
	if len(s.Misses) > 0 {
		names := make([]string, 0, len(s.Misses))
		for n := range s.Misses {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(p.w, "  lookup %s missed:", n)
			for _, k := range engine.SortedReasons(s.Misses[n]) {
				fmt.Fprintf(p.w, " %q×%d", k, s.Misses[n][k])
			}
			fmt.Fprintln(p.w)
		}
	}
}

func (p *previewer) json(pipeline string, ds []engine.Decision, res *engine.RunResult) {
	type jd struct {
		Record   string              `json:"record"`
		Action   string              `json:"action"`
		Reason   string              `json:"reason,omitempty"`
		Error    string              `json:"error,omitempty"`
		Notes    []string            `json:"notes,omitempty"`
		TargetID string              `json:"target_id,omitempty"`
		Request  *engine.CallPreview `json:"request,omitempty"`
		Changes  map[string][2]any   `json:"changes,omitempty"`
		// Added are the rows of merged arrays the target lacks, whole.
		Added map[string]any `json:"added_rows,omitempty"`
	}
	out := struct {
		Decisions []jd    `json:"decisions"`
		Summary   summary `json:"summary"`
	}{Decisions: []jd{}, Summary: buildSummary(pipeline, ds, res)}
	for _, d := range ds {
		j := jd{Record: d.RecordKey, Action: strings.ToLower(verb(d.Action)), Reason: d.Reason, Error: d.Error, Notes: d.Notes, TargetID: d.TargetID}
		if d.Request != nil {
			req := *d.Request
			req.Body = p.maskTree("", req.Body)
			j.Request = &req
		}
		if d.Action == engine.ActionUpdated && d.Before != nil {
			before := flatten("", d.Before, nil, p.keys.of)
			for row, v := range addedRows(d, keyedRows(before), d.Payload, p.keys.of) {
				if j.Added == nil {
					j.Added = map[string]any{}
				}
				j.Added[row] = p.maskTree(row, v)
			}
			for k, nv := range flatten("", d.Payload, nil, p.keys.of) {
				if old, ok := before[k]; ok && !jsonEq(old, nv) {
					if j.Changes == nil {
						j.Changes = map[string][2]any{}
					}
					j.Changes[k] = [2]any{p.mask(k, old), p.mask(k, nv)}
				}
			}
		}
		out.Decisions = append(out.Decisions, j)
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	p.w.Write(append(b, '\n'))
}

// addedRows are, for an update, the payload's rows of merged arrays that
// the target does not have (by keyed path), each whole.
func addedRows(d engine.Decision, rowsBefore map[string]bool, payload any, keyOf func(string) string) map[string]any {
	out := map[string]any{}
	m, ok := payload.(map[string]any)
	if d.Action != engine.ActionUpdated || !ok {
		return out
	}
	for field, v := range m {
		rows, ok := v.([]any)
		key := keyOf(field)
		if !ok || key == "" || !allKeyed(rows, key) {
			continue
		}
		for _, r := range rows {
			path := fmt.Sprintf("%s[%s=%v]", field, key, r.(map[string]any)[key])
			if !rowsBefore[path] {
				out[path] = r
			}
		}
	}
	return out
}

func (p *previewer) maskTree(field string, v any) any {
	if !p.redactPII {
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, vv := range x {
			out[k] = p.maskTree(k, vv)
		}
		// Name/Value pairs (PING's Fields) carry the field name as data:
		// the value is personal when the name says so.
		if name, ok := x["Name"].(string); ok {
			if _, has := x["Value"]; has && p.sensitive(name) {
				out["Value"] = p.mask(name, x["Value"])
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, vv := range x {
			out[i] = p.maskTree(field, vv)
		}
		return out
	}
	return p.mask(field, v)
}
