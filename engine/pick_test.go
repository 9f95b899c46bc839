package engine

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"casesync/engine/mapping"
)

// A pick must keep exactly the items a record's own jq comparison would
// keep (a superset of them, in the answer's order, each once): the shipped
// specs filter the picked list again with the same comparisons.
func TestPick(t *testing.T) {
	clients := `[
		{"id": 1, "global_id": "G1", "external_id": "C1", "org": "a"},
		{"id": 2, "global_id": "G2", "external_id": null, "org": "b"},
		{"id": 3, "global_id": "G1", "external_id": "C9", "org": "b"},
		{"id": 4, "global_id": null, "external_id": "C1", "org": "c"},
		{"id": 5, "global_id": 7, "external_id": "", "org": "d"}
	]`
	rules := []Pick{
		{By: mapping.MustJQ(".global_id"), Values: mapping.MustJQ("[.oscar_number]")},
		{By: mapping.MustJQ(".external_id"), Values: mapping.MustJQ("[.case_id]")},
	}
	tests := []struct {
		name   string
		rules  []Pick
		record string
		want   []int // ids, in the answer's order
	}{
		{"by either rule, in list order, each once", rules, `{"oscar_number": "G1", "case_id": "C1"}`, []int{1, 3, 4}},
		{"second rule only", rules, `{"oscar_number": "G9", "case_id": "C9"}`, []int{3}},
		{"no match", rules, `{"oscar_number": "G9", "case_id": "C8"}`, []int{}},
		// jq's null == null holds: a record without an id finds the items
		// without one, as its own comparison would.
		{"null finds null", rules, `{"case_id": "C8"}`, []int{4}},
		{"numbers compare as numbers", rules, `{"oscar_number": 7.0, "case_id": "C8"}`, []int{5}},
		{"a string is not a number", rules, `{"oscar_number": "7", "case_id": "C8"}`, []int{}},
		{"a single value, not an array", []Pick{{By: mapping.MustJQ(".org"), Values: mapping.MustJQ(".org")}}, `{"org": "b"}`, []int{2, 3}},
		{"several values of one rule", []Pick{{By: mapping.MustJQ(".org"), Values: mapping.MustJQ(`["d", "a", "d"]`)}}, `{}`, []int{1, 5}},
	}
	ctx := context.Background()
	var answer any
	if err := json.Unmarshal([]byte(clients), &answer); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &Enrich{Name: "clients", Pick: tc.rules}
			ix, err := buildPick(ctx, e, answer, &mapping.Vars{})
			if err != nil {
				t.Fatal(err)
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(tc.record), &rec); err != nil {
				t.Fatal(err)
			}
			got, err := ix.pick(ctx, e, rec, &mapping.Vars{})
			if err != nil {
				t.Fatal(err)
			}
			ids := []int{}
			for _, it := range got {
				ids = append(ids, int(it.(map[string]any)["id"].(float64)))
			}
			if !slices.Equal(ids, tc.want) {
				t.Errorf("picked %v, want %v", ids, tc.want)
			}
		})
	}
}

// An answer that is no list, or an item its rule cannot read, is an error
// naming the step, never an empty pick.
func TestPickErrors(t *testing.T) {
	ctx := context.Background()
	e := &Enrich{Name: "clients", Pick: []Pick{{By: mapping.MustJQ(".global_id"), Values: mapping.MustJQ("[.x]")}}}
	if _, err := buildPick(ctx, e, map[string]any{"data": []any{}}, &mapping.Vars{}); err == nil || !strings.Contains(err.Error(), "enrich clients: pick needs a list answer, got a JSON object") {
		t.Errorf("object answer: %v", err)
	}
	if _, err := buildPick(ctx, e, []any{"a string"}, &mapping.Vars{}); err == nil || !strings.Contains(err.Error(), "enrich clients: pick 0 by .global_id on item 0") {
		t.Errorf("unreadable item: %v", err)
	}
}
