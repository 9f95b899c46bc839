package mapping

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestJQ_FastPathMatchesGojq: plain paths skip gojq; they must answer
// exactly as gojq does, errors included.
func TestJQ_FastPathMatchesGojq(t *testing.T) {
	inputs := []any{nil, "s", 1.0, []any{1.0}, map[string]any{}, map[string]any{"a": nil},
		map[string]any{"a": map[string]any{"b": "x"}}, map[string]any{"a": "str"}, map[string]any{"a": []any{}}}
	for _, src := range []string{".a", ".a.b", " .a.b "} {
		j := MustCompile(t, src, nil)
		if j.path == nil {
			t.Fatalf("%q not on the fast path", src)
		}
		for _, in := range inputs {
			fast, ferr := j.One(context.Background(), in, nil)
			slow := &JQ{src: j.src, code: j.code}
			want, werr := slow.One(context.Background(), in, nil)
			if (ferr != nil) != (werr != nil) || !cmp.Equal(fast, want) {
				t.Errorf("%q on %v: fast (%v, %v), gojq (%v, %v)", src, in, fast, ferr, want, werr)
			}
		}
	}
	if MustCompile(t, ".a | .b", nil).path != nil || MustCompile(t, `.["a"]`, nil).path != nil {
		t.Error("non-trivial programs must run in gojq")
	}
}

func BenchmarkMicro_OneField(b *testing.B) {
	j := MustCompile(b, ".case_id", NewRegistry())
	rec := map[string]any{"case_id": "x"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		j.One(ctx, rec, nil)
	}
}
