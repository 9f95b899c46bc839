package mapping

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/itchyny/gojq"
)

// Vars are the values a program may read besides its input. A program sees
// every name; an unset one is null. The order of varNames is the order of
// values passed to gojq, so the two must change together.
type Vars struct {
	Vars        map[string]any // deployment constants ($vars)
	Cursor      string         // the cursor the run started from ($cursor)
	Now         string         // the run's start time, RFC 3339 UTC ($now)
	Key         any            // the business key being looked up ($key)
	TargetID    any            // the target record id ($target_id)
	Target      any            // the target record as found ($target)
	Record      any            // the source record before mapping ($record)
	Payload     any            // the mapped payload ($payload)
	Response    any            // the write's response body ($response)
	Transaction any            // an asynchronous transaction id ($transaction)
	// Delivery is the webhook delivery a record came in ($delivery):
	// {id, event, query, headers, received}; null outside an inbox.
	Delivery any
	// Outcome is how the item ended so far ($outcome), for after-steps:
	// {action, reason, class, error}.
	Outcome any
	// Runtime carries the per-run services (live lookups) into the jq
	// helper functions; nil means only static lookups work.
	Runtime *Runtime
	// Notes collect the field-level notes (jq note($code)) of the item
	// being mapped; nil drops them.
	Notes *Notes
}

// varNames ends with the hidden ones ($__…), which only the prelude's
// helpers read.
var varNames = []string{"$vars", "$cursor", "$now", "$key", "$target_id", "$target", "$record", "$payload", "$response", "$transaction", "$delivery", "$outcome", "$__rt", "$__notes"}

// VarNames lists the variables every jq program may use (for docs and check).
func VarNames() []string {
	var out []string
	for _, n := range varNames {
		if !strings.HasPrefix(n, "$__") {
			out = append(out, n)
		}
	}
	return out
}

func (v *Vars) values() []any {
	out := make([]any, len(varNames))
	if v == nil {
		return out
	}
	for i, name := range varNames {
		out[i] = v.variable(name)
	}
	return out
}

// prelude defines the helpers that need the run's runtime; it is compiled in
// front of every program, so positions are taken from a separate parse of
// the user's text alone.
const prelude = `def lookup($n): __lookup($n; false; $__rt); def rlookup($n): __lookup($n; true; $__rt); def note($c): __note($c; $__notes); `

// JQ is a compiled jq program, safe for concurrent use.
type JQ struct {
	src  string
	code *gojq.Code
	// path is set for plain field paths such as ".a.b": they are the
	// bulk of every mapping and are evaluated without starting gojq, with
	// the same results (null through null, an error on a non-object).
	path []string
	// root is the variable a fast path starts from ("$record"), or ""
	// for the input; only the variables every program sees qualify.
	root string
	// then, when set, is applied to what the fast path yields: the
	// program is "PATH | ymd", "PATH | lookup(\"name\")" or the like.
	then *pathCall
	// pure: the program's value depends only on its input and variables,
	// and running it has no effect (see impure), so a mapping may reuse
	// one run for another field with the same program.
	pure bool
	// vars are the indexes in varNames of the variables the program is
	// compiled with: only those its text mentions, since gojq pushes
	// every declared variable on each run (14 cost more than the rest
	// of a short program).
	vars []int
	lim  Limits
	// defs is the text of the shared definitions (jq_defs) the program
	// was compiled with, for analyses that follow the helpers it calls.
	defs string
}

var simplePath = regexp.MustCompile(`^\s*(\$[a-z_]+)?((\.[A-Za-z_][A-Za-z0-9_]*)+)\s*$`)

// pathCall is a helper applied to a fast path's value: ymd, or lookup or
// rlookup of a named lookup, after an optional alternative for null
// ("(.a // \"\") | lookup(\"x\")").
type pathCall struct {
	reg     *Registry
	lookup  string // "" for ymd
	reverse bool
	alt     any // the alternative; nil when the program has none
}

var (
	pathThen = regexp.MustCompile(`^\s*(?:\(\s*([^()]*?)\s*//\s*"([A-Za-z0-9_ -]*)"\s*\)|([^()]*?))\s*\|\s*(?:ymd|(r?)lookup\(\s*"([A-Za-z0-9_]+)"\s*\))\s*$`)
	// callsHelper finds what pathThen's helpers are built from, so a
	// program that could define its own is left to gojq.
	helperNames = []string{"ymd", "lookup", "rlookup", "__lookup"}
)

// pathCallOf splits "PATH | helper" into the path and the call; the path
// is "" when src is not of that form or a shared definition the program
// reaches could redefine the helper.
func pathCallOf(src string, reg *Registry) (string, *pathCall) {
	m := pathThen.FindStringSubmatch(src)
	if m == nil {
		return "", nil
	}
	if reg != nil {
		for _, fd := range reg.defs {
			if slices.Contains(helperNames, fd.Name) {
				return "", nil
			}
		}
	}
	pc := &pathCall{reg: reg, lookup: m[5], reverse: m[4] == "r"}
	path := m[3]
	if m[1] != "" {
		path, pc.alt = m[1], m[2]
	}
	if pc.lookup != "" && reg == nil {
		return "", nil
	}
	return path, pc
}

// apply runs the helper on x, the path's value or error, as gojq would.
func (pc *pathCall) apply(x any, err error, v *Vars) (any, error) {
	if err != nil {
		// gojq's a // b does not catch a's error.
		return nil, err
	}
	if pc.alt != nil && (x == nil || x == false) {
		x = pc.alt
	}
	var out any
	if pc.lookup == "" {
		out = ymd(x)
	} else {
		var rt *Runtime
		if v != nil {
			rt = v.Runtime
		}
		out = pc.reg.lookupValue(x, pc.lookup, pc.reverse, rt)
	}
	if e, ok := out.(error); ok {
		return nil, cleanJQError(e)
	}
	return out, nil
}

// pathOf splits a plain field path (".a.b", or "$record.a.b" from one of
// the variables every program sees) into its root variable and keys; nil
// keys when src is anything else.
func pathOf(src string) (root string, keys []string) {
	m := simplePath.FindStringSubmatch(src)
	if m == nil || m[1] != "" && !publicVar(m[1]) {
		return "", nil
	}
	return m[1], strings.Split(m[2], ".")[1:]
}

func publicVar(name string) bool {
	return !strings.HasPrefix(name, "$__") && slices.Contains(varNames, name)
}

// variable is the value gojq is given for one of varNames: values()
// builds the whole list from it, a fast path reads one without the list.
func (v *Vars) variable(name string) any {
	if v == nil {
		return nil
	}
	switch name {
	case "$vars":
		if v.Vars == nil {
			return map[string]any{}
		}
		return v.Vars
	case "$cursor":
		return nilIfEmpty(v.Cursor)
	case "$now":
		return nilIfEmpty(v.Now)
	case "$key":
		return v.Key
	case "$target_id":
		return v.TargetID
	case "$target":
		return v.Target
	case "$record":
		return v.Record
	case "$payload":
		return v.Payload
	case "$response":
		return v.Response
	case "$transaction":
		return v.Transaction
	case "$delivery":
		return v.Delivery
	case "$outcome":
		return v.Outcome
	case "$__rt":
		if v.Runtime == nil {
			return nil // untyped, which gojq reads as null; a nil pointer it would not
		}
		return v.Runtime
	case "$__notes":
		if v.Notes == nil {
			return nil
		}
		return v.Notes
	}
	panic("mapping: no variable " + name)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// fast evaluates a program without gojq: a path, and the helper after it.
func (j *JQ) fast(input any, vars *Vars) (any, error) {
	x, err := j.walk(input, vars)
	if j.then == nil {
		return x, err
	}
	return j.then.apply(x, err, vars)
}

// walk evaluates a fast path from the input or its root variable.
func (j *JQ) walk(input any, vars *Vars) (any, error) {
	v := input
	if j.root != "" {
		v = vars.variable(j.root)
	}
	for _, k := range j.path {
		switch x := v.(type) {
		case nil:
			return nil, nil
		case map[string]any:
			v = x[k]
		default:
			return nil, fmt.Errorf("jq: expected an object but got: %s", TypeName(v))
		}
	}
	return v, nil
}

// SyntaxError is a jq or expr compile problem with its place inside the
// program text (1-based line and column; 0 when unknown).
type SyntaxError struct {
	Lang      string // "jq" or "expr"
	Line, Col int
	Msg       string
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.Lang, e.Line, e.Col, e.Msg)
	}
	return e.Lang + ": " + e.Msg
}

// preludeDefs is how many definitions the prelude holds: the shared
// definitions of a registry go after them, before a program's own.
var preludeDefs = func() int {
	q, err := gojq.Parse(prelude + ".")
	if err != nil {
		panic(err)
	}
	return len(q.FuncDefs)
}()

// parseJQ parses src alone, so a syntax error is placed inside src.
func parseJQ(src string) (*gojq.Query, error) {
	q, err := gojq.Parse(src)
	if err == nil {
		return q, nil
	}
	var pe *gojq.ParseError
	if errors.As(err, &pe) {
		off := pe.Offset - len(pe.Token)
		if off < 0 {
			off = 0
		}
		line, col := lineCol(src, off)
		return nil, &SyntaxError{Lang: "jq", Line: line, Col: col, Msg: fmt.Sprintf("unexpected token %q", pe.Token)}
	}
	return nil, &SyntaxError{Lang: "jq", Msg: err.Error()}
}

// withDefs is the program q (parsed with the prelude in front) with the
// registry's shared definitions between the prelude's and its own, so
// they may call lookup and the program may shadow them. The shared
// definitions' syntax trees are used, not copied: gojq's compiler only
// reads them.
func (r *Registry) withDefs(q *gojq.Query) *gojq.Query {
	if r == nil || len(r.defs) == 0 {
		return q
	}
	used := r.usedDefs(q)
	fds := make([]*gojq.FuncDef, 0, len(q.FuncDefs)+len(used))
	fds = append(fds, q.FuncDefs[:preludeDefs]...)
	fds = append(fds, used...)
	q.FuncDefs = append(fds, q.FuncDefs[preludeDefs:]...)
	return q
}

// usedDefs are the shared definitions a program can reach: those whose
// name its text mentions, and, in turn, those their bodies mention. gojq
// compiles every definition it is given, so handing each of a plan's
// hundreds of programs the whole block multiplied the plan's memory (a
// sync of specs/cambodia peaked at 98 MB instead of 55); a name that
// merely appears in a string only adds a definition, never drops one.
func (r *Registry) usedDefs(q *gojq.Query) []*gojq.FuncDef {
	text := q.String()
	keep := make([]bool, len(r.defs))
	texts := []string{text}
	for len(texts) > 0 {
		t := texts[len(texts)-1]
		texts = texts[:len(texts)-1]
		for i, fd := range r.defs {
			if !keep[i] && mentioned(t, fd.Name) {
				keep[i] = true
				texts = append(texts, fd.String())
			}
		}
	}
	var out []*gojq.FuncDef
	for i, fd := range r.defs {
		if keep[i] {
			out = append(out, fd)
		}
	}
	return out
}

// trimPrelude drops the prelude's helpers that q (the prelude's, the
// shared and its own definitions, and its body) does not call, since gojq
// compiles every definition it is given and each helper reads a hidden
// variable, then returns the variables the rest mentions. A name merely
// mentioned (in a string, or a variable the program binds itself) only
// adds a variable, never drops one a program reads.
func trimPrelude(q *gojq.Query) ([]int, bool) {
	prelude := q.FuncDefs[:preludeDefs]
	rest := *q
	rest.FuncDefs = q.FuncDefs[preludeDefs:]
	text := rest.String()
	kept := make([]*gojq.FuncDef, 0, preludeDefs+len(rest.FuncDefs))
	for _, fd := range prelude {
		if mentioned(text, fd.Name) {
			kept = append(kept, fd)
			text += fd.String()
		}
	}
	q.FuncDefs = append(kept, rest.FuncDefs...)
	var vars []int
	for i, name := range varNames {
		if mentioned(text, name[1:]) && strings.Contains(text, name) {
			vars = append(vars, i)
		}
	}
	pure := !slices.ContainsFunc(impure, func(name string) bool { return mentioned(text, name) })
	return vars, pure
}

// impure are what makes two runs of a program on the same input and
// variables differ, or be seen: the prelude's helpers (a lookup counts its
// misses, note records a code), the functions behind them, and gojq's own
// clock, input and output builtins.
var impure = []string{"lookup", "rlookup", "note", "__lookup", "__note", "__rt", "__notes",
	"now", "input", "inputs", "input_line_number", "input_filename", "debug", "stderr", "halt", "halt_error"}

func varsOf(idx []int) []string {
	names := make([]string, len(idx))
	for i, x := range idx {
		names[i] = varNames[x]
	}
	return names
}

// mentioned reports whether name occurs in s as a whole jq identifier.
func mentioned(s, name string) bool {
	for i := strings.Index(s, name); i >= 0; {
		end := i + len(name)
		if (i == 0 || !jqIdentByte(s[i-1])) && (end == len(s) || !jqIdentByte(s[end])) {
			return true
		}
		next := strings.Index(s[i+1:], name)
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return false
}

// jqIdentByte reports bytes that may continue a jq function name.
func jqIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// AddDefs parses src, a block of jq definitions (def name: body; …),
// checks that it compiles with the helpers and the definitions added
// before it, and makes its definitions callable from every program
// compiled with r afterwards. An error is a *SyntaxError placed inside
// src, or an *UnknownLookupError; nothing is added then.
func (r *Registry) AddDefs(src string) error {
	// A block is definitions only; "." stands for the body it lacks.
	q, err := parseJQ(src + "\n.")
	if err != nil {
		var se *SyntaxError
		if errors.As(err, &se) && byteOffsetOf(src+"\n.", se.Line, se.Col) >= len(src) {
			se.Line, se.Col = lineCol(src, len(strings.TrimRight(src, " \t\n")))
			se.Msg = "shared jq definitions hold only definitions (def name: body;), each ended by ;"
		}
		return err
	}
	if q.Op != 0 || q.Term == nil || q.Term.Type != gojq.TermTypeIdentity || len(q.FuncDefs) == 0 {
		line, col := lineCol(src, 0)
		return &SyntaxError{Lang: "jq", Line: line, Col: col, Msg: "shared jq definitions hold only definitions (def name: body;), each ended by ;"}
	}
	for _, name := range lookupNames(src) {
		if !r.Has(name) {
			return &UnknownLookupError{Name: name}
		}
	}
	full, err := gojq.Parse(prelude + ".")
	if err != nil {
		return err
	}
	// The block's own definitions go in first, so the earlier blocks they
	// call are found and placed before them.
	full.FuncDefs = append(full.FuncDefs, q.FuncDefs...)
	full = r.withDefs(full)
	if _, err := gojq.Compile(full, jqOptions(r)...); err != nil {
		return &SyntaxError{Lang: "jq", Msg: err.Error()}
	}
	r.defs = append(r.defs, q.FuncDefs...)
	r.defsText += src + "\n"
	return nil
}

// byteOffsetOf is the byte offset of a 1-based line and column in src.
func byteOffsetOf(src string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(src[off:], '\n')
		if i < 0 {
			return len(src)
		}
		off += i + 1
	}
	return min(off+col-1, len(src))
}

// CompileJQ parses and compiles src with the helper functions and the
// shared definitions of reg.
func CompileJQ(src string, reg *Registry) (*JQ, error) {
	if _, err := parseJQ(src); err != nil {
		return nil, err
	}
	q, err := gojq.Parse(prelude + src)
	if err != nil {
		return nil, &SyntaxError{Lang: "jq", Msg: err.Error()}
	}
	q = reg.withDefs(q)
	vars, pure := trimPrelude(q)
	code, err := gojq.Compile(q, append(jqOptions(reg), gojq.WithVariables(varsOf(vars)))...)
	if err != nil {
		return nil, &SyntaxError{Lang: "jq", Msg: err.Error()}
	}
	if reg != nil {
		for _, name := range lookupNames(src) {
			if !reg.Has(name) {
				return nil, &UnknownLookupError{Name: name}
			}
		}
	}
	j := &JQ{src: src, code: code, vars: vars, pure: pure, lim: reg.limitsOf()}
	j.root, j.path = pathOf(src)
	if j.path == nil {
		if p, then := pathCallOf(src, reg); then != nil {
			if j.root, j.path = pathOf(p); j.path != nil {
				j.then = then
			}
		}
	}
	if reg != nil {
		j.defs = reg.defsText
	}
	return j, nil
}

// MustJQ compiles src or panics; for init-time programs only.
func MustJQ(src string) *JQ {
	j, err := CompileJQ(src, nil)
	if err != nil {
		panic(err)
	}
	return j
}

// UnknownLookupError names a lookup a program calls that the spec lacks.
type UnknownLookupError struct{ Name string }

func (e *UnknownLookupError) Error() string { return fmt.Sprintf("unknown lookup %q", e.Name) }

// Source is the program as compiled: the shared definitions it may call
// in front of its own text. Analyses of what a program reads (fields,
// lookups) follow its helpers through it; String is what was written.
func (j *JQ) Source() string {
	if j == nil || j.defs == "" {
		return j.String()
	}
	return j.defs + j.src
}

// Limits are the evaluation limits the program was compiled with.
func (j *JQ) Limits() Limits { return j.lim }

// Defs is the text of the shared definitions the program was compiled
// with ("" for none); Source is Defs followed by String.
func (j *JQ) Defs() string {
	if j == nil {
		return ""
	}
	return j.defs
}

// String returns the program text.
func (j *JQ) String() string {
	if j == nil {
		return ""
	}
	return j.src
}

// All runs the program and returns every value it yields.
func (j *JQ) All(ctx context.Context, input any, v *Vars) ([]any, error) {
	return j.all(ctx, input, &varValues{v: v})
}

// varValues gives the variables' values to every program of one mapping,
// built once (when the first needs gojq) rather than once per program.
type varValues struct {
	v    *Vars
	vals []any
	// same is the Mapping's pairing of fields with one pure program, for
	// the top-level fields; last is the raw value of the last jq program
	// a field ran (before its default).
	same []int
	last any
}

func (b *varValues) values() []any {
	if b.vals == nil {
		b.vals = b.v.values()
	}
	return b.vals
}

// run starts the program with the values of the variables it declares.
func (j *JQ) run(ctx context.Context, input any, b *varValues) gojq.Iter {
	all := b.values()
	var buf [16]any
	vals := buf[:0]
	for _, i := range j.vars {
		vals = append(vals, all[i])
	}
	return j.code.RunWithContext(ctx, input, vals...)
}

func (j *JQ) all(ctx context.Context, input any, b *varValues) ([]any, error) {
	if j.path != nil {
		x, err := j.fast(input, b.v)
		if err != nil {
			return nil, err
		}
		return []any{x}, nil
	}
	ectx, cancel := j.lim.bounded(ctx)
	defer cancel()
	iter := j.run(ectx, input, b)
	var out []any
	for {
		x, ok := iter.Next()
		if !ok {
			return out, nil
		}
		if err, isErr := x.(error); isErr {
			var he *gojq.HaltError
			if errors.As(err, &he) && he.Value() == nil {
				return out, nil
			}
			return nil, j.evalError(ectx, err)
		}
		if tooLarge(x, j.lim.maxBytes()) {
			return nil, j.tooLargeError()
		}
		out = append(out, x)
	}
}

// One runs the program and requires exactly one value: none or several is
// an error, never "take the first".
func (j *JQ) One(ctx context.Context, input any, v *Vars) (any, error) {
	return j.one(ctx, input, &varValues{v: v})
}

func (j *JQ) one(ctx context.Context, input any, b *varValues) (any, error) {
	if j.path != nil {
		return j.fast(input, b.v)
	}
	ectx, cancel := j.lim.bounded(ctx)
	defer cancel()
	iter := j.run(ectx, input, b)
	var out any
	n := 0
	for {
		x, ok := iter.Next()
		if !ok {
			break
		}
		if err, isErr := x.(error); isErr {
			var he *gojq.HaltError
			if errors.As(err, &he) && he.Value() == nil {
				break
			}
			return nil, j.evalError(ectx, err)
		}
		n++
		if n > 1 {
			return nil, fmt.Errorf("jq yielded more than one value")
		}
		if tooLarge(x, j.lim.maxBytes()) {
			return nil, j.tooLargeError()
		}
		out = x
	}
	if n == 0 {
		return nil, fmt.Errorf("jq yielded no value")
	}
	return out, nil
}

// evalError is an evaluation's error: the limit it hit, or what
// cleanJQError keeps of it.
func (j *JQ) evalError(ctx context.Context, err error) error {
	if timedOut(ctx, err) {
		return &EvalError{Reason: ReasonEvalTimeout, Lang: "jq", Limit: j.lim.timeout().String()}
	}
	return cleanJQError(err)
}

func (j *JQ) tooLargeError() error {
	return &EvalError{Reason: ReasonEvalTooLarge, Lang: "jq", Limit: fmt.Sprintf("%d bytes", j.lim.maxBytes())}
}

// cleanJQError keeps our typed errors and drops record content from gojq's
// messages: its type errors preview the offending value, which may be a
// child's name.
func cleanJQError(err error) error {
	var miss *MissError
	if errors.As(err, &miss) {
		return miss
	}
	var skip *SkipError
	if errors.As(err, &skip) {
		return skip
	}
	var fail *FailError
	if errors.As(err, &fail) {
		return fail
	}
	var lerr *LookupError
	if errors.As(err, &lerr) {
		return lerr
	}
	var ee *EvalError
	if errors.As(err, &ee) {
		return ee
	}
	msg := err.Error()
	if j := strings.Index(msg, " ("); j > 0 && strings.HasSuffix(msg, ")") {
		msg = msg[:j]
	}
	return errors.New("jq: " + msg)
}

func lineCol(src string, off int) (int, int) {
	if off > len(src) {
		off = len(src)
	}
	line, col := 1, 1
	for _, r := range src[:off] {
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
