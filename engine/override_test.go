package engine

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPlan_RunOrder(t *testing.T) {
	pl := func(after ...string) *Pipeline {
		return &Pipeline{Spec: PipelineSpec{Trigger: TriggerSpec{After: after}}}
	}
	p := &Plan{
		Order: []string{"a", "b", "c", "d", "x", "y"},
		Pipelines: map[string]*Pipeline{
			"a": pl(), "b": pl("c"), "c": pl("a"), "d": pl(),
			"x": pl("y"), "y": pl("x"), // a cycle nobody starts still runs, last
		},
	}
	want := []string{"a", "c", "b", "d", "x", "y"}
	if diff := cmp.Diff(want, p.RunOrder()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
