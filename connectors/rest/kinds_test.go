package rest_test

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/connectors/rest"
	"casesync/engine"
)

// The auth and pagination tables must name exactly the schema's kinds:
// the fields of engine.AuthSpec / engine.PaginationSpec, and the variants
// of #Auth / #Pagination in specs/lib/schema/pipeline.cue.
func TestKinds_MatchSchema(t *testing.T) {
	schema, err := os.ReadFile("../../specs/lib/schema/pipeline.cue")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		got    []string
		spec   reflect.Type
		schema string
	}{
		{"auth", rest.AuthKindNames(), reflect.TypeFor[engine.AuthSpec](), "#Auth"},
		{"pagination", rest.PaginatorNames(), reflect.TypeFor[engine.PaginationSpec](), "#Pagination"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var fromGo []string
			for f := range tc.spec.Fields() {
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				fromGo = append(fromGo, name)
			}
			slices.Sort(fromGo)
			if diff := cmp.Diff(fromGo, tc.got); diff != "" {
				t.Errorf("table keys vs %s fields (-spec +table):\n%s", tc.spec.Name(), diff)
			}
			fromCUE := cueVariants(t, string(schema), tc.schema)
			if diff := cmp.Diff(fromCUE, tc.got); diff != "" {
				t.Errorf("table keys vs %s in pipeline.cue (-schema +table):\n%s", tc.schema, diff)
			}
		})
	}
}

// cueVariants lists the optional struct fields at the top level of a
// definition: the schema writes each kind as `\tname?: {`.
func cueVariants(tb testing.TB, src, def string) []string {
	tb.Helper()
	start := strings.Index(src, "\n"+def+": {\n")
	if start < 0 {
		tb.Fatalf("%s not found in schema", def)
	}
	body := src[start+len(def)+5:]
	body = body[:strings.Index(body, "\n}\n")]
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^\t([a-z_0-9]+)\?: \{`).FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return out
}
