package spec

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// A schema error's code and message come from the error's path and from
// what the schema and the user's value hold there, never from the words
// of CUE's message: a CUE upgrade may reword its messages, and the user
// reads the rule in the schema's terms ("on_miss must be one of fail,
// null, skip, default"), not CUE's ("conflicting values").

// schemaAt is the schema's constraint for the field at sels: the field of
// the definition, or what a pattern ([#Name]: #Pipeline) or a list's
// element type applies to that label.
func (l *loader) schemaAt(sels []string) cue.Value {
	v := l.def
	for _, s := range sels {
		if v = schemaStep(v, s, l.top); !v.Exists() {
			return v
		}
	}
	return v
}

// schemaStep is the constraint schema puts on its field or element s.
func schemaStep(schema cue.Value, s string, top cue.Value) cue.Value {
	var sel cue.Selector
	if n, err := parseIndex(s); err == nil {
		sel = cue.Index(n)
	} else {
		sel = cue.Str(s)
	}
	c := schema.LookupPath(cue.MakePath(sel))
	if !c.Exists() && sel.Type() == cue.IndexLabel {
		c = schema.LookupPath(cue.MakePath(cue.AnyIndex))
	}
	if !c.Exists() && sel.Type() != cue.IndexLabel && schema.Allows(sel) {
		c = schema.FillPath(cue.MakePath(sel), top).LookupPath(cue.MakePath(sel))
	}
	return c
}

// problemAt builds a problem at pos.
func (l *loader) problemAt(pos token.Pos, path, code, msg string) Problem {
	p := Problem{Path: path, Code: code, Msg: msg, Hint: Codes[code]}
	if pos.IsValid() {
		p.File = l.rel(pos.Filename())
		p.Line, p.Col = pos.Line(), pos.Column()
	} else {
		p.File = l.rel(l.dir)
	}
	return p
}

// splitPath splits a path joinPath rendered, keeping quoted labels whole.
func splitPath(p string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(p); i++ {
		switch {
		case p[i] == '"' && (i == 0 || p[i-1] != '\\'):
			quoted = !quoted
		case p[i] == '.' && !quoted:
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return append(out, p[start:])
}

// undefinedMsg words a reference that resolves to nothing. A reference
// that starts with the name of the field it is the value of (jq_defs:
// kh: kh.JQDefs) means that field, not an import of the same name: CUE
// looks the name up from the inside out.
func undefinedMsg(ref string, sels []string) string {
	first, _, _ := strings.Cut(ref, ".")
	if len(sels) > 0 && first == sels[len(sels)-1] {
		return fmt.Sprintf("%s here is the field %s itself (CUE looks a name up from the inside out), not an import or field of that name further out: give the field another name", ref, first)
	}
	return fmt.Sprintf("%s is not defined: check the spelling and the import", ref)
}

// explain gives the code and message of a schema error at sels.
func (l *loader) explain(e cueerrors.Error, sels []string) (code, msg string) {
	name := fieldName(sels)
	if len(sels) > 0 {
		parent := l.schemaAt(sels[:len(sels)-1])
		label := sels[len(sels)-1]
		// A list element has no closedness to break.
		if _, err := parseIndex(label); err != nil {
			if st, ok := closedStruct(parent, label); ok {
				return l.notAllowed(sels, st)
			}
		}
	}
	user := l.user.LookupPath(makePath(sels...))
	schema := l.schemaAt(sels)
	if user.Err() != nil {
		if ref := l.failedReference(user, e); ref != "" {
			return "undefined-reference", undefinedMsg(ref, sels)
		}
	}
	if !user.Exists() {
		// A required field's error is placed in the schema only; one at a
		// name in the user's file is a name that resolves to nothing.
		if ref := refText(l.nodeAt(cueerrors.Positions(e))); ref != "" {
			return "undefined-reference", undefinedMsg(ref, sels)
		}
		return "missing-field", fmt.Sprintf("%s is required here", name)
	}
	if user.Err() != nil {
		// The user's own files disagree, before any schema.
		return "conflict", l.conflictMsg(user, e, name)
	}
	uk, sk := user.IncompleteKind(), schema.IncompleteKind()
	if schema.Exists() && uk&sk == 0 && uk != cue.BottomKind {
		if uk == cue.StringKind && sk&cue.StructKind != 0 && secretFields[name] &&
			schema.Unify(l.ctx().CompileString(`{secret: "NAME"}`)).Validate() == nil {
			return "inline-secret", "a secret value is written in the spec"
		}
		return "wrong-type", fmt.Sprintf("%s must be %s, not %s", name, kindWords(schema), kindName(uk))
	}
	u := l.root.LookupPath(makePath(sels...))
	if u.Validate() == nil && u.Validate(cue.Concrete(true)) != nil {
		return "incomplete", fmt.Sprintf("%s has no concrete value: give it one", name)
	}
	got := valueText(user)
	if alts := literalAlternatives(schema); len(alts) > 0 {
		return "bad-value", fmt.Sprintf("%s must be one of %s, not %s", name, strings.Join(alts, ", "), got)
	}
	if rule := numberRule(schema); rule != "" && user.IncompleteKind()&cue.NumberKind != 0 {
		return "bad-value", fmt.Sprintf("%s must be %s, not %s", name, rule, got)
	}
	if rule := l.stringRule(schema); rule != "" {
		code := "bad-value"
		if rule == durationRule {
			code = "bad-duration"
		}
		return code, fmt.Sprintf("%s must be %s, not %s", name, rule, got)
	}
	// A rule this file does not word: say what is refused, and CUE's own
	// detail unless it is only a count of failed alternatives.
	format, args := e.Msg()
	if len(args) > 0 && !strings.Contains(format, "disjunction") {
		return "bad-value", fmt.Sprintf("%s cannot be %s: %s", name, got, fmt.Sprintf(format, args...))
	}
	return "bad-value", fmt.Sprintf("%s cannot be %s", name, got)
}

// closedStruct reports whether no struct the schema allows at parent
// takes label (a disjunction such as string | #Secret is checked on its
// struct alternatives), and returns the one to word the message from.
func closedStruct(parent cue.Value, label string) (cue.Value, bool) {
	if !parent.Exists() || parent.IncompleteKind()&cue.StructKind == 0 {
		return cue.Value{}, false
	}
	alts := []cue.Value{parent}
	if op, args := parent.Expr(); op == cue.OrOp {
		alts = args
	}
	var first cue.Value
	found := false
	for _, a := range alts {
		if a.IncompleteKind()&cue.StructKind == 0 {
			continue
		}
		if a.Allows(cue.Str(label)) {
			return cue.Value{}, false
		}
		if !found {
			first, found = a, true
		}
	}
	return first, found
}

// failedReference is the text of the reference that fails at v
// (prim.Casez): v, or one of the values unified into it, is a selection
// whose field does not exist. A conflict whose one side comes through a
// reference is not one.
func (l *loader) failedReference(v cue.Value, e cueerrors.Error) string {
	op, args := v.Expr()
	switch op {
	case cue.SelectorOp:
		if ref := refText(l.nodeAt(cueerrors.Positions(e))); ref != "" {
			return ref
		}
		src := v.Source()
		if f, ok := src.(*ast.Field); ok {
			src = f.Value
		}
		return refText(src)
	case cue.AndOp:
		for _, a := range args {
			if a.Err() != nil {
				if ref := l.failedReference(a, e); ref != "" {
					return ref
				}
			}
		}
	}
	return ""
}

// refText renders a reference node (nosuch, prim.Casez).
func refText(n ast.Node) string {
	switch n.(type) {
	case *ast.SelectorExpr, *ast.Ident:
		if b, err := format.Node(n); err == nil {
			return string(b)
		}
	}
	return ""
}

// fieldName names the field at sels for a message: its label, or for a
// list element the list's with the index (secrets[0]).
func fieldName(sels []string) string {
	if len(sels) == 0 {
		return "the deployment"
	}
	last := sels[len(sels)-1]
	if _, err := parseIndex(last); err == nil && len(sels) > 1 {
		return fmt.Sprintf("%s[%s]", sels[len(sels)-2], last)
	}
	return last
}

func (l *loader) ctx() *cue.Context { return l.def.Context() }

// notAllowed words an unknown field: a name that breaks the naming rule
// of a map such as pipelines, or a field the struct does not have, with
// the ones it has.
func (l *loader) notAllowed(sels []string, parent cue.Value) (code, msg string) {
	label := sels[len(sels)-1]
	if parent.Allows(cue.Str("a")) || parent.Allows(cue.Str("A")) {
		// The struct takes names by a pattern: the name breaks it.
		what := "name"
		if len(sels) >= 2 {
			what = strings.TrimSuffix(sels[len(sels)-2], "s") + " name"
		}
		if parent.Allows(cue.Str("a")) {
			return "bad-name", fmt.Sprintf("%s %q must be %s", what, label, nameRule)
		}
		return "bad-name", fmt.Sprintf("%s %q must be %s", what, label, secretNameRule)
	}
	var have []string
	if it, err := parent.Fields(cue.Optional(true)); err == nil {
		for it.Next() {
			if it.Selector().LabelType() == cue.StringLabel {
				have = append(have, it.Selector().Unquoted())
			}
		}
	}
	sort.Strings(have)
	if len(have) == 0 {
		return "unknown-field", fmt.Sprintf("%s is not a field here", label)
	}
	return "unknown-field", fmt.Sprintf("%s is not a field here (fields: %s)", label, strings.Join(have, ", "))
}

const (
	nameRule       = "lowercase letters, digits and _, starting with a letter"
	secretNameRule = "UPPER_CASE: capital letters, digits and _, starting with a letter"
	durationRule   = "a duration such as 500ms, 30s, 5m or 1h30m"
)

// stringRule recognises the schema's string patterns by what they accept.
func (l *loader) stringRule(schema cue.Value) string {
	if schema.IncompleteKind() != cue.StringKind {
		return ""
	}
	accepts := func(s string) bool { return schema.Unify(l.ctx().Encode(s)).Validate() == nil }
	switch {
	case accepts("1h30m") && accepts("500ms") && !accepts("5 minutes"):
		return durationRule
	case accepts("a_b1") && !accepts("A") && !accepts("a b"):
		return nameRule
	case accepts("A_B1") && !accepts("a") && !accepts("A B"):
		return secretNameRule
	case accepts("https://a.example") && accepts("http://a.example") && !accepts("ftp://a.example") && !accepts("a.example"):
		return "a URL starting with https:// (or http://)"
	}
	return ""
}

// numberRule words a number's bounds (int & >=1 is "a whole number of at
// least 1") from the schema's expression, not from CUE's message.
func numberRule(schema cue.Value) string {
	if schema.IncompleteKind()&cue.NumberKind == 0 || schema.IncompleteKind()&^cue.NumberKind != 0 {
		return ""
	}
	var bounds []string
	var walk func(v cue.Value, depth int)
	walk = func(v cue.Value, depth int) {
		op, args := v.Expr()
		words := map[cue.Op]string{cue.GreaterThanEqualOp: "at least", cue.GreaterThanOp: "more than",
			cue.LessThanEqualOp: "at most", cue.LessThanOp: "less than"}
		switch {
		case depth > 4:
		case op == cue.AndOp || op == cue.OrOp || op == cue.NoOp && len(args) == 1:
			// int & >=1, and *5 | int & >=1 (the default is not the rule).
			for _, a := range args {
				if !a.IsConcrete() {
					walk(a, depth+1)
				}
			}
		case words[op] != "" && len(args) == 1:
			bounds = append(bounds, words[op]+" "+fmt.Sprint(args[0]))
		}
	}
	walk(schema, 0)
	if len(bounds) == 0 {
		return ""
	}
	what := "a number"
	if schema.IncompleteKind() == cue.IntKind {
		what = "a whole number"
	}
	return what + " of " + strings.Join(bounds, " and ")
}

// literalAlternatives lists the values of a schema that is a choice of
// literals (on_miss: *"fail" | "null" | …), else nil.
func literalAlternatives(schema cue.Value) []string {
	op, args := schema.Expr()
	if op != cue.OrOp || len(args) < 2 {
		return nil
	}
	var out []string
	for _, a := range args {
		if !a.IsConcrete() || a.IncompleteKind()&(cue.StructKind|cue.ListKind) != 0 {
			return nil
		}
		out = append(out, valueText(a))
	}
	return out
}

// valueText renders a concrete scalar as the user wrote it: strings bare.
func valueText(v cue.Value) string {
	if s, err := v.String(); err == nil {
		return s
	}
	if v.IsConcrete() && v.IncompleteKind()&(cue.StructKind|cue.ListKind) == 0 {
		return fmt.Sprint(v)
	}
	return kindName(v.IncompleteKind())
}

// kindWords says what a schema takes, in the user's words: for an object,
// its fields.
func kindWords(schema cue.Value) string {
	k := schema.IncompleteKind()
	if k == cue.StructKind {
		var fs []string
		if it, err := schema.Fields(cue.Optional(true)); err == nil {
			for it.Next() {
				if it.Selector().LabelType() == cue.StringLabel {
					fs = append(fs, it.Selector().Unquoted())
				}
			}
		}
		if len(fs) > 0 && len(fs) <= 10 {
			return "an object with " + strings.Join(fs, ", ")
		}
	}
	return kindName(k)
}

// kindName names a CUE kind as a spec author says it.
func kindName(k cue.Kind) string {
	var out []string
	for _, c := range []struct {
		k    cue.Kind
		name string
	}{
		{cue.StringKind, "a string"}, {cue.IntKind, "a whole number"}, {cue.FloatKind, "a number"},
		{cue.BoolKind, "true or false"}, {cue.StructKind, "an object {…}"}, {cue.ListKind, "a list […]"}, {cue.NullKind, "null"},
	} {
		if k&c.k != 0 {
			if c.k == cue.FloatKind && k&cue.IntKind != 0 {
				out[len(out)-1] = "a number"
				continue
			}
			out = append(out, c.name)
		}
	}
	if len(out) == 0 {
		return "a value"
	}
	if len(out) == 1 {
		return out[0]
	}
	return strings.Join(out[:len(out)-1], ", ") + " or " + out[len(out)-1]
}

// conflictPlaces are the file:line of each value of a conflict in the
// user's files (absolute: messages are made relative with the rest).
func (l *loader) conflictPlaces(e cueerrors.Error) []string {
	var places []string
	for _, p := range cueerrors.Positions(e) {
		if p.IsValid() && l.isUserFile(p) {
			places = append(places, fmt.Sprintf("%s:%d", p.Filename(), p.Line()))
		}
	}
	return dedupe(places)
}

// side is one value of a conflict and where it is written.
type side struct {
	text string
	pos  token.Pos
}

// conflictSides are the concrete values unified at v, each with its place.
func conflictSides(v cue.Value, depth int, out *[]side) {
	op, args := v.Expr()
	if op == cue.AndOp && depth < 8 {
		for _, a := range args {
			conflictSides(a, depth+1, out)
		}
		return
	}
	if v.IsConcrete() && v.IncompleteKind()&(cue.StructKind|cue.ListKind) == 0 && v.Pos().IsValid() {
		*out = append(*out, side{valueText(v), writtenPos(v)})
	}
}

// conflictPos is where to report a conflict: the value the deployment
// itself wrote, when one side is there.
func (l *loader) conflictPos(v cue.Value) token.Pos {
	var sides []side
	conflictSides(v, 0, &sides)
	for _, sd := range sides {
		if filepath.Dir(sd.pos.Filename()) == l.dir {
			return sd.pos
		}
	}
	return token.NoPos
}

// conflictMsg names each value and where it is written, so a field
// defined in two files names both, and a library's value the deployment
// tries to change says it is the library's.
func (l *loader) conflictMsg(v cue.Value, e cueerrors.Error, name string) string {
	var sides []side
	conflictSides(v, 0, &sides)
	var parts []string
	lib := false
	for _, sd := range sides {
		parts = append(parts, fmt.Sprintf("%s at %s:%d", sd.text, sd.pos.Filename(), sd.pos.Line()))
		lib = lib || filepath.Dir(sd.pos.Filename()) != l.dir
	}
	parts = dedupe(parts)
	if len(parts) < 2 {
		places := l.conflictPlaces(e)
		if len(places) < 2 {
			return fmt.Sprintf("%s is given two different values", name)
		}
		return fmt.Sprintf("%s is given different values at %s", name, strings.Join(places, " and "))
	}
	msg := fmt.Sprintf("%s is %s", name, strings.Join(parts, " but "))
	if lib {
		return msg + ": a value a library sets (not a default) cannot be changed by a deployment"
	}
	return msg + ": keep one"
}

// mergeConflicts folds the conflicts inside one connector, lookup or
// pipeline into one problem when there are several: the thing is defined
// twice (a copied file), and one problem naming both files says so better
// than one per field.
func (l *loader) mergeConflicts(ps Problems) Problems {
	owner := func(p Problem) string {
		parts := splitPath(p.Path)
		switch {
		case len(parts) >= 2 && (parts[0] == "connectors" || parts[0] == "lookups" || parts[0] == "pipelines"):
			return joinPath(parts[:2])
		case len(parts) >= 1:
			return parts[0]
		}
		return ""
	}
	groups := map[string][]int{}
	for i, p := range ps {
		if p.Code == "conflict" && owner(p) != "" {
			groups[owner(p)] = append(groups[owner(p)], i)
		}
	}
	drop := map[int]bool{}
	for own, idx := range groups {
		if len(idx) < 2 {
			continue
		}
		files := map[string]bool{}
		var fields []string
		for _, i := range idx {
			for _, pl := range ps[i].places {
				files[l.rel(pl[:strings.LastIndexByte(pl, ':')])] = true
			}
			fields = append(fields, strings.TrimPrefix(ps[i].Path, own+"."))
			drop[i] = true
		}
		first := ps[idx[0]]
		first.Path = own
		first.Msg = fmt.Sprintf("%s is defined in %s, and the definitions disagree on %s: keep one",
			own, strings.Join(sortedKeys(files), " and "), strings.Join(fields, ", "))
		ps[idx[0]] = first
		delete(drop, idx[0])
	}
	out := ps[:0]
	for i, p := range ps {
		if !drop[i] {
			out = append(out, p)
		}
	}
	return out
}

// isUserFile: a position in a deployment or library file, not in the
// embedded schema (nor CUE's "-" for text without a file).
func (l *loader) isUserFile(p token.Pos) bool {
	return p.Filename() != "" && !strings.HasPrefix(p.Filename(), "-") && !l.isSchema(p.Filename())
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	out := xs[:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// nodeAt is the innermost syntax node of a user's file at the first of ps
// that lies in one: what an error is about when it has no path (an
// import, a reference).
func (l *loader) nodeAt(ps []token.Pos) ast.Node {
	for _, p := range ps {
		if !p.IsValid() || l.isSchema(p.Filename()) {
			continue
		}
		f := l.parsed(p.Filename())
		if f == nil {
			continue
		}
		var found ast.Node
		var stack []ast.Node
		ast.Walk(f, func(n ast.Node) bool {
			stack = append(stack, n)
			if np := n.Pos(); np.IsValid() && np.Line() == p.Line() && np.Column() == p.Column() {
				found = n
				// The path or name of an import stands for the import,
				// the field of a selector for the whole reference.
				if len(stack) >= 2 {
					switch parent := stack[len(stack)-2].(type) {
					case *ast.ImportSpec:
						found = parent
					case *ast.SelectorExpr:
						if parent.Sel == n {
							found = parent
						}
					}
				}
			}
			return true
		}, func(ast.Node) { stack = stack[:len(stack)-1] })
		if found != nil {
			return found
		}
	}
	return nil
}

// parsed is the syntax tree of a file, parsed once.
func (l *loader) parsed(name string) *ast.File {
	if f, ok := l.trees[name]; ok {
		return f
	}
	var f *ast.File
	if src, err := l.readFile(name); err == nil {
		f, _ = parser.ParseFile(name, src)
	}
	if l.trees == nil {
		l.trees = map[string]*ast.File{}
	}
	l.trees[name] = f
	return f
}

func isImport(n ast.Node) bool    { _, ok := n.(*ast.ImportSpec); return ok }
func isIdentNode(n ast.Node) bool { _, ok := n.(*ast.Ident); return ok }

// importProblem words an error at an import: one the package never uses
// (found while evaluating), or one that cannot be loaded.
func (l *loader) importProblem(spec *ast.ImportSpec, evaluating bool) (code, path, msg string) {
	p, _ := literal.Unquote(spec.Path.Value)
	name := p
	if spec.Name != nil {
		name = spec.Name.Name + " (" + p + ")"
	}
	if evaluating {
		return "unused-import", "", fmt.Sprintf("import %s is not used: remove it", name)
	}
	return "load", "", fmt.Sprintf("cannot find package %s: check the import path", p)
}

// packageClauses reports each file of a folder holding two packages at
// its package clause.
func (l *loader) packageClauses(e *load.MultiplePackageError) {
	for i, file := range e.Files {
		file = filepath.Join(l.dir, filepath.Base(file)) // the files of one folder, named as load found them
		line, col := 1, 1
		if f := l.parsed(file); f != nil {
			for _, d := range f.Decls {
				if pk, ok := d.(*ast.Package); ok {
					line, col = pk.Pos().Line(), pk.Pos().Column()
				}
			}
		}
		l.problems = append(l.problems, Problem{File: l.rel(file), Line: line, Col: col, Code: "package-mismatch",
			Msg: fmt.Sprintf("package %s: every file of a deployment has the same package name", e.Packages[i]), Hint: Codes["package-mismatch"]})
	}
}
