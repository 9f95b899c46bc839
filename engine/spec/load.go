package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/load"
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
func Load(dir string, opts Options) (*engine.Plan, error) {
	l, err := newLoader(dir, opts)
	if err != nil {
		return nil, err
	}
	plan := l.load()
	if len(l.problems) > 0 {
		return nil, l.problems.Sort()
	}
	return plan, nil
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
	files    map[string]bool // user files seen, absolute
	root     cue.Value       // the unified deployment
	schema   string
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
	return &loader{dir: abs, cwd: cwd, files: map[string]bool{}}, nil
}

func (l *loader) rel(file string) string {
	if file == "" || file == schemas.Filename {
		return file
	}
	if r, err := filepath.Rel(l.cwd, file); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return file
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
	ctx := cuecontext.New()
	insts := load.Instances([]string{"."}, &load.Config{Dir: l.dir})
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
	if err := u.Validate(cue.Concrete(true), cue.Final()); err != nil {
		l.cueErrors(err, "")
		return nil
	}
	l.root = u
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

// decode goes through JSON with unknown fields disallowed: Decode would
// ignore a field the schema has and Go forgot.
func (l *loader) decode(v cue.Value, out *engine.DeploymentSpec) error {
	b, err := v.MarshalJSON()
	if err != nil {
		return err
	}
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
func (l *loader) hash() (string, error) {
	h := sha256.New()
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
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
	type key struct{ path, code string }
	seen := map[key]bool{}
	for _, e := range cueerrors.Errors(err) {
		format, args := e.Msg()
		msg := fmt.Sprintf(format, args...)
		if strings.Contains(format, "errors in empty disjunction") {
			continue // the disjuncts' own errors follow
		}
		path := strings.Join(trimDef(cueerrors.Path(e)), ".")
		code := force
		if code == "" {
			code = classify(format, msg, path)
		}
		k := key{path, code}
		if seen[k] {
			continue
		}
		seen[k] = true
		pos := l.userPos(cueerrors.Positions(e), path)
		if code == "inline-secret" {
			msg = "a secret value is written in the spec"
		}
		l.add(pos, path, code, "%s", cleanMsg(msg))
	}
}

func trimDef(p []string) []string {
	if len(p) > 0 && p[0] == "#Deployment" {
		return p[1:]
	}
	return p
}

func classify(format, msg, path string) string {
	last := path
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		last = path[i+1:]
	}
	switch {
	case strings.Contains(format, "field not allowed"):
		return "unknown-field"
	case strings.Contains(format, "field is required but not present"):
		return "missing-field"
	case strings.Contains(format, "mismatched types") && strings.Contains(msg, "{secret!:") && strings.Contains(msg, "string and struct") && secretFields[last]:
		return "inline-secret"
	case strings.Contains(format, "mismatched types"):
		return "wrong-type"
	case strings.Contains(format, "incomplete value") || strings.Contains(format, "non-concrete"):
		return "incomplete"
	case strings.Contains(format, "expected"), strings.Contains(format, "syntax"):
		return "syntax"
	}
	return "bad-value"
}

var schemaRef = regexp.MustCompile(`\s*\(and \d+ more errors?\)`)

func cleanMsg(m string) string {
	m = schemaRef.ReplaceAllString(m, "")
	return strings.TrimSpace(m)
}

// userPos picks the first position inside the deployment's own files (or
// any file but the schema), else the position of the nearest existing
// parent of path in the unified value.
func (l *loader) userPos(ps []token.Pos, path string) token.Pos {
	for _, p := range ps {
		if p.IsValid() && p.Filename() != schemas.Filename && filepath.Dir(p.Filename()) == l.dir {
			return p
		}
	}
	for _, p := range ps {
		if p.IsValid() && p.Filename() != schemas.Filename {
			return p
		}
	}
	return token.NoPos
}

// posOf returns the position of the field at sel in the unified value.
func (l *loader) posOf(sel ...string) token.Pos {
	if !l.root.Exists() {
		return token.NoPos
	}
	for n := len(sel); n > 0; n-- {
		v := l.root.LookupPath(makePath(sel[:n]...))
		if v.Exists() {
			if p := userValuePos(v, l.dir); p.IsValid() {
				return p
			}
		}
	}
	return token.NoPos
}

// userValuePos prefers a position in the user's files among the value's
// conjuncts: Pos alone may name the schema.
func userValuePos(v cue.Value, dir string) token.Pos {
	p := v.Pos()
	if p.IsValid() && p.Filename() != schemas.Filename {
		return p
	}
	_, vs := v.Expr()
	for _, c := range vs {
		if q := userValuePos(c, dir); q.IsValid() {
			return q
		}
	}
	return token.NoPos
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
