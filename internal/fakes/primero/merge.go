package primero

import "reflect"

// mergeData is RecordMergeDataHashService: objects merge key by key, arrays
// of objects (subforms) merge by unique_id, anything else is replaced. A
// subform row carrying a truthy _destroy is removed after the merge.
func mergeData(old, new any) any {
	om, ok1 := old.(map[string]any)
	nm, ok2 := new.(map[string]any)
	if ok1 && ok2 {
		out := make(map[string]any, len(om)+len(nm))
		for k, v := range om {
			out[k] = v
		}
		for k, v := range nm {
			if ov, ok := om[k]; ok {
				out[k] = mergeData(ov, v)
			} else {
				out[k] = v
			}
		}
		return out
	}
	if isArrayOfObjects(old) && isArrayOfObjects(new) {
		merged := mergeRows(old.([]any), new.([]any))
		kept := merged[:0:0]
		for _, row := range merged {
			if m, ok := row.(map[string]any); ok && truthy(m["_destroy"]) {
				continue
			}
			kept = append(kept, row)
		}
		return kept
	}
	return new
}

// isArrayOfObjects is Ruby's `value.blank? || value.first.is_a?(Hash)`: an
// empty array counts, which is why "services_section": [] is a no-op.
func isArrayOfObjects(v any) bool {
	a, ok := v.([]any)
	if !ok {
		return false
	}
	if len(a) == 0 {
		return true
	}
	_, ok = a[0].(map[string]any)
	return ok
}

func mergeRows(old, new []any) []any {
	out := make([]any, 0, len(old)+len(new))
	for _, o := range old {
		om, _ := o.(map[string]any)
		oid := om["unique_id"]
		if oid == nil {
			out = append(out, o)
			continue
		}
		var match map[string]any
		for _, n := range new {
			if nm, ok := n.(map[string]any); ok && sameID(nm["unique_id"], oid) {
				match = nm
				break
			}
		}
		if match == nil {
			out = append(out, o)
			continue
		}
		out = append(out, mergeData(om, match))
	}
	for _, n := range new {
		nm, _ := n.(map[string]any)
		found := false
		for _, o := range out {
			if om, ok := o.(map[string]any); ok && sameID(om["unique_id"], nm["unique_id"]) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, n)
		}
	}
	return out
}

// sameID compares unique_ids as Ruby's == would, nil included, without
// panicking on a value of an incomparable type.
func sameID(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	as, ok1 := a.(string)
	bs, ok2 := b.(string)
	return ok1 && ok2 && as == bs
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	}
	return true
}

// changedKeys lists the top-level keys whose values differ between two
// versions of a document.
func changedKeys(before, after map[string]any) []string {
	var out []string
	for k, v := range after {
		if ov, ok := before[k]; !ok || !reflect.DeepEqual(ov, v) {
			out = append(out, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}
