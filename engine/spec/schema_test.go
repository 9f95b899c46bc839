package spec

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"

	"casesync/engine"
	"casesync/schemas"
)

// TestSchema_GoTypesMatch walks specs/lib/schema/pipeline.cue from #Deployment and
// engine.DeploymentSpec side by side and compares the field names of every
// struct both ways: a field in the schema that Go forgot would be dropped
// by a lenient decode, and a Go field the schema lacks can never be set.
func TestSchema_GoTypesMatch(t *testing.T) {
	diffs, walked := compareSchema(t, string(schemas.Pipeline))
	for _, d := range diffs {
		t.Error(d)
	}
	if walked < 35 {
		t.Errorf("walked only %d Go struct types; the walk lost its way", walked)
	}
}

// The comparison itself notices drift deep in the tree, both ways.
func TestSchema_GoTypesMatch_SeesDrift(t *testing.T) {
	s := string(schemas.Pipeline)
	s = strings.Replace(s, "day_start: bool | *false", "day_starts: bool | *false", 1)
	s = strings.Replace(s, "#Filter: {", "#Filter: {\n\tnote?: string", 1)
	diffs, _ := compareSchema(t, s)
	want := []string{
		"#Deployment.pipelines.x.filter[].note is in the schema but not in Go's engine.FilterSpec",
		"#Deployment.pipelines.x.source.cursor.day_start: Go's engine.CursorSpec has json field \"day_start\" that the schema lacks",
		"#Deployment.pipelines.x.source.cursor.day_starts is in the schema but not in Go's engine.CursorSpec",
	}
	if !slices.Equal(diffs, want) {
		t.Errorf("differences:\n%s\nwant:\n%s", strings.Join(diffs, "\n"), strings.Join(want, "\n"))
	}
}

func compareSchema(t *testing.T, text string) (diffs []string, walked int) {
	t.Helper()
	ctx := cuecontext.New()
	schema := ctx.CompileString(text, cue.Filename(schemas.Filename))
	if err := schema.Err(); err != nil {
		t.Fatal(err)
	}
	def := schema.LookupPath(cue.ParsePath("#Deployment"))
	c := &comparer{seen: map[reflect.Type]bool{}}
	c.compareStruct("#Deployment", def, reflect.TypeFor[engine.DeploymentSpec]())
	sort.Strings(c.diffs)
	return c.diffs, len(c.seen)
}

type comparer struct {
	seen  map[reflect.Type]bool
	diffs []string
}

func (c *comparer) errorf(format string, args ...any) {
	c.diffs = append(c.diffs, fmt.Sprintf(format, args...))
}

var textType = reflect.TypeFor[engine.Text]()

func (c *comparer) compareStruct(path string, v cue.Value, typ reflect.Type) {
	if c.seen[typ] {
		return
	}
	c.seen[typ] = true
	goFields := jsonFields(typ)
	cueFields := map[string]cue.Value{}
	it, err := v.Fields(cue.Optional(true))
	if err != nil {
		c.errorf("%s: %v", path, err)
		return
	}
	for it.Next() {
		cueFields[it.Selector().Unquoted()] = it.Value()
	}
	for name := range cueFields {
		if _, ok := goFields[name]; !ok {
			c.errorf("%s.%s is in the schema but not in Go's %s", path, name, typ)
		}
	}
	for name := range goFields {
		if _, ok := cueFields[name]; !ok {
			c.errorf("%s.%s: Go's %s has json field %q that the schema lacks", path, name, typ, name)
		}
	}
	for _, name := range sortedKeys(goFields) {
		cv, ok := cueFields[name]
		if !ok {
			continue
		}
		c.compareValue(path+"."+name, cv, goFields[name])
	}
}

// compareValue descends into struct-like values: structs, pointers to
// structs, maps of structs (a [#Name]: #X pattern) and slices of structs.
func (c *comparer) compareValue(path string, v cue.Value, typ reflect.Type) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch {
	case typ == textType:
		return // string | #Secret, decoded by hand
	case typ.Kind() == reflect.Struct:
		c.compareStruct(path, v, typ)
	case typ.Kind() == reflect.Map && structLike(typ.Elem()):
		// Fill one entry so the pattern constraint applies to it.
		x := v.FillPath(cue.MakePath(cue.Str("x")), map[string]any{})
		c.compareValue(path+".x", x.LookupPath(cue.MakePath(cue.Str("x"))), typ.Elem())
	case typ.Kind() == reflect.Slice && structLike(typ.Elem()):
		c.compareValue(path+"[]", v.LookupPath(cue.MakePath(cue.AnyIndex)), typ.Elem())
	}
}

func structLike(typ reflect.Type) bool {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	return typ.Kind() == reflect.Struct && typ != textType
}

// jsonFields lists a struct's JSON names, flattening embedded structs.
func jsonFields(typ reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Anonymous && f.Tag.Get("json") == "" {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// TestSchema_StrictDecodeCatchesDrift: the loader's decode of the unified
// spec fails when the schema has a field Go forgot, instead of dropping it.
func TestSchema_StrictDecodeCatchesDrift(t *testing.T) {
	const deployment = `
connectors: api: base_url: "http://localhost:1"
pipelines: p: {
	source: {connector: "api", path: "/items", key: ".id"}
	map: id: jq: ".id"
	upsert: {connector: "api", key: ".id", idempotent: true, create: {method: "POST", path: "/items"}}
}`
	decode := func(t *testing.T, schemaText string) error {
		t.Helper()
		ctx := cuecontext.New()
		schema := ctx.CompileString(schemaText, cue.Filename(schemas.Filename))
		if err := schema.Err(); err != nil {
			t.Fatal(err)
		}
		u := schema.LookupPath(cue.ParsePath("#Deployment")).Unify(ctx.CompileString(deployment))
		if err := u.Validate(cue.Concrete(true), cue.Final()); err != nil {
			t.Fatal(err)
		}
		var out engine.DeploymentSpec
		return (&loader{}).decode(u, &out)
	}
	if err := decode(t, string(schemas.Pipeline)); err != nil {
		t.Fatalf("the shipped schema does not decode: %v", err)
	}
	// A new connector field with a default: every unified connector has it.
	drifted := strings.Replace(string(schemas.Pipeline), "#Connector: {", "#Connector: {\n\tkeep_alive: bool | *true", 1)
	if drifted == string(schemas.Pipeline) {
		t.Fatal("schema has no #Connector to extend")
	}
	err := decode(t, drifted)
	if err == nil || !strings.Contains(err.Error(), "keep_alive") {
		t.Fatalf("decode with a field Go lacks: got %v, want an unknown field error naming keep_alive", err)
	}
}

// TestSchema_CodesHaveHints: every code has a hint, and the codes the
// loader emits are all listed.
func TestSchema_CodesHaveHints(t *testing.T) {
	var codes []string
	for code, hint := range Codes {
		if hint == "" {
			t.Errorf("code %s has no hint", code)
		}
		codes = append(codes, code)
	}
	sort.Strings(codes)
	for _, c := range []string{"unknown-field", "missing-field", "wrong-type", "bad-value", "inline-secret", "bad-duration", "undefined-reference", "load", "syntax", "incomplete"} {
		if !slices.Contains(codes, c) {
			t.Errorf("code %s is missing from Codes", c)
		}
	}
}
