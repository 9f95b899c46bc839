package spectest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/tools/txtar"
)

// Test is one parsed test file.
type Test struct {
	Path     string
	Pipeline string
	Now      time.Time
	Records  []any
	Answers  []*Answer
	Targets  map[string]any // business key → the target's current record
	// Deliveries are the webhook deliveries records came in, by source
	// record key ({id, event, query, headers}).
	Deliveries map[string]any
	// Tables are lookups loaded whole (a SQL select): name → key → value.
	Tables map[string]map[string]any
	// Expect holds the expected outcome per source record key, as written.
	Expect map[string][]byte
	// ExpectLine is the line of each expect section's header.
	ExpectLine map[string]int
	archive    *txtar.Archive
}

// Answer is one canned answer of a remote system.
type Answer struct {
	Method  string
	Pattern string // the path template as written, query included
	path    *regexp.Regexp
	query   map[string]*regexp.Regexp
	// literal counts the pattern's fixed characters: the most specific
	// pattern wins.
	literal int
	Status  int
	Body    any
	Line    int
	used    int
}

// DefaultNow is a test's $now when it names none: fixed, so expectations
// that read the run's time do not change from one day to the next.
var DefaultNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Problem is something wrong with a test file, at its line.
type Problem struct {
	File string
	Line int
	Msg  string
}

func (p Problem) Error() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg) }

// ParseFile reads and parses a test file.
func ParseFile(path string) (*Test, []Problem) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, []Problem{{File: path, Msg: err.Error()}}
	}
	return Parse(path, b)
}

// Parse parses a test file's text; every problem is reported with its line.
func Parse(path string, data []byte) (*Test, []Problem) {
	ar := txtar.Parse(data)
	t := &Test{Path: path, Now: DefaultNow, Targets: map[string]any{}, Tables: map[string]map[string]any{}, Deliveries: map[string]any{}, Expect: map[string][]byte{}, ExpectLine: map[string]int{}, archive: ar}
	var ps []Problem
	bad := func(line int, format string, args ...any) {
		ps = append(ps, Problem{File: path, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	for i, ln := range strings.Split(string(ar.Comment), "\n") {
		k, v, ok := strings.Cut(ln, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "pipeline":
			t.Pipeline = v
		case "now":
			at, err := time.Parse(time.RFC3339, v)
			if err != nil {
				bad(i+1, "now: %q is not an RFC 3339 time such as 2026-01-01T00:00:00Z", v)
				continue
			}
			t.Now = at.UTC()
		}
	}
	if t.Pipeline == "" {
		bad(1, "no \"pipeline: NAME\" line before the first section")
	}
	lines := sectionLines(data)
	haveSource := false
	for i, f := range ar.Files {
		line := lines[i]
		kind, rest, _ := strings.Cut(strings.TrimSpace(f.Name), " ")
		rest = strings.TrimSpace(rest)
		switch kind {
		case "source.json":
			haveSource = true
			v, err := decode(f.Data)
			if err != nil {
				bad(line, "source.json: %v", err)
				continue
			}
			switch x := v.(type) {
			case []any:
				t.Records = x
			case map[string]any:
				t.Records = []any{x}
			default:
				bad(line, "source.json: want an array of records or one record object")
			}
		case "answer":
			a, err := parseAnswer(rest, f.Data)
			if err != nil {
				bad(line, "answer %s: %v", rest, err)
				continue
			}
			a.Line = line
			t.Answers = append(t.Answers, a)
		case "target":
			if rest == "" {
				bad(line, "target: name the business key: -- target KEY --")
				continue
			}
			v, err := decode(f.Data)
			if err != nil {
				bad(line, "target %s: %v", rest, err)
				continue
			}
			t.Targets[rest] = v
		case "delivery":
			v, err := decode(f.Data)
			if _, ok := v.(map[string]any); err != nil || !ok || rest == "" {
				bad(line, "delivery %s: want -- delivery KEY -- and a JSON object such as {\"event\": \"case.post\"}", rest)
				continue
			}
			t.Deliveries[rest] = v
		case "table":
			v, err := decode(f.Data)
			rows, ok := v.(map[string]any)
			if err != nil || !ok || rest == "" {
				bad(line, "table %s: want -- table NAME -- and a JSON object of key → value", rest)
				continue
			}
			t.Tables[rest] = rows
		case "expect":
			if rest == "" {
				bad(line, "expect: name the source record key: -- expect KEY --")
				continue
			}
			if _, dup := t.Expect[rest]; dup {
				bad(line, "expect %s: a second expectation for the same record", rest)
				continue
			}
			if len(bytes.TrimSpace(f.Data)) > 0 {
				var e Expect
				if err := strictJSON(f.Data, &e); err != nil {
					bad(line, "expect %s: %v", rest, err)
					continue
				}
			}
			t.Expect[rest] = f.Data
			t.ExpectLine[rest] = line
		default:
			bad(line, "unknown section %q (want source.json, answer METHOD PATH, target KEY, table NAME, delivery KEY or expect KEY)", f.Name)
		}
	}
	if !haveSource {
		bad(1, "no source.json section: a test needs source records")
	}
	return t, ps
}

func decode(b []byte) (any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return plain(v), nil
}

// plain turns json.Number into the float64 or int64 the engine's own
// decoding produces, so the stages see what a connector would give them.
func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return float64(i)
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = plain(e)
		}
	case []any:
		for i, e := range x {
			x[i] = plain(e)
		}
	}
	return v
}

func strictJSON(b []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("not an expectation: %v", err)
	}
	return nil
}

var hole = regexp.MustCompile(`\{[^{}]*\}`)

// parseAnswer reads "METHOD PATH [STATUS]".
func parseAnswer(spec string, data []byte) (*Answer, error) {
	f := strings.Fields(spec)
	if len(f) < 2 || len(f) > 3 {
		return nil, fmt.Errorf("want -- answer METHOD PATH [STATUS] --")
	}
	a := &Answer{Method: strings.ToUpper(f[0]), Pattern: f[1], Status: 200}
	if len(f) == 3 {
		st, err := strconv.Atoi(f[2])
		if err != nil || st < 100 || st > 599 {
			return nil, fmt.Errorf("status %q is not an HTTP status", f[2])
		}
		a.Status = st
	}
	path, query, _ := strings.Cut(a.Pattern, "?")
	var err error
	if a.path, err = templateRE(path); err != nil {
		return nil, err
	}
	a.literal = len(hole.ReplaceAllString(path, ""))
	if query != "" {
		a.query = map[string]*regexp.Regexp{}
		for _, kv := range strings.Split(query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			if a.query[k], err = templateRE(v); err != nil {
				return nil, err
			}
			a.literal += len(k) + len(hole.ReplaceAllString(v, ""))
		}
	}
	if a.Body, err = decode(data); err != nil {
		return nil, err
	}
	return a, nil
}

// templateRE turns a path template into a regexp: text matches itself, a
// {…} hole any text without a slash.
func templateRE(tpl string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	last := 0
	for _, m := range hole.FindAllStringIndex(tpl, -1) {
		b.WriteString(regexp.QuoteMeta(tpl[last:m[0]]))
		b.WriteString(`[^/]*`)
		last = m[1]
	}
	b.WriteString(regexp.QuoteMeta(tpl[last:]))
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// matches reports whether the answer answers method path?query.
func (a *Answer) matches(method, path string, query map[string]string) bool {
	if a.Method != method || !a.path.MatchString(path) {
		return false
	}
	for k, re := range a.query {
		v, ok := query[k]
		if !ok || !re.MatchString(v) {
			return false
		}
	}
	return true
}

// sectionLines gives the 1-based line of each section header.
func sectionLines(data []byte) []int {
	var out []int
	for i, ln := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(ln, "-- ") && strings.HasSuffix(strings.TrimRight(ln, "\r"), " --") {
			out = append(out, i+1)
		}
	}
	return out
}
