package spec

import (
	"casesync/engine"
	"casesync/engine/mapping"
)

// sensitivity warns about mapped fields that send personal-looking data
// without a class: a field whose name, or a source field it reads, looks
// like one that holds personal data (date_of_birth, phone, diagnosis) and
// that the deployment's sensitivity block neither classifies nor declares
// "none". Such a field would print in clear under --redact-pii, stay in
// error texts and be missing its class in the manifest.
func (b *builder) sensitivity(plan *engine.Plan) {
	for _, name := range plan.Order {
		p := plan.Pipelines[name]
		if p.Map == nil {
			continue
		}
		b.unclassified(plan, append(append([]string{}, b.pipelineAt[name]...), "map"), p.Map.Fields)
	}
}

func (b *builder) unclassified(plan *engine.Plan, at []string, fields []mapping.Field) {
	for _, f := range fields {
		fat := append(append([]string{}, at...), f.Name)
		if v := f.Value; v != nil && (v.Fields != nil || v.Map != nil) {
			nested := v.Fields
			nat := append(fat, "fields")
			if v.Map != nil {
				nested, nat = v.Map, append(fat, "map")
			}
			if c, _ := plan.MapFieldClass(mapping.Field{Name: f.Name}); c == "" && !plan.Declared(f.Name) {
				b.unclassified(plan, nat, nested)
			}
			continue
		}
		if c, _ := plan.MapFieldClass(f); c != "" || plan.Declared(f.Name) {
			continue
		}
		names := append([]string{f.Name}, engine.SourceFields(f.Value)...)
		for _, n := range names {
			if plan.Declared(n) {
				continue
			}
			if c := engine.ClassBearing(n); c != "" {
				if n == f.Name {
					b.warn(fat, "unclassified-field", "%s looks like %s data but has no class: add sensitivity: %s: %q (or \"none\")", n, c, n, c)
				} else {
					b.warn(fat, "unclassified-field", "%s sends %s, which looks like %s data but has no class: add sensitivity: %s: %q (or \"none\")", f.Name, n, c, n, c)
				}
				break
			}
		}
	}
}
