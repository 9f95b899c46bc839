package mapping

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/itchyny/gojq"
)

// OnMiss is what a lookup does when a key has no entry.
type OnMiss string

// The behaviours a spec may declare for a miss.
const (
	MissFail    OnMiss = "fail"
	MissNull    OnMiss = "null"
	MissSkip    OnMiss = "skip"
	MissDefault OnMiss = "default"
)

// MissError is a lookup miss with on_miss "fail": the record fails with it.
type MissError struct {
	Lookup string
	// KeyHash identifies the key without writing it out (keys may be
	// personal data such as a national id); Key is kept for dry-run only.
	Key string
}

func (e *MissError) Error() string {
	return fmt.Sprintf("lookup %s: no entry for key %q", e.Lookup, e.Key)
}

// SkipError asks the runner to skip the record (on_miss "skip").
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skip: " + e.Reason }

// LookupError is a lookup that could not be answered (a live API failed).
type LookupError struct {
	Lookup string
	Err    error
}

func (e *LookupError) Error() string { return fmt.Sprintf("lookup %s: %v", e.Lookup, e.Err) }
func (e *LookupError) Unwrap() error { return e.Err }

// Resolver answers live (API) lookups. The runner provides one per run.
type Resolver interface {
	Resolve(ctx context.Context, lookup string, key string) (any, bool, error)
}

// Lookup is one named lookup: a table, a rule or a live API lookup.
type Lookup struct {
	Name            string
	OnMiss          OnMiss
	Default         any
	CaseInsensitive bool

	table   map[string]any
	reverse map[string]string
	// rule: forward "agency-{org}" → prefix "agency-", suffix "".
	ruleSet        bool
	prefix, suffix string
	api            bool
}

// NewTable returns a lookup over rows. Duplicate keys must be rejected by
// the caller (with their positions) before this is called.
func NewTable(name string, rows map[string]any, ci bool, onMiss OnMiss, def any) *Lookup {
	l := &Lookup{Name: name, OnMiss: onMiss, Default: def, CaseInsensitive: ci, table: map[string]any{}, reverse: map[string]string{}}
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a value shared by two keys reverses to the first, every time
	for _, k := range keys {
		v := rows[k]
		l.table[l.fold(k)] = v
		if s, ok := v.(string); ok {
			if _, dup := l.reverse[l.fold(s)]; !dup {
				l.reverse[l.fold(s)] = k
			}
		}
	}
	return l
}

var ruleVar = regexp.MustCompile(`\{[a-z_]+\}`)

// NewRule returns a naming-rule lookup such as "agency-{org}": forward adds
// the prefix and suffix, reverse strips them.
func NewRule(name, forward string, onMiss OnMiss, def any) (*Lookup, error) {
	locs := ruleVar.FindAllStringIndex(forward, -1)
	if len(locs) != 1 {
		return nil, fmt.Errorf("rule %q must hold exactly one {name} placeholder", forward)
	}
	return &Lookup{Name: name, OnMiss: onMiss, Default: def, ruleSet: true,
		prefix: forward[:locs[0][0]], suffix: forward[locs[0][1]:]}, nil
}

// NewAPI returns a lookup answered at run time by the run's Resolver.
func NewAPI(name string, onMiss OnMiss, def any) *Lookup {
	return &Lookup{Name: name, OnMiss: onMiss, Default: def, api: true}
}

// Len is the number of table entries (0 for rules and API lookups).
func (l *Lookup) Len() int { return len(l.table) }

func (l *Lookup) fold(s string) string {
	if l.CaseInsensitive {
		return strings.ToLower(s)
	}
	return s
}

// Get resolves key. A miss follows OnMiss: an error for fail and skip, the
// default or null otherwise.
func (l *Lookup) Get(ctx context.Context, rt *Runtime, key any, reverse bool) (any, error) {
	if key == nil {
		return l.miss(rt, "")
	}
	k := keyString(key)
	if k == "" {
		return l.miss(rt, k)
	}
	switch {
	case l.ruleSet:
		if !reverse {
			return l.prefix + k + l.suffix, nil
		}
		if strings.HasPrefix(k, l.prefix) && strings.HasSuffix(k, l.suffix) && len(k) > len(l.prefix)+len(l.suffix) {
			return k[len(l.prefix) : len(k)-len(l.suffix)], nil
		}
		return l.miss(rt, k)
	case l.api:
		if rt == nil || rt.Resolver == nil {
			return nil, &LookupError{Lookup: l.Name, Err: fmt.Errorf("live lookup unavailable here")}
		}
		v, ok, err := rt.Resolver.Resolve(ctx, l.Name, k)
		if err != nil {
			return nil, &LookupError{Lookup: l.Name, Err: err}
		}
		if !ok {
			return l.miss(rt, k)
		}
		return v, nil
	}
	if reverse {
		if v, ok := l.reverse[l.fold(k)]; ok {
			return v, nil
		}
		return l.miss(rt, k)
	}
	if v, ok := l.table[l.fold(k)]; ok {
		return v, nil
	}
	return l.miss(rt, k)
}

func (l *Lookup) miss(rt *Runtime, k string) (any, error) {
	rt.miss(l.Name, string(l.OnMiss))
	switch l.OnMiss {
	case MissNull:
		return nil, nil
	case MissDefault:
		return l.Default, nil
	case MissSkip:
		return nil, &SkipError{Reason: "lookup_miss_" + l.Name}
	}
	return nil, &MissError{Lookup: l.Name, Key: k}
}

func keyString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// Registry holds a plan's lookups by name.
type Registry struct {
	m map[string]*Lookup
	// limits bound the evaluations of programs compiled with it.
	limits Limits
	// defs are the deployment's shared jq definitions (AddDefs), parsed
	// once and compiled into every program that follows.
	defs     []*gojq.FuncDef
	defsText string
}

// NewRegistry returns an empty registry with the default limits.
func NewRegistry() *Registry {
	return &Registry{m: map[string]*Lookup{}, limits: Limits{Timeout: DefaultEvalTimeout, MaxBytes: DefaultEvalMaxBytes}}
}

// Add registers l under its name.
func (r *Registry) Add(l *Lookup) { r.m[l.Name] = l }

// Has reports whether name is registered.
func (r *Registry) Has(name string) bool {
	if r == nil {
		return false
	}
	_, ok := r.m[name]
	return ok
}

// Get returns the lookup called name.
func (r *Registry) Get(name string) (*Lookup, bool) {
	if r == nil {
		return nil, false
	}
	l, ok := r.m[name]
	return l, ok
}

// Names lists the registered lookups, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.m))
	for k := range r.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Runtime is the per-run context jq helper functions reach through the
// hidden $__rt variable, whose value is the *Runtime itself: gojq functions
// see only their arguments, so the run's context, its live-lookup resolver
// and its miss counts travel as one. A plan holds no run's state.
type Runtime struct {
	Ctx      context.Context
	Resolver Resolver

	mu       sync.Mutex
	misses   map[string]int
	byPolicy map[string]int // "lookup:policy"
}

// NewRuntime returns a run's runtime.
func NewRuntime(ctx context.Context, res Resolver) *Runtime {
	return &Runtime{Ctx: ctx, Resolver: res}
}

// Misses returns this run's lookup misses by lookup name.
func (rt *Runtime) Misses() map[string]int {
	out := map[string]int{}
	if rt == nil {
		return out
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for k, v := range rt.misses {
		out[k] = v
	}
	return out
}

func (rt *Runtime) miss(name, policy string) {
	if rt == nil {
		return
	}
	rt.mu.Lock()
	if rt.misses == nil {
		rt.misses, rt.byPolicy = map[string]int{}, map[string]int{}
	}
	rt.misses[name]++
	if policy == "" {
		policy = "fail"
	}
	rt.byPolicy[name+":"+policy]++
	rt.mu.Unlock()
}

// MissesByPolicy returns this run's lookup misses keyed "lookup:policy"
// (fail, null, skip, default): every miss, whatever its policy, so a miss
// that sent null or a default is counted as surely as one that failed.
func (rt *Runtime) MissesByPolicy() map[string]int {
	if rt == nil {
		return nil
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if len(rt.byPolicy) == 0 {
		return nil
	}
	out := make(map[string]int, len(rt.byPolicy))
	for k, v := range rt.byPolicy {
		out[k] = v
	}
	return out
}

func runtimeOf(v any) *Runtime {
	rt, _ := v.(*Runtime)
	return rt
}

var lookupCall = regexp.MustCompile(`\br?lookup\(\s*"([^"]*)"`)

func lookupNames(src string) []string {
	var out []string
	for _, m := range lookupCall.FindAllStringSubmatch(src, -1) {
		out = append(out, m[1])
	}
	return out
}
