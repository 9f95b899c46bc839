package primero

import (
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Values a query string turns into (DestringifyService, primero.md §4).
type (
	dateVal  struct{ t time.Time } // YYYY-MM-DD
	timeVal  struct{ t time.Time } // an ISO datetime, kept to the second
	rangeVal struct {
		from, to any // to is nil for an open "X.." range
	}
	// sqlBreak is a value the real server cannot put in its SQL (an
	// integer beyond bigint): the query fails and the listing is empty.
	sqlBreak struct{}
)

var (
	reDigits   = regexp.MustCompile(`^\d+$`)
	reDate     = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	reDateTime = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$`)
)

// scalar applies rules 1-3 of the grammar: booleans, integers, dates and
// times. Anything else stays a string.
func scalar(v string) any {
	switch {
	case v == "true":
		return true
	case v == "false":
		return false
	case reDigits.MatchString(v):
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return sqlBreak{}
		}
		return n
	case reDate.MatchString(v):
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return v
		}
		return dateVal{t}
	}
	if m := reDateTime.FindStringSubmatch(v); m != nil {
		zone := m[4]
		switch {
		case zone == "":
			zone = "Z"
		case zone != "Z" && !strings.Contains(zone, ":"):
			zone = zone[:3] + ":" + zone[3:]
		}
		t, err := time.Parse(time.RFC3339, m[1]+"T"+m[2]+zone)
		if err != nil {
			return v
		}
		return timeVal{t.UTC()}
	}
	return v
}

// destringify turns one query value into a filter value; ok is false when
// Primero would drop the filter (an unsupported "..X" range, or a range
// whose start is neither a number nor a date).
func destringify(v string) (any, bool) {
	if x := scalar(v); x != any(v) {
		return x, true
	}
	if strings.Contains(v, ",") {
		parts := strings.Split(v, ",")
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = scalar(p)
		}
		return out, true
	}
	if i := strings.Index(v, ".."); i >= 0 {
		from, to := v[:i], v[i+2:]
		if from == "" {
			return nil, false
		}
		rv := rangeVal{from: scalar(from)}
		if to != "" {
			rv.to = scalar(to)
		}
		switch rv.from.(type) {
		case int64, dateVal, timeVal, sqlBreak:
			return rv, true
		}
		return nil, false
	}
	return v, true
}

// view gives a filter the record's columns and, only when asked, its
// document: most listings never need the document of a seeded case.
type view struct {
	s   *Server
	r   *record
	doc map[string]any
}

func (v *view) document() map[string]any {
	if v.doc == nil {
		v.doc = v.s.docOf(v.r)
	}
	return v.doc
}

// field returns the stored value of name; present is false for a key the
// record never had (SQL NULL).
func (v *view) field(name string) (val any, present bool) {
	switch name {
	case "id":
		return v.r.id, true
	case "last_updated_at":
		return fmtMS(v.r.updated), true
	}
	val, present = v.document()[name]
	return val, present
}

type filter interface {
	match(v *view) bool
}

type valueFilter struct {
	field string
	want  any // scalar, or []any for any-of
}

type identFilter struct{ field, value string }

type rangeFilter struct {
	field string
	rng   rangeVal

	column       *int // columnUpdated or columnCreated when the fast path applies
	loSec, hiSec int64
	bounded      bool
}

type notFilter struct{ inner filter }

type orFilter struct{ filters []filter }

type locFilter struct {
	field string
	codes []string
}

type breakFilter struct{}

func (f identFilter) match(v *view) bool {
	got, _ := v.field(f.field)
	s, ok := got.(string)
	return ok && s == f.value
}

func (f valueFilter) match(v *view) bool {
	got, present := v.field(f.field)
	if !present {
		return false
	}
	wants, ok := f.want.([]any)
	if !ok {
		wants = []any{f.want}
	}
	for _, w := range wants {
		if jsonContains(got, w) {
			return true
		}
	}
	return false
}

// jsonContains is Postgres jsonpath in lax mode: an array matches when
// any element does, and values of different JSON types never match.
func jsonContains(got, want any) bool {
	if arr, ok := got.([]any); ok {
		for _, e := range arr {
			if scalarEqual(e, want) {
				return true
			}
		}
		return false
	}
	return scalarEqual(got, want)
}

func scalarEqual(got, want any) bool {
	switch w := want.(type) {
	case bool:
		g, ok := got.(bool)
		return ok && g == w
	case int64:
		g, ok := got.(float64)
		return ok && g == float64(w)
	case string:
		g, ok := got.(string)
		return ok && g == w
	case dateVal:
		g, ok := storedTime(got)
		return ok && g.Format(time.DateOnly) == w.t.Format(time.DateOnly)
	case timeVal:
		g, ok := storedTime(got)
		return ok && g.Truncate(time.Second).Equal(w.t.Truncate(time.Second))
	}
	return false
}

// storedTime parses a stored date or datetime string, in UTC.
func storedTime(v any) (time.Time, bool) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, false
	}
	if reDate.MatchString(s) {
		t, err := time.Parse(time.DateOnly, s)
		return t, err == nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

func (f rangeFilter) match(v *view) bool {
	// The cursor filter of every sync: compare whole seconds of the column
	// without building a time per record. created_at is a column only for
	// an untouched seeded case; a stored document may say otherwise.
	if f.column == columnUpdated || f.column == columnCreated && v.r.doc == nil {
		ms := v.r.updated
		if f.column == columnCreated {
			ms = v.r.created
		}
		sec := floorDiv(ms, 1000)
		return sec >= f.loSec && (!f.bounded || sec <= f.hiSec)
	}
	switch from := f.rng.from.(type) {
	case int64:
		got, _ := v.field(f.field)
		return anyElem(got, func(e any) bool {
			n, ok := e.(float64)
			if !ok || n < float64(from) {
				return false
			}
			to, bounded := f.rng.to.(int64)
			return !bounded || n <= float64(to)
		})
	case dateVal, timeVal:
		lo := boundTime(from)
		hi, bounded := time.Time{}, f.rng.to != nil
		if bounded {
			var ok bool
			if hi, ok = boundTimeOK(f.rng.to); !ok {
				return false
			}
		}
		got, present := v.field(f.field)
		if !present {
			return false
		}
		return anyElem(got, func(e any) bool {
			t, ok := storedTime(e)
			return ok && inSeconds(t, lo, hi, bounded)
		})
	}
	return false
}

// Column markers for rangeFilter.column.
var (
	columnUpdated = new(int)
	columnCreated = new(int)
)

// withColumn prepares the fast path of a date range on last_updated_at or
// on created_at (the column of an untouched seeded case).
func (f rangeFilter) withColumn() rangeFilter {
	lo, ok := boundTimeOK(f.rng.from)
	if !ok {
		return f
	}
	switch f.field {
	case "last_updated_at":
		f.column = columnUpdated
	case "created_at":
		f.column = columnCreated
	default:
		return f
	}
	f.loSec = lo.Unix()
	if f.rng.to != nil {
		hi, ok := boundTimeOK(f.rng.to)
		if !ok {
			f.column = nil
			return f
		}
		f.hiSec, f.bounded = hi.Unix(), true
	}
	return f
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// inSeconds compares at whole seconds in UTC, so that 10:00:00.400Z..
// also matches 10:00:00.100Z (primero.md §4).
func inSeconds(t, lo, hi time.Time, bounded bool) bool {
	t = t.Truncate(time.Second)
	if t.Before(lo.Truncate(time.Second)) {
		return false
	}
	return !bounded || !t.After(hi.Truncate(time.Second))
}

func boundTime(v any) time.Time {
	t, _ := boundTimeOK(v)
	return t
}

func boundTimeOK(v any) (time.Time, bool) {
	switch x := v.(type) {
	case dateVal:
		return x.t, true
	case timeVal:
		return x.t, true
	}
	return time.Time{}, false
}

func anyElem(got any, pred func(any) bool) bool {
	if arr, ok := got.([]any); ok {
		for _, e := range arr {
			if pred(e) {
				return true
			}
		}
		return false
	}
	return pred(got)
}

func (f notFilter) match(v *view) bool { return !f.inner.match(v) }

func (f orFilter) match(v *view) bool {
	for _, in := range f.filters {
		if in.match(v) {
			return true
		}
	}
	return false
}

func (f locFilter) match(v *view) bool {
	got, _ := v.field(f.field)
	code, ok := got.(string)
	if !ok {
		return false
	}
	chain := []string{code}
	if l := v.s.cat.locByCode[code]; l != nil {
		chain = l.hierarchy
	}
	for _, c := range f.codes {
		for _, h := range chain {
			if c == h {
				return true
			}
		}
	}
	return false
}

func (breakFilter) match(*view) bool { return false }

// listExcluded are parameters that are never filters (SearchFilterService::EXCLUDED
// plus the search switches handled separately).
var listExcluded = map[string]bool{
	"format": true, "controller": true, "action": true, "page": true, "per": true, "order": true, "order_by": true,
	"fields": true, "id_search": true, "query": true, "phonetic": true,
}

// parseFilters builds the filters of a listing. Keys the role cannot read
// and values Primero cannot parse are dropped without a word, exactly as
// the real server does; broken reports a value that would fail the SQL.
func parseFilters(q url.Values, rl *role) (fs []filter, idents []identFilter, broken bool) {
	type group struct {
		list   []string
		scalar *string
	}
	plain := map[string]*group{}
	nots := map[string]*group{}
	ors := map[string]*group{}
	locs := map[string][]string{}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	put := func(m map[string]*group, field, sub string, vals []string) {
		g := m[field]
		if g == nil {
			g = &group{}
			m[field] = g
		}
		if sub == "" {
			last := vals[len(vals)-1] // Rails keeps the last of repeated keys
			g.scalar = &last
		} else {
			g.list = append(g.list, vals...)
		}
	}
	for _, k := range keys {
		vals := q[k]
		if listExcluded[k] || len(vals) == 0 {
			continue
		}
		name, sub, hasSub := strings.Cut(k, "[")
		sub = strings.TrimSuffix(sub, "]")
		switch {
		case strings.HasPrefix(name, "loc:"):
			field := strings.TrimPrefix(name, "loc:")
			if rl.read[field] {
				locs[field] = append(locs[field], vals...)
			}
		case name == "not" && hasSub:
			field, idx, _ := strings.Cut(sub, "][")
			put(nots, field, idx, vals)
		case name == "or" && hasSub:
			field, idx, _ := strings.Cut(sub, "][")
			put(ors, field, idx, vals)
		case !rl.read[name]:
			// An unknown, misspelt or unpermitted key: silently ignored.
		case hasSub:
			put(plain, name, "list", vals)
		default:
			put(plain, name, "", vals)
		}
	}
	build := func(field string, g *group) (filter, bool) {
		if g.scalar == nil {
			want := make([]any, len(g.list))
			for i, s := range g.list {
				if isIdentifier[field] {
					want[i] = s
				} else {
					want[i] = scalar(s)
				}
			}
			return valueFilter{field: field, want: want}, true
		}
		raw := *g.scalar
		if isIdentifier[field] {
			return identFilter{field: field, value: raw}, true
		}
		val, ok := destringify(raw)
		if !ok {
			return nil, false
		}
		switch x := val.(type) {
		case sqlBreak:
			broken = true
			return breakFilter{}, true
		case rangeVal:
			if _, bad := x.from.(sqlBreak); bad {
				broken = true
				return breakFilter{}, true
			}
			return rangeFilter{field: field, rng: x}.withColumn(), true
		case []any:
			return valueFilter{field: field, want: x}, true
		}
		return valueFilter{field: field, want: val}, true
	}
	for _, field := range sortedKeys(plain) {
		f, ok := build(field, plain[field])
		if !ok {
			continue
		}
		if id, isID := f.(identFilter); isID {
			idents = append(idents, id)
		}
		fs = append(fs, f)
	}
	for _, field := range sortedKeys(nots) {
		if f, ok := build(field, nots[field]); ok {
			fs = append(fs, notFilter{f})
		}
	}
	if len(ors) > 0 {
		var alts []filter
		for _, field := range sortedKeys(ors) {
			if f, ok := build(field, ors[field]); ok {
				alts = append(alts, f)
			}
		}
		if len(alts) > 0 {
			fs = append(fs, orFilter{alts})
		}
	}
	for _, field := range sortedKeys(locs) {
		fs = append(fs, locFilter{field: field, codes: locs[field]})
	}
	return fs, idents, broken
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
