package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"

	"casesync/engine"
	"casesync/schemas"
)

// Options tune Load.
type Options struct {
	// Cwd makes positions relative; default the process's working directory.
	Cwd string
}

// Load reads the deployment in dir and returns its compiled plan, or every
// problem found. A returned error that is not Problems is an I/O failure.
// loadGCPercent is GOGC while a spec loads.
const loadGCPercent = 35

func Load(dir string, opts Options) (*engine.Plan, error) {
	// Evaluating CUE allocates many times what the plan it leaves keeps;
	// collecting more often while it runs keeps the process's peak close
	// to what is live (the peak RSS of a whole sync was set here).
	defer debug.SetGCPercent(debug.SetGCPercent(loadGCPercent))
	l, err := newLoader(dir, opts)
	if err != nil {
		return nil, err
	}
	plan := l.load()
	if plan == nil && len(l.problems) == 0 {
		// Never a nil plan without a reason.
		l.add(token.NoPos, "", "load", "the spec could not be loaded")
	}
	if len(l.problems) > 0 {
		for i := range l.problems {
			l.problems[i].Msg = l.scrub(l.problems[i].Msg)
		}
		return nil, mergeShared(l.mergeConflicts(l.problems.Sort()))
	}
	for _, w := range mergeShared(l.warnings.Sort()) {
		plan.Warnings = append(plan.Warnings, w.String())
	}
	return plan, nil
}

// mergeShared folds problems that are one mistake seen through several
// paths (a hidden _base unified into three pipelines) into the first, so
// each place in a file is reported once; the message names the others.
func mergeShared(ps Problems) Problems {
	type key struct {
		file      string
		line, col int
		code, msg string
	}
	idx := map[key]int{}
	also := map[int][]string{}
	out := ps[:0]
	for _, p := range ps {
		if p.Line > 0 {
			k := key{p.File, p.Line, p.Col, p.Code, p.Msg}
			if i, ok := idx[k]; ok {
				also[i] = append(also[i], p.Path)
				continue
			}
			idx[k] = len(out)
		}
		out = append(out, p)
	}
	for i, paths := range also {
		out[i].Msg += " (also " + strings.Join(paths, ", ") + ")"
	}
	return out
}

// Deployments finds the deployment folders under root: folders holding .cue
// files, except cue.mod and shared libraries (folders named lib and their
// children) and testdata. A root that itself holds .cue files is one.
func Deployments(root string) ([]string, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{filepath.Dir(root)}, nil
	}
	var out []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if p != root && (name == "cue.mod" || name == "lib" || name == "testdata" || strings.HasPrefix(name, ".")) {
			return filepath.SkipDir
		}
		matches, _ := filepath.Glob(filepath.Join(p, "*.cue"))
		if len(matches) > 0 {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

type loader struct {
	dir      string // absolute
	cwd      string
	problems Problems
	warnings Problems
	files    map[string]bool // user files seen, absolute
	root     cue.Value       // the unified deployment
	def      cue.Value       // the schema's #Deployment
	user     cue.Value       // the deployment's own value, before the schema
	top      cue.Value       // _, to open a pattern's constraint for a label
	schema   string
	sources  map[string][]byte // file contents read to place program errors
	trees    map[string]*ast.File
	// broken holds the parts CUE rejected ("connectors", "pipelines.p",
	// "secrets"): the rest is still built and checked, and references to
	// a broken part are not reported again as unknown.
	broken   map[string]bool
	errPaths [][]string
	// schemaCopy is the schema's path in the deployment's CUE module
	// (overlaid with the engine's own): its positions are the schema's.
	schemaCopy string
}

// schemaStandIn is the schema package with every definition accepting
// anything, keeping #Deployment's field names so a deployment's
// `pipelines: schema.#Deployment.pipelines` still resolves.
var schemaStandIn = sync.OnceValue(func() []byte {
	f, err := parser.ParseFile(schemas.Filename, schemas.Pipeline, parser.ParseComments)
	if err != nil {
		panic(fmt.Sprintf("embedded schema: %v", err))
	}
	var b strings.Builder
	b.WriteString("package " + f.PackageName() + "\n")
	for _, d := range f.Decls {
		fd, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		name, _, _ := ast.LabelName(fd.Label)
		st, isStruct := fd.Value.(*ast.StructLit)
		if name != "#Deployment" || !isStruct {
			b.WriteString(name + ": _\n")
			continue
		}
		b.WriteString(name + ": {\n")
		for _, e := range st.Elts {
			if f, ok := e.(*ast.Field); ok {
				n, _, _ := ast.LabelName(f.Label)
				// An open struct, not _: a value selected from a
				// definition is closed, and would refuse the defaults
				// the engine's schema adds.
				v := "_"
				if _, ok := f.Value.(*ast.StructLit); ok {
					v = "{...}"
				}
				b.WriteString("\t" + strconv.Quote(n) + ": " + v + "\n")
			}
		}
		b.WriteString("\t...\n}\n")
	}
	return []byte(b.String())
})

// isSchema reports whether a file name is the schema's, embedded or the
// module's overlaid copy.
func (l *loader) isSchema(name string) bool {
	return name == schemas.Filename || (l.schemaCopy != "" && name == l.schemaCopy)
}

func newLoader(dir string, opts Options) (*loader, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("read specs: %w", err)
	}
	if !st.IsDir() {
		abs = filepath.Dir(abs)
	}
	cwd := opts.Cwd
	if cwd == "" {
		cwd, _ = os.Getwd()
	}
	return &loader{dir: abs, cwd: cwd, files: map[string]bool{}, broken: map[string]bool{}}, nil
}

func (l *loader) rel(file string) string {
	if file == "" || l.isSchema(file) {
		return schemas.Filename
	}
	// A shared library beside the deployment renders as ../lib/...: a path
	// relative to the working directory, never an absolute temp path.
	if r, err := filepath.Rel(l.cwd, file); err == nil {
		return r
	}
	return file
}

// scrub rewrites absolute paths under the deployment or its CUE module
// (load errors quote them) relative to the working directory, so no
// message shows a temp or home directory.
func (l *loader) scrub(msg string) string {
	roots := []string{l.dir}
	if mod := l.moduleRoot(); mod != "" {
		roots = append(roots, mod)
	}
	for _, root := range roots {
		for from := 0; ; {
			i := strings.Index(msg[from:], root)
			if i < 0 {
				break
			}
			i += from
			end := i + len(root)
			if i > 0 && !strings.ContainsRune(" :\"'\n(", rune(msg[i-1])) {
				from = end // inside a path already made relative
				continue
			}
			if end < len(msg) && msg[end] != filepath.Separator && !strings.ContainsRune(" :\"'\n", rune(msg[end])) {
				from = end
				continue
			}
			for end < len(msg) && !strings.ContainsRune(" :\"'\n", rune(msg[end])) {
				end++
			}
			r := l.rel(msg[i:end])
			msg = msg[:i] + r + msg[end:]
			from = i + len(r)
		}
	}
	return msg
}

func (l *loader) add(pos token.Pos, path, code, format string, args ...any) {
	p := Problem{Path: path, Code: code, Msg: fmt.Sprintf(format, args...), Hint: Codes[code]}
	if pos.IsValid() {
		p.File = l.rel(pos.Filename())
		p.Line, p.Col = pos.Line(), pos.Column()
	} else {
		p.File = l.rel(l.dir)
	}
	l.problems = append(l.problems, p)
}

func (l *loader) load() *engine.Plan {
	matches, _ := filepath.Glob(filepath.Join(l.dir, "*.cue"))
	if len(matches) == 0 {
		l.add(token.NoPos, "", "no-deployment", "no .cue files in %s", l.rel(l.dir))
		return nil
	}
	if l.missingPackages(matches) {
		return nil
	}
	ctx := cuecontext.New()
	cfg := &load.Config{Dir: l.dir}
	if mod := l.moduleRoot(); mod != "" {
		// A deployment may import the module's copy of the schema, so cue
		// vet and editors apply it. The engine reads a stand-in instead:
		// its own schema is unified below, where every mistake is
		// explained in the spec's words, and a stale copy can neither
		// loosen nor tighten the language this engine checks.
		l.schemaCopy = filepath.Join(mod, filepath.FromSlash(schemas.Path))
		cfg.Overlay = map[string]load.Source{l.schemaCopy: load.FromBytes(schemaStandIn())}
	}
	insts := load.Instances([]string{"."}, cfg)
	if len(insts) == 0 {
		l.add(token.NoPos, "", "load", "nothing to load in %s", l.rel(l.dir))
		return nil
	}
	inst := insts[0]
	if inst.Err != nil {
		l.cueErrors(inst.Err, "syntax")
		return nil
	}
	for _, f := range inst.BuildFiles {
		l.files[f.Filename] = true
	}
	v := ctx.BuildInstance(inst)
	schema := ctx.CompileBytes(schemas.Pipeline, cue.Filename(schemas.Filename))
	if err := schema.Err(); err != nil {
		// The embedded schema is ours: a failure here is a build defect.
		panic(fmt.Sprintf("embedded schema: %v", err))
	}
	def := schema.LookupPath(cue.ParsePath("#Deployment"))
	u := def.Unify(v)
	l.root, l.def, l.user, l.top = u, def, v, ctx.CompileString("_")
	if errs, typos := l.schemaErrors(v, u); len(errs) > 0 || len(typos) > 0 {
		l.cueErrorList(errs, "", typos...)
		l.buildPartial(u)
		return nil
	}
	var spec engine.DeploymentSpec
	if err := l.decode(u, &spec); err != nil {
		l.add(u.Pos(), "", "load", "decode spec: %v", err)
		return nil
	}
	hash, err := l.hash()
	if err != nil {
		l.add(token.NoPos, "", "load", "hash spec files: %v", err)
	}
	b := &builder{l: l, spec: &spec}
	plan := b.build()
	if plan != nil {
		plan.Hash = hash
		plan.Dir = l.dir
		if spec.Name != "" {
			plan.Name = spec.Name
		} else {
			plan.Name = filepath.Base(l.dir)
		}
	}
	return plan
}

// schemaErrors returns every schema error of the unified value u, and
// every field of the user's value v that the schema does not allow. One
// Validate is not enough: CUE keeps one class of error per struct (an
// incomplete value is dropped beside a conflict, and a struct with a bad
// field loses its "field not allowed" for a sibling typo). So the fields
// are checked against the schema directly (closedness, by Allows), and
// Validate descends into every subtree that has an error to collect what
// the parent's summary dropped.
func (l *loader) schemaErrors(v, u cue.Value) ([]cueerrors.Error, Problems) {
	var out []cueerrors.Error
	var typos Problems
	opts := []cue.Option{cue.Concrete(true), cue.Final()}
	var walk func(x cue.Value, depth int)
	walk = func(x cue.Value, depth int) {
		err := x.Validate(opts...)
		if err == nil {
			return
		}
		out = append(out, cueerrors.Errors(err)...)
		if depth > 32 {
			return
		}
		fs, _ := regularFields(x)
		for _, f := range fs {
			walk(f.v, depth+1)
		}
		if it, err := x.List(); err == nil {
			for it.Next() {
				walk(it.Value(), depth+1)
			}
		}
	}
	walk(u, 0)
	if len(out) > 0 {
		// A typo always fails validation somewhere, so a valid spec (every
		// hot reload) skips the walk.
		l.unknownFields(v, nil, l.def, &typos)
	}
	return out, typos
}

// unknownFields adds an unknown-field problem for each field of v (at
// sels, whose schema is schema) that no struct the schema allows there
// takes, and descends into the fields it does take.
func (l *loader) unknownFields(v cue.Value, sels []string, schema cue.Value, out *Problems) {
	if len(sels) > 64 || !schema.Exists() {
		return
	}
	if fs, ok := regularFields(v); ok {
		for _, f := range fs {
			at := append(sels[:len(sels):len(sels)], f.name)
			if st, bad := closedStruct(schema, f.name); bad {
				pos := f.v.Pos()
				if !pos.IsValid() {
					pos = l.posOf(at...)
				}
				code, msg := l.notAllowed(at, st)
				*out = append(*out, l.problemAt(pos, joinPath(at), code, msg))
				continue
			}
			l.unknownFields(f.v, at, schemaStep(schema, f.name, l.top), out)
		}
	}
	if it, err := v.List(); err == nil {
		for i := 0; it.Next(); i++ {
			l.unknownFields(it.Value(), append(sels[:len(sels):len(sels)], strconv.Itoa(i)), schemaStep(schema, strconv.Itoa(i), l.top), out)
		}
	}
}

type field struct {
	name string
	v    cue.Value
}

// regularFields lists v's regular fields even when one of them has an
// error: Fields with default options refuses a struct whose child failed,
// but not when definitions are asked for too (they are skipped here).
func regularFields(v cue.Value) ([]field, bool) {
	it, err := v.Fields(cue.Definitions(true))
	if err != nil {
		return nil, false
	}
	var out []field
	for it.Next() {
		if it.Selector().LabelType() != cue.StringLabel {
			continue
		}
		out = append(out, field{it.Selector().Unquoted(), it.Value()})
	}
	return out, true
}

// buildPartial still builds what CUE accepted after a schema error, so one
// pass reports a typo in one pipeline and a bad jq program in another, or
// in the same pipeline. Each part with errors is marked broken and pruned
// of the values that fail; builder problems about a pruned value or one of
// its parents are then dropped, since they would only echo the schema's.
func (l *loader) buildPartial(u cue.Value) {
	for _, p := range l.errPaths {
		switch {
		case len(p) == 0:
			return // an error about the whole deployment: nothing to trust
		case p[0] == "connectors" || p[0] == "lookups" || p[0] == "pipelines" || p[0] == "jq_defs":
			if len(p) == 1 {
				l.broken[p[0]] = true
			} else {
				l.broken[p[0]+"."+p[1]] = true
			}
		default:
			l.broken[p[0]] = true
		}
	}
	var dropped []string
	raw := map[string]any{}
	for _, top := range []string{"name", "secrets", "vars"} {
		v := u.LookupPath(cue.ParsePath(top))
		if !v.Exists() {
			continue
		}
		if x, ok := l.prune(v, []string{top}, &dropped); ok {
			raw[top] = x
		}
	}
	for _, sec := range []string{"connectors", "lookups", "pipelines", "jq_defs"} {
		v := u.LookupPath(cue.ParsePath(sec))
		if !v.Exists() || l.broken[sec] {
			continue
		}
		fs, ok := regularFields(v)
		if !ok {
			l.broken[sec] = true
			continue
		}
		m := map[string]any{}
		for _, f := range fs {
			if x, ok := l.prune(f.v, []string{sec, f.name}, &dropped); ok {
				m[f.name] = x
			}
		}
		raw[sec] = m
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return
	}
	var spec engine.DeploymentSpec
	if err := decodeJSON(b, &spec); err != nil {
		return // the full decode reports drift once the schema errors are fixed
	}
	first := len(l.problems)
	(&builder{l: l, spec: &spec}).build()
	out := l.problems[:first]
	for _, p := range l.problems[first:] {
		if !related(p.Path, dropped) {
			out = append(out, p)
		}
	}
	l.problems = out
}

var validOpts = []cue.Option{cue.Concrete(true), cue.Final()}

// prune returns v as JSON, leaving out every value that fails the schema
// (recording its path in dropped); false when nothing of v is usable.
// A list with a bad element is dropped whole: keeping the rest would
// shift the indexes problems are reported under.
func (l *loader) prune(v cue.Value, path []string, dropped *[]string) (any, bool) {
	if v.Validate(validOpts...) == nil {
		if b, err := v.MarshalJSON(); err == nil {
			return json.RawMessage(b), true
		}
	}
	// A struct whose child failed has an error for a kind; its fields
	// tell it from a scalar. Only what the user wrote as a struct is
	// opened: a scalar where a struct goes would show the schema's
	// defaults as if written.
	if len(path) < 64 && l.user.LookupPath(makePath(path...)).IncompleteKind()&cue.StructKind != 0 {
		if fs, ok := regularFields(v); ok && len(fs) > 0 {
			m := map[string]any{}
			for _, f := range fs {
				if x, ok := l.prune(f.v, append(path[:len(path):len(path)], f.name), dropped); ok {
					m[f.name] = x
				}
			}
			if len(m) > 0 {
				return m, true
			}
		}
	}
	*dropped = append(*dropped, joinPath(path))
	return nil, false
}

// related reports whether path is one of paths, inside one, or a parent of one.
func related(path string, paths []string) bool {
	for _, d := range paths {
		if path == d || strings.HasPrefix(path, d+".") || strings.HasPrefix(d, path+".") {
			return true
		}
	}
	return false
}

// isBroken reports whether sec.name (or all of sec) had schema errors.
func (l *loader) isBroken(sec, name string) bool {
	return l.broken[sec] || l.broken[sec+"."+name]
}

// decode goes through JSON with unknown fields disallowed: Decode would
// ignore a field the schema has and Go forgot.
func (l *loader) decode(v cue.Value, out *engine.DeploymentSpec) error {
	b, err := v.MarshalJSON()
	if err != nil {
		return err
	}
	return decodeJSON(b, out)
}

func decodeJSON(b []byte, out *engine.DeploymentSpec) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return err
	}
	normalizeNumbers(out)
	return nil
}

// hash covers every file of the deployment (specs and lookup tables) so a
// changed table changes the hash recorded on runs.
// specFile reports whether name is part of a deployment's meaning: CUE
// files and lookup tables. A state file kept in the folder is not, and
// hashing it would make an unchanged spec look changed on every run.
func specFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".cue", ".csv", ".json":
		return true
	}
	return false
}

func (l *loader) hash() (string, error) {
	h := sha256.New()
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") || !specFile(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(l.dir, e.Name()))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", e.Name(), len(b))
		h.Write(b)
	}
	// Imported shared packages change behaviour too.
	for f := range l.files {
		if filepath.Dir(f) == l.dir {
			continue
		}
		b, err := os.ReadFile(f)
		if err == nil {
			fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(f), len(b))
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

var secretFields = map[string]bool{"password": true, "client_secret": true, "value": true, "secret": true}

// cueErrors turns CUE's errors into problems: one per path, at the first
// position inside the user's files, with a stable code.
func (l *loader) cueErrors(err error, force string) {
	l.cueErrorList(cueerrors.Errors(err), force)
}

func (l *loader) cueErrorList(errs []cueerrors.Error, force string, found ...Problem) {
	type key struct{ path, code string }
	seen := map[key]bool{}
	first := len(l.problems)
	for _, p := range found {
		seen[key{p.Path, p.Code}] = true
		l.problems = append(l.problems, p)
		l.errPaths = append(l.errPaths, unquoteSels(splitPath(p.Path)))
	}
	for _, e := range errs {
		format, args := e.Msg()
		msg := fmt.Sprintf(format, args...)
		path := strings.Join(trimDef(cueerrors.Path(e)), ".")
		code := force
		var mpe *load.MultiplePackageError
		switch node := l.nodeAt(cueerrors.Positions(e)); {
		case errors.As(e, &mpe):
			l.packageClauses(mpe)
			continue
		case isImport(node):
			code, path, msg = l.importProblem(node.(*ast.ImportSpec), force == "")
		case isIdentNode(node) && force != "":
			code = "undefined-reference"
			msg = fmt.Sprintf("%s is not defined: check the spelling and the import", node.(*ast.Ident).Name)
		case force == "":
			code, msg = l.explain(e, unquoteSels(trimDef(cueerrors.Path(e))))
		}
		k := key{path, code}
		if seen[k] {
			continue
		}
		seen[k] = true
		sels := unquoteSels(trimDef(cueerrors.Path(e)))
		l.errPaths = append(l.errPaths, sels)
		pos := l.userPos(cueerrors.Positions(e), path)
		if p := writtenPos(l.user.LookupPath(makePath(sels...))); len(sels) > 0 && p.IsValid() && filepath.Dir(p.Filename()) == l.dir && valueCode[code] {
			// The value the user wrote, not the field's label (a
			// disjunction's summary is placed at the label).
			pos = p
		}
		if p := l.conflictPos(l.user.LookupPath(makePath(sels...))); code == "conflict" && p.IsValid() {
			pos = p
		}
		if !pos.IsValid() && len(sels) > 0 {
			// A missing field has only the schema's position: point at the
			// nearest enclosing struct the user wrote.
			pos = l.posOf(sels...)
		}
		l.add(pos, path, code, "%s", cleanMsg(msg))
		if code == "conflict" {
			l.problems[len(l.problems)-1].places = l.conflictPlaces(e)
		}
	}
	// A value outside a disjunction with a default ("5m" | *"30s") fails
	// each disjunct: keep the specific code and drop the bare conflict.
	// Likewise a typo inside one alternative of string | #Secret also
	// fails the alternative as a whole: the typo is the problem.
	specific := map[string]bool{}
	typoIn := map[string]bool{}
	for _, p := range l.problems[first:] {
		if p.Code != "bad-value" {
			specific[p.Path] = true
		}
		if p.Code == "unknown-field" {
			for i := range len(p.Path) {
				if p.Path[i] == '.' {
					typoIn[p.Path[:i]] = true
				}
			}
		}
	}
	var kept Problems
	var covers []string
	for _, p := range l.problems[first:] {
		if p.Code == "bad-value" && specific[p.Path] {
			continue
		}
		if (p.Code == "bad-value" || p.Code == "wrong-type") && typoIn[p.Path] {
			continue
		}
		kept = append(kept, p)
		if p.Code == "wrong-type" || p.Code == "inline-secret" || p.Code == "unknown-field" || p.Code == "bad-name" {
			covers = append(covers, p.Path)
		}
	}
	// Beneath an unknown field, or a value of the wrong kind ("plaintext"
	// where {secret: NAME} goes), the rest is no news.
	out := l.problems[:first]
	for _, p := range kept {
		if slices.ContainsFunc(covers, func(c string) bool { return strings.HasPrefix(p.Path, c+".") }) {
			continue
		}
		out = append(out, p)
	}
	l.problems = out
}

// missingPackages reports every .cue file of the deployment that has
// declarations (or, when no file has one, any file) but no package clause: CUE leaves such a file out of the
// package without a word, so its pipelines would silently never deploy.
// It returns true when no file is left to load.
func (l *loader) missingPackages(files []string) bool {
	pkgs := map[string]bool{}
	var missing, empty []string
	for _, name := range files {
		src, err := l.readFile(name)
		if err != nil {
			continue // the loader reports an unreadable file
		}
		f, err := parser.ParseFile(name, src)
		if err != nil {
			continue // a syntax error: CUE reports it at its place
		}
		if p := f.PackageName(); p != "" {
			pkgs[p] = true
			continue
		}
		if len(f.Decls) > 0 {
			missing = append(missing, name)
		} else {
			empty = append(empty, name)
		}
	}
	if len(pkgs) == 0 {
		// Nothing is loaded at all: an empty file needs its clause too.
		missing = append(missing, empty...)
		sort.Strings(missing)
	}
	want := "deploy"
	if len(pkgs) == 1 {
		for p := range pkgs {
			want = p
		}
	}
	for _, name := range missing {
		l.markDeclared(name)
		l.problems = append(l.problems, Problem{File: l.rel(name), Line: 1, Col: 1, Code: "no-package",
			Msg: fmt.Sprintf("%s has no package clause, so nothing in it is loaded: start it with `package %s`", filepath.Base(name), want), Hint: Codes["no-package"]})
	}
	return len(missing) > 0 && len(pkgs) == 0
}

// writtenPos is where the value itself is written: a field's value, not
// its label.
func writtenPos(v cue.Value) token.Pos {
	if f, ok := v.Source().(*ast.Field); ok && f.Value != nil {
		return f.Value.Pos()
	}
	return v.Pos()
}

// valueCode are the codes about a value the user wrote, placed at it.
var valueCode = map[string]bool{"bad-value": true, "bad-duration": true, "wrong-type": true, "inline-secret": true}

// markDeclared marks the connectors, lookups and pipelines a file that
// is not loaded declares as broken: references to them from the loaded
// files are an echo of its no-package problem, not problems of their own.
func (l *loader) markDeclared(file string) {
	f := l.parsed(file)
	if f == nil {
		return
	}
	for _, d := range f.Decls {
		top, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		sec, _, _ := ast.LabelName(top.Label)
		st, ok := top.Value.(*ast.StructLit)
		if !ok || (sec != "connectors" && sec != "lookups" && sec != "pipelines") {
			continue
		}
		for _, e := range st.Elts {
			if fd, ok := e.(*ast.Field); ok {
				if name, _, err := ast.LabelName(fd.Label); err == nil {
					l.broken[sec+"."+name] = true
				}
			}
		}
	}
}

func trimDef(p []string) []string {
	if len(p) > 0 && p[0] == "#Deployment" {
		return p[1:]
	}
	return p
}

var schemaRef = regexp.MustCompile(`\s*\(and \d+ more errors?\)`)

func cleanMsg(m string) string {
	m = schemaRef.ReplaceAllString(m, "")
	return strings.TrimSpace(m)
}

// userPos picks the first position inside the deployment's own files, else
// any file but the schema (a shared library), else none.
func (l *loader) userPos(ps []token.Pos, path string) token.Pos {
	for _, p := range ps {
		if p.IsValid() && !l.isSchema(p.Filename()) && filepath.Dir(p.Filename()) == l.dir {
			return p
		}
	}
	for _, p := range ps {
		if p.IsValid() && !l.isSchema(p.Filename()) {
			return p
		}
	}
	return token.NoPos
}

// posOf returns the position of the field at sel in the unified value, or
// of its nearest enclosing field that has a position in the user's files.
func (l *loader) posOf(sel ...string) token.Pos {
	if !l.root.Exists() {
		return token.NoPos
	}
	for n := len(sel); n > 0; n-- {
		v := l.root.LookupPath(makePath(sel[:n]...))
		if v.Exists() {
			var ps []token.Pos
			valuePositions(v, 0, &ps)
			if p := l.userPos(ps, ""); p.IsValid() {
				return p
			}
		}
	}
	return token.NoPos
}

// valuePositions collects the positions of a value and of its conjuncts:
// Pos alone may name the schema or a shared library when the deployment
// also wrote the field.
func valuePositions(v cue.Value, depth int, out *[]token.Pos) {
	if p := v.Pos(); p.IsValid() {
		*out = append(*out, p)
	}
	if depth > 4 {
		return
	}
	op, vs := v.Expr()
	if op == cue.NoOp && len(vs) == 1 {
		return // the value itself
	}
	for _, c := range vs {
		valuePositions(c, depth+1, out)
	}
}

// unquoteSels turns CUE path elements into plain labels ("a.b" quoted
// labels lose their quotes) for LookupPath.
func unquoteSels(p []string) []string {
	out := make([]string, len(p))
	for i, s := range p {
		if len(s) >= 2 && s[0] == '"' {
			if u, err := strconv.Unquote(s); err == nil {
				s = u
			}
		}
		out[i] = s
	}
	return out
}

func makePath(sel ...string) cue.Path {
	ss := make([]cue.Selector, 0, len(sel))
	for _, s := range sel {
		if n, err := parseIndex(s); err == nil {
			ss = append(ss, cue.Index(n))
			continue
		}
		ss = append(ss, cue.Str(s))
	}
	return cue.MakePath(ss...)
}

func parseIndex(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("not an index")
	}
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// normalizeNumbers turns json.Number values in free-form fields into
// float64 or int, the number types jq and expr expect.
func normalizeNumbers(s *engine.DeploymentSpec) {
	s.Vars = fixMap(s.Vars)
}

func fixMap(m map[string]any) map[string]any {
	for k, v := range m {
		m[k] = fixAny(v)
	}
	return m
}

func fixAny(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return int(i)
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		return fixMap(x)
	case []any:
		for i := range x {
			x[i] = fixAny(x[i])
		}
	}
	return v
}
