package engine

import (
	"context"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/itchyny/gojq"

	"casesync/engine/mapping"
)

// Sensitivity classes a deployment gives the fields it moves (its
// sensitivity block, with defaults from the shared lib). They drive
// dry-run's --redact-pii, keep classified values out of errors and logs,
// and feed the data-sharing manifest.
const (
	ClassPII        = "pii"        // names, dates of birth, phones, addresses, national ids
	ClassHealth     = "health"     // diagnoses, lab results
	ClassProtection = "protection" // protection concerns, case notes
	ClassNone       = "none"       // declared not personal
)

// classRank orders classes for a field reading several sources: the most
// sensitive one names it.
var classRank = map[string]int{ClassPII: 1, ClassProtection: 2, ClassHealth: 3}

// FieldClass is the class of a named field ("" when unclassified or
// declared none).
func (p *Plan) FieldClass(name string) string {
	c := p.Spec.Sensitivity[name]
	if c == ClassNone {
		return ""
	}
	return c
}

// Declared reports whether the deployment classifies name at all (none
// included).
func (p *Plan) Declared(name string) bool {
	_, ok := p.Spec.Sensitivity[name]
	return ok
}

// MapFieldClass is the class of a mapped field: its own name's, else the
// most sensitive class among the source fields its program reads; via
// names the field the class comes from.
func (p *Plan) MapFieldClass(f mapping.Field) (class, via string) {
	if p.Declared(f.Name) {
		return p.FieldClass(f.Name), f.Name
	}
	for _, s := range SourceFields(f.Value) {
		if c := p.FieldClass(s); classRank[c] > classRank[class] {
			class, via = c, s
		}
	}
	return class, via
}

// fieldRef finds the field names a jq or expr program reads: .name and
// record.name alike. Reading the text rather than the syntax tree also
// catches fields inside string interpolation, and a false match only adds
// a name to check.
var fieldRef = regexp.MustCompile(`\.([A-Za-z_][A-Za-z0-9_]*)`)

// varRef is a deployment constant ($vars.x, vars.x): not a source field.
var varRef = regexp.MustCompile(`\$?\bvars\.[A-Za-z_][A-Za-z0-9_]*`)

// JQText is the text of a jq program that runs for its input: its main
// body and the helpers it calls, directly or through other helpers. A
// shared definitions (jq_defs) hold many helpers that read
// fields and call lookups a given program never uses; those are left out.
func JQText(src string) string {
	q, err := gojq.Parse(src)
	if err != nil {
		return src
	}
	defs := map[string]*gojq.FuncDef{}
	for _, d := range q.FuncDefs {
		defs[d.Name] = d
	}
	q.FuncDefs = nil
	return reachable(q, func(name string) *gojq.FuncDef { return defs[name] })
}

// jqTextOf is JQText(j.Source()), with the shared definitions parsed once
// per deployment rather than once per program: a spec load checked every
// mapped field this way, and parsing the whole jq_defs block for each was
// most of what the load allocated.
func jqTextOf(j *mapping.JQ) string {
	q, err := gojq.Parse(j.String())
	if err != nil || j.Defs() == "" {
		return JQText(j.Source())
	}
	shared := sharedDefs(j.Defs())
	if shared == nil {
		return JQText(j.Source())
	}
	own := map[string]*gojq.FuncDef{}
	for _, d := range q.FuncDefs {
		own[d.Name] = d
	}
	q.FuncDefs = nil
	return reachable(q, func(name string) *gojq.FuncDef {
		if d, ok := own[name]; ok {
			return d
		}
		return shared[name]
	})
}

var sharedDefsCache sync.Map // jq_defs text → map[string]*gojq.FuncDef

// sharedDefs parses a deployment's shared definitions by name; nil when
// they do not parse on their own.
func sharedDefs(text string) map[string]*gojq.FuncDef {
	if m, ok := sharedDefsCache.Load(text); ok {
		return m.(map[string]*gojq.FuncDef)
	}
	q, err := gojq.Parse(text + " .")
	if err != nil {
		return nil
	}
	m := map[string]*gojq.FuncDef{}
	for _, d := range q.FuncDefs {
		m[d.Name] = d
	}
	sharedDefsCache.Store(text, m)
	return m
}

// reachable writes q's body and every definition it reaches through def.
func reachable(q *gojq.Query, def func(string) *gojq.FuncDef) string {
	var b strings.Builder
	seen := map[string]bool{}
	queue := []string{q.String()}
	for len(queue) > 0 {
		t := queue[0]
		queue = queue[1:]
		b.WriteString(t)
		b.WriteString("\n")
		for _, name := range identRef.FindAllString(t, -1) {
			if d := def(name); d != nil && !seen[name] {
				seen[name] = true
				queue = append(queue, d.Body.String())
			}
		}
	}
	return b.String()
}

var identRef = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)

// SourceFields lists, sorted, the field names a mapped value's programs
// read (nested fields and each-maps included).
func SourceFields(v *mapping.Value) []string {
	seen := map[string]bool{}
	var walk func(v *mapping.Value)
	walk = func(v *mapping.Value) {
		if v == nil {
			return
		}
		var srcs []string
		if v.JQ != nil {
			srcs = append(srcs, jqTextOf(v.JQ))
		}
		if v.Expr != nil {
			srcs = append(srcs, v.Expr.String())
		}
		if v.Each != nil {
			srcs = append(srcs, jqTextOf(v.Each))
		}
		for _, s := range srcs {
			s = varRef.ReplaceAllString(s, "")
			for _, m := range fieldRef.FindAllStringSubmatch(s, -1) {
				seen[m[1]] = true
			}
		}
		for _, f := range v.Fields {
			walk(f.Value)
		}
		for _, f := range v.Map {
			walk(f.Value)
		}
	}
	walk(v)
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Class-bearing names: field names that usually hold personal data. A
// field whose name (or a source field it reads) looks like one of these
// and that the deployment does not classify is an engine check warning.
var classBearing = []struct {
	class string
	re    *regexp.Regexp
}{
	{ClassHealth, regexp.MustCompile(`(?i)(diagnos|lab_result|medical|medication|hiv|treatment|disabilit|pregnan|mental_health|health_)`)},
	{ClassProtection, regexp.MustCompile(`(?i)(protection_concern|protection_status|abuse|violence|gbv|trafficking|notes?$|_notes|narrative|risk_factor|sexual)`)},
	{ClassPII, regexp.MustCompile(`(?i)(_name$|^name_|given|surname|nickname|birth|dob$|^age$|_age$|^sex$|gender|phone|mobile|address|location|village|email|national_id|id_card|passport|individual_no|ration_card|nationality|ethnicity|religion|language|caregiver|father|mother)`)},
}

// Some *_name fields name things, not people.
var notPersonal = regexp.MustCompile(`(?i)(organi[sz]ation|agency|service|module|form|file|type|status|user_name|owned_by|caseworker|case_worker|field|lookup)`)

// ClassBearing reports the class a field name suggests, "" for none.
func ClassBearing(name string) string {
	if notPersonal.MatchString(name) {
		return ""
	}
	for _, cb := range classBearing {
		if cb.re.MatchString(name) {
			return cb.class
		}
	}
	return ""
}

// Scrubber removes a record's classified values from text (errors, log
// lines). Classified values are collected from every field of the record
// whose name the deployment classifies, when the scrubber is first used:
// most records end with no error and log no line to clean, and walking
// each record up front was a few percent of a sync's CPU. The record must
// not change while another goroutine may use the scrubber (the stages
// add to a record only before they hand out its scrubber or context).
type Scrubber struct {
	plan *Plan
	rec  any
	once sync.Once
	vals []scrubVal
}

type scrubVal struct{ val, class string }

// minScrub is the shortest value scrubbed: shorter ones ("F", "12") would
// mangle codes and numbers in the message without protecting anyone.
const minScrub = 3

var separators = strings.NewReplacer("-", "", " ", "", ".", "", "/", "")

// Scrubber returns the scrubber of rec's classified values; nil when the
// deployment classifies nothing.
func (p *Plan) Scrubber(rec any) *Scrubber {
	if len(p.Spec.Sensitivity) == 0 {
		return nil
	}
	return &Scrubber{plan: p, rec: rec}
}

// collect gathers the record's classified values, longest first.
func (s *Scrubber) collect() {
	p := s.plan
	var walk func(name string, v any, depth int)
	walk = func(name string, v any, depth int) {
		if depth > 8 {
			return
		}
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(k, e, depth+1)
			}
		case []any:
			for _, e := range x {
				walk(name, e, depth+1)
			}
		case string:
			if c := p.FieldClass(name); c != "" && len(x) >= minScrub {
				s.vals = append(s.vals, scrubVal{x, c})
				// An id is often sent without its separators
				// (1-1037-00012-34-5 as 1103700012345 in a query).
				if bare := separators.Replace(x); bare != x && len(bare) >= 6 {
					s.vals = append(s.vals, scrubVal{bare, c})
				}
			}
		}
	}
	walk("", s.rec, 0)
	s.rec = nil
	// Longest first, so a full name goes before the given name inside it.
	sort.Slice(s.vals, func(i, j int) bool { return len(s.vals[i].val) > len(s.vals[j].val) })
}

// String returns text with every classified value replaced by its class
// in brackets ("[pii]").
func (s *Scrubber) String(text string) string {
	if s == nil || text == "" {
		return text
	}
	s.once.Do(s.collect)
	for _, v := range s.vals {
		if strings.Contains(text, v.val) {
			text = strings.ReplaceAll(text, v.val, "["+v.class+"]")
		}
	}
	return text
}

// scrubbers holds the scrubber of each record in flight, by source key,
// so an outcome's error is cleaned wherever in the stages it was made.
type scrubbers struct{ m sync.Map }

func (s *scrubbers) put(key string, sc *Scrubber) {
	if sc != nil {
		s.m.Store(key, sc)
	}
}

func (s *scrubbers) drop(key string) { s.m.Delete(key) }

// clean scrubs text with the scrubber of the record recordKey belongs to.
func (s *scrubbers) clean(recordKey, text string) string {
	if text == "" {
		return text
	}
	src, _, _ := strings.Cut(recordKey, "#")
	if v, ok := s.m.Load(src); ok {
		return v.(*Scrubber).String(text)
	}
	return text
}

type scrubberKey struct{}

// WithScrubber returns ctx carrying the scrubber of the record being
// processed: every log line written with that context (the connectors'
// request and retry lines included) is cleaned of the record's classified
// values by ScrubLogger.
func WithScrubber(ctx context.Context, s *Scrubber) context.Context {
	if s == nil {
		return ctx
	}
	return context.WithValue(ctx, scrubberKey{}, s)
}

// ScrubberFrom returns the scrubber ctx carries, nil when none.
func ScrubberFrom(ctx context.Context) *Scrubber {
	if ctx == nil {
		return nil
	}
	s, _ := ctx.Value(scrubberKey{}).(*Scrubber)
	return s
}

// ScrubLogger wraps l so that a log line written with a record's context
// carries none of that record's classified values: a request path with a
// national id in its query logs the id as [pii].
func ScrubLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return nil
	}
	if _, done := l.Handler().(scrubHandler); done {
		return l
	}
	return slog.New(scrubHandler{l.Handler()})
}

type scrubHandler struct{ h slog.Handler }

func (s scrubHandler) Enabled(ctx context.Context, l slog.Level) bool { return s.h.Enabled(ctx, l) }

func (s scrubHandler) Handle(ctx context.Context, r slog.Record) error {
	sc := ScrubberFrom(ctx)
	if sc == nil {
		return s.h.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, sc.String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(scrubAttr(sc, a))
		return true
	})
	return s.h.Handle(ctx, out)
}

func (s scrubHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return scrubHandler{s.h.WithAttrs(as)}
}

func (s scrubHandler) WithGroup(name string) slog.Handler { return scrubHandler{s.h.WithGroup(name)} }

func scrubAttr(sc *Scrubber, a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, sc.String(v.String()))
	case slog.KindGroup:
		as := v.Group()
		out := make([]any, len(as))
		for i, x := range as {
			out[i] = scrubAttr(sc, x)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, sc.String(err.Error()))
		}
	}
	return a
}
