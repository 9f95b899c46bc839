package spec

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"casesync/engine"
	"casesync/engine/mapping"
)

// lookup loads one lookup and registers it. Table files are read and
// checked here, so a duplicated or empty key is a check problem naming
// every row involved, not a silent last-one-wins at run time.
func (b *builder) lookup(plan *engine.Plan, name string, ls engine.LookupSpec) {
	at := sel("lookups", name)
	// A lookup that is not registered has its own problem: its uses are
	// not reported again as unknown lookups (one mistake, one problem).
	defer func() {
		if !b.reg.Has(name) {
			b.l.broken["lookups."+name] = true
		}
	}()
	onMiss := mapping.OnMiss(ls.OnMiss)
	if onMiss == "" {
		onMiss = mapping.MissFail
	}
	def := fixAny(ls.Default)
	if onMiss == mapping.MissDefault && ls.Default == nil {
		b.problem(append(at, "on_miss"), "missing-field", "on_miss default needs default")
	}
	var kinds []string
	if ls.File != "" {
		kinds = append(kinds, "file")
	}
	if ls.Values != nil {
		kinds = append(kinds, "values")
	}
	if ls.Rule != nil {
		kinds = append(kinds, "rule")
	}
	if ls.API != nil {
		kinds = append(kinds, "api")
	}
	if ls.SQL != nil {
		kinds = append(kinds, "sql")
	}
	if len(kinds) != 1 {
		if len(kinds) == 0 {
			b.problem(at, "one-of", "a lookup needs one of file, values, rule, api or sql")
		} else {
			b.problem(at, "one-of", "lookup sets %s: choose one", strings.Join(kinds, " and "))
		}
		return
	}
	switch kinds[0] {
	case "file":
		rows := b.tableFile(at, ls)
		if rows != nil {
			b.reg.Add(mapping.NewTable(name, rows, ls.CaseInsensitive, onMiss, def))
		}
	case "values":
		rows := map[string]any{}
		for k, v := range ls.Values {
			if strings.TrimSpace(k) == "" {
				b.problem(append(at, "values"), "lookup-empty-key", "an entry has an empty key")
				continue
			}
			rows[k] = fixAny(v)
		}
		b.reg.Add(mapping.NewTable(name, rows, ls.CaseInsensitive, onMiss, def))
	case "rule":
		l, err := mapping.NewRule(name, ls.Rule.Forward, onMiss, def)
		if err != nil {
			b.problem(append(at, "rule", "forward"), "bad-value", "%v", err)
			return
		}
		b.reg.Add(l)
	case "api", "sql":
		b.reg.Add(mapping.NewAPI(name, onMiss, def))
	}
}

type row struct {
	line, col int // where the row (CSV) or the entry (JSON) starts
	key       string
	value     any
}

func (b *builder) tableFile(at []string, ls engine.LookupSpec) map[string]any {
	path, err := b.l.tablePath(ls.File)
	if err != nil {
		b.problem(append(at, "file"), "lookup-file", "%v", err)
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		msg := "cannot read " + ls.File
		if errors.Is(err, os.ErrNotExist) {
			msg = ls.File + " does not exist"
		}
		b.problem(append(at, "file"), "lookup-file", "%s", msg)
		return nil
	}
	defer f.Close()
	var rows []row
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		rows = b.readCSV(at, ls, f, path)
	case ".json":
		rows = b.readJSON(at, ls, f, path)
	default:
		b.problem(append(at, "file"), "lookup-file", "%s: want a .csv or .json file", ls.File)
		return nil
	}
	if rows == nil {
		return nil
	}
	out := make(map[string]any, len(rows))
	byKey := map[string][]row{}
	rel := b.l.rel(path)
	for _, r := range rows {
		k := r.key
		if ls.CaseInsensitive {
			k = strings.ToLower(k)
		}
		byKey[k] = append(byKey[k], r)
		if strings.TrimSpace(r.key) == "" {
			b.l.problems = append(b.l.problems, Problem{File: rel, Line: r.line, Col: r.col, Path: joinPath(at), Code: "lookup-empty-key", Msg: "row has an empty key", Hint: Codes["lookup-empty-key"]})
			continue
		}
		if s, ok := r.value.(string); r.value == nil || (ok && strings.TrimSpace(s) == "") {
			b.l.problems = append(b.l.problems, Problem{File: rel, Line: r.line, Col: r.col, Path: joinPath(at), Code: "lookup-empty-value", Msg: fmt.Sprintf("key %q has an empty value", r.key), Hint: Codes["lookup-empty-value"]})
			continue
		}
		out[r.key] = r.value
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		dups := byKey[k]
		if len(dups) < 2 || strings.TrimSpace(k) == "" {
			continue
		}
		for _, r := range dups {
			others := []string{}
			for _, o := range dups {
				if o.line != r.line || o.col != r.col {
					others = append(others, fmt.Sprint(o.line))
				}
			}
			b.l.problems = append(b.l.problems, Problem{File: rel, Line: r.line, Col: r.col, Path: joinPath(at), Code: "lookup-duplicate-key",
				Msg: fmt.Sprintf("key %q appears again on line %s", k, strings.Join(others, ", ")), Hint: Codes["lookup-duplicate-key"]})
		}
	}
	return out
}

func (b *builder) readCSV(at []string, ls engine.LookupSpec, f io.Reader, path string) []row {
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		b.problem(append(at, "file"), "lookup-file", "%s: no header row", ls.File)
		return nil
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\uFEFF") // a spreadsheet's byte order mark
	}
	ki, vi := 0, 1
	if ls.Key != "" {
		ki = indexOf(header, ls.Key)
		if ki < 0 || header[ki] != ls.Key {
			b.problem(append(at, "key"), "lookup-column", "%s has no column %q (its header has %d columns)", ls.File, ls.Key, len(header))
			return nil
		}
	}
	if ls.Value != "" {
		vi = indexOf(header, ls.Value)
		if vi < 0 || header[vi] != ls.Value {
			b.problem(append(at, "value"), "lookup-column", "%s has no column %q (its header has %d columns)", ls.File, ls.Value, len(header))
			return nil
		}
	}
	if len(header) < 2 && ls.Value == "" {
		b.problem(append(at, "file"), "lookup-file", "%s: want at least two columns", ls.File)
		return nil
	}
	var rows []row
	bad := false
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// Placed where the reader stopped, with its reason (a bare " in
			// an unquoted field, a quote never closed).
			line, col, msg := 0, 1, "unreadable CSV row"
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line, col, msg = pe.Line, max(pe.Column, 1), "unreadable CSV row: "+pe.Err.Error()
			}
			b.l.problems = append(b.l.problems, Problem{File: b.l.rel(path), Line: line, Col: col, Path: joinPath(at), Code: "lookup-file", Msg: msg, Hint: Codes["lookup-file"]})
			return nil
		}
		line, col := r.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) > len(header) {
			// csv reads an unquoted comma as a new field: the value is cut
			// short and the rest lands in a column nobody reads.
			b.l.problems = append(b.l.problems, Problem{File: b.l.rel(path), Line: line, Col: 1, Path: joinPath(at), Code: "lookup-row",
				Msg: fmt.Sprintf("row has %d fields, the header %d: quote a value that holds a comma", len(rec), len(header)), Hint: Codes["lookup-row"]})
			bad = true
			continue
		}
		var k, v string
		if ki < len(rec) {
			k = rec[ki]
		}
		if vi < len(rec) {
			v = rec[vi]
		}
		rows = append(rows, row{line: line, col: col, key: k, value: v})
	}
	if bad {
		return nil
	}
	return rows
}

// lineCol is the 1-based line and byte column of offset off in data; a
// JSON syntax error's offset is just past the byte it stopped at.
func lineCol(data []byte, off int) (int, int) {
	off = min(max(off-1, 0), len(data))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	return line, off - bytes.LastIndexByte(data[:off], '\n')
}

// readJSON accepts an object (key → value) or an array of objects with the
// key and value fields named by the spec. It streams tokens so a key that
// appears twice in an object is seen twice, and every entry keeps its line.
func (b *builder) readJSON(at []string, ls engine.LookupSpec, f io.Reader, path string) []row {
	data, err := io.ReadAll(f)
	if err != nil {
		b.problem(append(at, "file"), "lookup-file", "cannot read %s", ls.File)
		return nil
	}
	var syn *json.SyntaxError
	if err := json.Unmarshal(data, new(any)); errors.As(err, &syn) {
		// Placed in the table itself: the spec line is fine, the file is not.
		line, col := lineCol(data, int(syn.Offset))
		b.l.problems = append(b.l.problems, Problem{File: b.l.rel(path), Line: line, Col: col, Path: joinPath(append(at, "file")),
			Code: "lookup-file", Msg: fmt.Sprintf("%s is not valid JSON: %v", ls.File, err), Hint: Codes["lookup-file"]})
		return nil
	} else if err != nil {
		b.problem(append(at, "file"), "lookup-file", "%s is not valid JSON: %v", ls.File, err)
		return nil
	}
	// start finds where the next entry begins after offset off.
	start := func(off int64) (int, int) {
		i := int(off)
		for i < len(data) && strings.IndexByte(" \t\r\n,:", data[i]) >= 0 {
			i++
		}
		line := 1 + strings.Count(string(data[:i]), "\n")
		return line, i - strings.LastIndexByte(string(data[:i]), '\n')
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	t, _ := dec.Token()
	var rows []row
	switch t {
	case json.Delim('{'):
		for dec.More() {
			line, col := start(dec.InputOffset())
			t, err := dec.Token()
			if err != nil {
				return nil
			}
			k, _ := t.(string)
			var v any
			if err := dec.Decode(&v); err != nil {
				return nil
			}
			rows = append(rows, row{line: line, col: col, key: k, value: fixAny(v)})
		}
	case json.Delim('['):
		if ls.Key == "" || ls.Value == "" {
			b.problem(at, "missing-field", "a JSON array table needs key and value field names")
			return nil
		}
		for i := 0; dec.More(); i++ {
			line, col := start(dec.InputOffset())
			var it any
			if err := dec.Decode(&it); err != nil {
				return nil
			}
			m, ok := it.(map[string]any)
			if !ok {
				b.problem(append(at, "file"), "lookup-file", "%s: element %d is not an object", ls.File, i)
				return nil
			}
			key := ""
			switch k := m[ls.Key].(type) {
			case nil:
			case string:
				key = k
			default:
				key = fmt.Sprint(fixAny(k))
			}
			rows = append(rows, row{line: line, col: col, key: key, value: fixAny(m[ls.Value])})
		}
	default:
		b.problem(append(at, "file"), "lookup-file", "%s: want an object or an array", ls.File)
		return nil
	}
	return rows
}

// tablePath resolves a lookup's file, which must stay inside the
// deployment folder or the shared lib beside it (<module>/lib): an
// absolute path, a ../ or a symbolic link leading anywhere else is
// refused, so a spec cannot read (and a problem message or /status
// cannot show the start of) a file the deployment does not own.
func (l *loader) tablePath(file string) (string, error) {
	if filepath.IsAbs(file) || filepath.VolumeName(file) != "" {
		return "", fmt.Errorf("%s is an absolute path: a lookup file sits in the deployment folder (or the shared lib)", file)
	}
	path := filepath.Join(l.dir, file)
	roots := []string{l.dir}
	if mod := l.moduleRoot(); mod != "" {
		roots = append(roots, filepath.Join(mod, "lib"))
	}
	if !under(path, roots) {
		return "", fmt.Errorf("%s leads outside the deployment folder", file)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return path, nil // a missing file is reported when it is opened
	}
	var realRoots []string
	for _, r := range roots {
		if rr, err := filepath.EvalSymlinks(r); err == nil {
			realRoots = append(realRoots, rr)
		}
	}
	if !under(real, realRoots) {
		return "", fmt.Errorf("%s is a symbolic link leading outside the deployment folder", file)
	}
	return real, nil
}

// under reports whether path is inside one of roots.
func under(path string, roots []string) bool {
	for _, r := range roots {
		rel, err := filepath.Rel(r, path)
		if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// moduleRoot is the folder holding the deployment's cue.mod, or "".
func (l *loader) moduleRoot() string {
	for d := l.dir; ; {
		if st, err := os.Stat(filepath.Join(d, "cue.mod")); err == nil && st.IsDir() {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
}
