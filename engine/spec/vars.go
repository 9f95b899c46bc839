package spec

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"unicode/utf8"

	exprast "github.com/expr-lang/expr/ast"
	exprparser "github.com/expr-lang/expr/parser"
	"github.com/itchyny/gojq"
)

// vars is a constant of the deployment, so every key a program reads from
// it ($vars.a.b in jq, vars.a.b in expr) is checked at load: a typo would
// otherwise read null at run time, and an echo filter comparing with null
// lets every record through.

// varsRef is one read of a key path from vars: the keys in order, and the
// byte offset of each key inside the program (-1 when not known).
type varsRef struct {
	keys []string
	offs []int
}

// checkVars reports the first key of each reference that vars lacks, at
// its place inside the program (which starts at byte base of the spec
// string at `at`).
func (b *builder) checkVars(at []string, base int, refs []varsRef) {
	if b.l.broken["vars"] || len(refs) == 0 {
		return
	}
	for _, r := range refs {
		var cur any = b.spec.Vars
		for i, k := range r.keys {
			m, ok := cur.(map[string]any)
			if !ok {
				break // a list or a scalar: what it holds is the program's business
			}
			v, ok := m[k]
			if !ok {
				where := "vars"
				if i > 0 {
					where += "." + strings.Join(r.keys[:i], ".")
				}
				b.programPlace(at, "unknown-var", base+r.offs[i], r.offs[i] >= 0,
					"%s has no key %q (it has: %s)", where, k, strings.Join(sortedKeys(m), ", "))
				break
			}
			cur = v
		}
	}
}

// programPlace adds a problem at byte off of the program string at `at`
// (when known), else at the string itself.
func (b *builder) programPlace(at []string, code string, off int, known bool, format string, args ...any) {
	lit := b.l.posOf(at...)
	if !lit.IsValid() || !known {
		b.l.add(lit, joinPath(at), code, format, args...)
		return
	}
	src := b.programSrc(at)
	file, line, col := b.l.programPos(at, lit, src, off)
	b.l.problems = append(b.l.problems, Problem{File: b.l.rel(file), Line: line, Col: col, Path: joinPath(at),
		Code: code, Msg: fmt.Sprintf(format, args...), Hint: Codes[code]})
}

// programSrc is the decoded string at `at` in the unified spec.
func (b *builder) programSrc(at []string) string {
	if !b.l.root.Exists() {
		return ""
	}
	s, _ := b.l.root.LookupPath(makePath(at...)).String()
	return s
}

// jqVarsRefs lists the $vars key paths a jq program reads, each key with
// its offset in src.
func jqVarsRefs(src string) []varsRef {
	q, err := gojq.Parse(src)
	if err != nil {
		return nil
	}
	var refs []varsRef
	walkTerms(reflect.ValueOf(q), func(t *gojq.Term) {
		if t.Type != gojq.TermTypeFunc || t.Func == nil || t.Func.Name != "$vars" {
			return
		}
		var keys []string
		for _, s := range t.SuffixList {
			k, ok := constIndex(s)
			if !ok {
				break
			}
			keys = append(keys, k)
		}
		if len(keys) > 0 {
			refs = append(refs, varsRef{keys: keys})
		}
	})
	// gojq keeps no positions: find each reference in the text, in order,
	// each occurrence used once.
	used := map[int]bool{}
	for i := range refs {
		refs[i].offs = make([]int, len(refs[i].keys))
		for k := range refs[i].offs {
			refs[i].offs[k] = -1
		}
		for _, m := range jqVarsPattern(refs[i].keys).FindAllStringSubmatchIndex(src, -1) {
			if used[m[0]] {
				continue
			}
			used[m[0]] = true
			for k := range refs[i].keys {
				if g := m[2+2*k]; g >= 0 {
					refs[i].offs[k] = g
				}
			}
			break
		}
	}
	return refs
}

// jqVarsPattern matches $vars followed by keys, one group per key.
func jqVarsPattern(keys []string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`\$vars\b`)
	for _, k := range keys {
		q := regexp.QuoteMeta(k)
		fmt.Fprintf(&b, `\s*\??\s*(?:\.\s*"?(%s)"?|\[\s*"(?:%s)"\s*\])`, q, q)
	}
	return regexp.MustCompile(b.String())
}

// constIndex is the key of a suffix .name, ."name" or ["name"].
func constIndex(s *gojq.Suffix) (string, bool) {
	x := s.Index
	if x == nil || s.Iter || x.IsSlice {
		return "", false
	}
	if x.Name != "" {
		return x.Name, true
	}
	if x.Str != nil && len(x.Str.Queries) == 0 {
		return x.Str.Str, true
	}
	if x.Start != nil && x.End == nil && x.Start.Term != nil && x.Start.Term.Type == gojq.TermTypeString &&
		x.Start.Term.Str != nil && len(x.Start.Term.Str.Queries) == 0 && len(x.Start.Term.SuffixList) == 0 {
		return x.Start.Term.Str.Str, true
	}
	return "", false
}

var termType = reflect.TypeOf(&gojq.Term{})

// walkTerms calls fn for every term of a parsed jq program. gojq's AST is
// a tree of pointers, slices and structs without cycles.
func walkTerms(v reflect.Value, fn func(*gojq.Term)) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		if v.Type() == termType {
			fn(v.Interface().(*gojq.Term))
		}
		walkTerms(v.Elem(), fn)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				walkTerms(v.Field(i), fn)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			walkTerms(v.Index(i), fn)
		}
	}
}

// exprVarsRefs lists the vars key paths an expr expression reads.
func exprVarsRefs(src string) []varsRef {
	tree, err := exprparser.Parse(src)
	if err != nil {
		return nil
	}
	v := &exprVarsVisitor{src: src}
	exprast.Walk(&tree.Node, v)
	return v.refs
}

type exprVarsVisitor struct {
	src  string
	refs []varsRef
}

// Visit sees children before parents: a chain vars.a.b is seen as vars.a
// first. Each chain is read once, from its outermost member.
func (v *exprVarsVisitor) Visit(n *exprast.Node) {
	m, ok := (*n).(*exprast.MemberNode)
	if !ok {
		return
	}
	var keys []string
	var offs []int
	cur := exprast.Node(m)
	for {
		mm, ok := cur.(*exprast.MemberNode)
		if !ok {
			break
		}
		s, ok := mm.Property.(*exprast.StringNode)
		if !ok {
			keys, offs = nil, nil // a computed key: only what follows it is known, and not from vars
		} else {
			keys = append([]string{s.Value}, keys...)
			offs = append([]int{runeToByte(v.src, mm.Property.Location().From)}, offs...)
		}
		cur = mm.Node
	}
	id, ok := cur.(*exprast.IdentifierNode)
	if !ok || id.Value != "vars" || len(keys) == 0 {
		return
	}
	// Drop the shorter chains already recorded for this one's prefix.
	out := v.refs[:0]
	for _, r := range v.refs {
		if len(r.keys) < len(keys) && r.offs[0] == offs[0] {
			continue
		}
		out = append(out, r)
	}
	v.refs = append(out, varsRef{keys: keys, offs: offs})
}

// runeToByte turns expr's rune offset into a byte offset of src, past a
// quote when the key is written ["key"].
func runeToByte(src string, r int) int {
	off := 0
	for i := 0; i < r && off < len(src); i++ {
		_, size := utf8.DecodeRuneInString(src[off:])
		off += size
	}
	if off < len(src) && (src[off] == '"' || src[off] == '\'') {
		off++
	}
	return off
}
