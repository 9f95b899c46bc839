package spectest

import (
	"regexp"
	"strings"

	"casesync/engine"
	"casesync/engine/mapping"
)

var indexRE = regexp.MustCompile(`\[\d+\]`)

// fieldAt names the map field that produced the value at a diff's path
// inside a write's body, with its spec position. A connector may wrap the
// payload ({"data": …}), so the body path is matched against the map from
// the first segment that names a map field.
func fieldAt(p *engine.Pipeline, path string) string {
	_, body, ok := strings.Cut(path, "request.body")
	if !ok || p.Map == nil {
		return ""
	}
	body = strings.TrimPrefix(body, ".")
	segs := strings.Split(indexRE.ReplaceAllString(body, ".[]"), ".")
	var clean []string
	for _, s := range segs {
		if s != "" {
			clean = append(clean, s)
		}
	}
	for start := range clean {
		if name, pos := resolve(p.Map.Fields, clean[start:], ""); pos != "" {
			return "map field " + name + " at " + pos
		}
	}
	// The whole payload is the body (or the field was left out): name the
	// top-level field by its last segment.
	if len(clean) > 0 {
		for _, f := range p.Map.Fields {
			if f.Name == clean[len(clean)-1] {
				return "map field " + f.Name + " at " + f.Pos
			}
		}
	}
	return ""
}

// resolve walks the map's fields along segs and returns the deepest field
// reached.
func resolve(fields []mapping.Field, segs []string, prefix string) (string, string) {
	if len(segs) == 0 {
		return "", ""
	}
	for _, f := range fields {
		if f.Name != segs[0] {
			continue
		}
		name := prefix + f.Name
		rest := segs[1:]
		if len(rest) > 0 && rest[0] == "[]" {
			rest = rest[1:]
		}
		if v := f.Value; v != nil && len(rest) > 0 {
			sub := v.Fields
			if v.Map != nil {
				sub = v.Map
			}
			if n, pos := resolve(sub, rest, name+"."); pos != "" {
				return n, pos
			}
		}
		return name, f.Pos
	}
	return "", ""
}
