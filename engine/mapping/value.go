package mapping

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// Value is one compiled mapped value: exactly one of JQ, Expr, Const,
// Fields or Each (with Map) is set.
type Value struct {
	JQ         *JQ
	Expr       *Expr
	Const      any
	HasConst   bool
	Fields     []Field
	Each       *JQ
	Map        []Field
	Default    any
	HasDefault bool
	OmitEmpty  bool
	// Secret names a secret whose value is sent here: the payload holds
	// a SecretRef, which the connector resolves only as the request leaves.
	Secret string
}

// SecretRef stands in a payload for a secret's value. It marshals as
// "{secret: NAME}", so a preview, a log or a payload hash never holds the
// value.
type SecretRef struct{ Name string }

// MarshalJSON writes the reference, not the value.
func (s SecretRef) MarshalJSON() ([]byte, error) { return json.Marshal("{secret: " + s.Name + "}") }

// Field is a named value; Pos is where the spec declares it ("file:line:col").
type Field struct {
	Name  string
	Pos   string
	Value *Value
}

// FieldError is a mapping failure naming the field and its spec position.
// It never carries the record's content.
type FieldError struct {
	Field string // dotted path inside the payload, e.g. "services[0].name"
	Pos   string
	Err   error
}

func (e *FieldError) Error() string {
	if e.Pos != "" {
		return fmt.Sprintf("%s (%s): %v", e.Field, e.Pos, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Field, e.Err)
}
func (e *FieldError) Unwrap() error { return e.Err }

// Mapping builds a payload object from an input record.
type Mapping struct {
	Fields []Field
	// Limits bound the whole mapping of one input (zero: the defaults):
	// its programs share one deadline, which also spares each its own.
	Limits Limits

	once sync.Once
	// same[i] is the earlier top-level field whose jq program is the same
	// pure program as field i's (two codes from one location), else -1;
	// nil when no two fields share one.
	same []int
}

// Apply maps input. The first failing field stops the record: a half-built
// payload must never be written.
func (m *Mapping) Apply(ctx context.Context, input any, v *Vars) (map[string]any, error) {
	ctx, cancel := m.Limits.bounded(ctx)
	defer cancel()
	m.once.Do(m.findSame)
	return applyFields(ctx, m.Fields, input, &varValues{v: v, same: m.same}, "")
}

// findSame pairs the top-level fields that run one pure jq program on the
// same input, so it runs once per record.
func (m *Mapping) findSame() {
	first := map[string]int{}
	same := make([]int, len(m.Fields))
	found := false
	for i, f := range m.Fields {
		same[i] = -1
		j := f.Value.JQ
		if j == nil || !j.pure || j.path != nil {
			continue // a fast path costs less than the lookup
		}
		if k, ok := first[j.src]; ok {
			same[i], found = k, true
			continue
		}
		first[j.src] = i
	}
	if found {
		m.same = same
	}
}

func applyFields(ctx context.Context, fields []Field, input any, v *varValues, prefix string) (map[string]any, error) {
	out := make(map[string]any, len(fields))
	same := v.same
	v.same = nil  // nested fields and each-maps have other inputs
	var ran []any // raw values of the programs, by field, when same pairs some
	if same != nil {
		ran = make([]any, len(fields))
	}
	for i, f := range fields {
		name := prefix + f.Name
		var x any
		var err error
		if same != nil && same[i] >= 0 {
			// The earlier field's program value, with this field's default.
			if x = ran[same[i]]; x == nil && f.Value.HasDefault {
				x = f.Value.Default
			}
		} else {
			x, err = f.Value.eval(ctx, input, v, name)
			if same != nil && f.Value.JQ != nil {
				ran[i] = v.last
			}
		}
		if err != nil {
			if _, ok := err.(*FieldError); ok {
				return nil, err
			}
			return nil, &FieldError{Field: name, Pos: f.Pos, Err: err}
		}
		if f.Value.OmitEmpty && isBlank(x) {
			continue
		}
		out[f.Name] = x
	}
	return out, nil
}

func (val *Value) eval(ctx context.Context, input any, v *varValues, name string) (any, error) {
	var x any
	var err error
	switch {
	case val.JQ != nil:
		x, err = val.JQ.one(ctx, input, v)
		v.last = x
	case val.Expr != nil:
		env := ExprEnvFor(input, v.v)
		x, err = val.Expr.Run(env)
	case val.HasConst:
		x = val.Const
	case val.Secret != "":
		x = SecretRef{Name: val.Secret}
	case val.Fields != nil:
		x, err = applyFields(ctx, val.Fields, input, v, name+".")
	case val.Each != nil:
		var items []any
		items, err = val.Each.all(ctx, input, v)
		if err != nil {
			break
		}
		// each yields the elements: a single array value is spread.
		if len(items) == 1 {
			if arr, ok := items[0].([]any); ok {
				items = arr
			}
		}
		list := make([]any, 0, len(items))
		for i, it := range items {
			obj, ferr := applyFields(ctx, val.Map, it, v, fmt.Sprintf("%s[%d].", name, i))
			if ferr != nil {
				return nil, ferr
			}
			list = append(list, obj)
		}
		x = list
	}
	if err != nil {
		return nil, err
	}
	if x == nil && val.HasDefault {
		x = val.Default
	}
	return x, nil
}

// ExprEnvFor builds the expr environment for input and vars.
func ExprEnvFor(input any, v *Vars) *Env {
	env := &Env{}
	if m, ok := input.(map[string]any); ok {
		env.Record = m
	}
	if v != nil {
		env.Vars = v.Vars
		env.Cursor = v.Cursor
		if v.Now != "" {
			env.Now, _ = time.Parse(time.RFC3339, v.Now)
		}
		if p, ok := v.Payload.(map[string]any); ok {
			env.Payload = p
		}
		if v.TargetID != nil {
			env.TargetID = keyString(v.TargetID)
		}
		env.Delivery, _ = v.Delivery.(map[string]any)
		env.Outcome, _ = v.Outcome.(map[string]any)
		env.rt = v.Runtime
	}
	return env
}
