package engine

import (
	"context"
	"fmt"
	"slices"

	"casesync/engine/mapping"
)

// pickIndex narrows a cached list answer to each record's items (an enrich
// step's pick). Without it a record's jq scans the whole list (every
// client a system lists, for each referral): a run costs records × items.
// It is built once per cached answer and only read afterwards.
type pickIndex struct {
	items []any
	// byRule[i] maps an item's key under rule i to the item's positions.
	byRule []map[string][]int
}

// pickKey is the key a value is found by: equal keys for values jq calls
// equal (strings, numbers, null, …), so a pick keeps what the record's
// own jq comparison would keep.
func pickKey(v any) string {
	switch x := v.(type) {
	case nil:
		return "n"
	case string:
		return "s" + x
	case bool:
		if x {
			return "t"
		}
		return "f"
	}
	b, err := MarshalJSON(v)
	if err != nil {
		return "?" + fmt.Sprint(v)
	}
	return "j" + string(b)
}

// buildPick indexes a cached answer for the step's pick rules.
func buildPick(ctx context.Context, e *Enrich, answer any, vars *mapping.Vars) (*pickIndex, error) {
	items, ok := answer.([]any)
	if !ok {
		return nil, fmt.Errorf("enrich %s: pick needs a list answer, got a JSON %s", e.Name, mapping.TypeName(answer))
	}
	ix := &pickIndex{items: items, byRule: make([]map[string][]int, len(e.Pick))}
	for r, rule := range e.Pick {
		m := make(map[string][]int, len(items))
		for i, it := range items {
			v, err := rule.By.One(ctx, it, vars)
			if err != nil {
				return nil, fmt.Errorf("enrich %s: pick %d by %s on item %d: %w", e.Name, r, rule.By, i, err)
			}
			k := pickKey(v)
			m[k] = append(m[k], i)
		}
		ix.byRule[r] = m
	}
	return ix, nil
}

// pick returns the items of the answer that the record's values find, in
// the answer's order, each once.
func (ix *pickIndex) pick(ctx context.Context, e *Enrich, rec map[string]any, vars *mapping.Vars) ([]any, error) {
	var at []int
	for r, rule := range e.Pick {
		v, err := rule.Values.One(ctx, rec, vars)
		if err != nil {
			return nil, fmt.Errorf("enrich %s: pick %d values %s: %w", e.Name, r, rule.Values, err)
		}
		vals, isList := v.([]any)
		if !isList {
			vals = []any{v}
		}
		for _, x := range vals {
			at = append(at, ix.byRule[r][pickKey(x)]...)
		}
	}
	slices.Sort(at)
	at = slices.Compact(at)
	out := make([]any, len(at))
	for i, p := range at {
		out[i] = ix.items[p]
	}
	return out, nil
}
