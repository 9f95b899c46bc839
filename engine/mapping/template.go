package mapping

import (
	"context"
	"fmt"
	"strings"
)

// Template is a string with {jq} holes, e.g. "/api/v2/cases/{.id}/referrals"
// or "{$cursor}..". "{{" and "}}" stand for literal braces. A hole written
// {raw PROGRAM} is inserted as it is by RenderEscaped: the spec's explicit
// opt-out of escaping, for a value that is itself a path.
type Template struct {
	src   string
	parts []tplPart
}

type tplPart struct {
	lit string
	jq  *JQ
	at  int  // byte offset of the hole's program in the template text
	raw bool // {raw PROGRAM}: never escaped
}

// TemplateError is a template problem at a byte offset of its text.
type TemplateError struct {
	Offset int
	Err    error
}

func (e *TemplateError) Error() string { return e.Err.Error() }
func (e *TemplateError) Unwrap() error { return e.Err }

// CompileTemplate compiles every hole of src once.
func CompileTemplate(src string, reg *Registry) (*Template, error) {
	t := &Template{src: src}
	var lit strings.Builder
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '{' && i+1 < len(src) && src[i+1] == '{':
			lit.WriteByte('{')
			i++
		case c == '}' && i+1 < len(src) && src[i+1] == '}':
			lit.WriteByte('}')
			i++
		case c == '{':
			end := matchBrace(src, i)
			if end < 0 {
				return nil, &TemplateError{Offset: i, Err: fmt.Errorf("unclosed { in template")}
			}
			prog, at := src[i+1:end], i+1
			// "raw" followed by a space is no jq program, so the marker
			// cannot shadow one.
			rest, raw := strings.CutPrefix(prog, "raw ")
			if raw {
				prog, at = rest, at+len("raw ")
			}
			j, err := CompileJQ(prog, reg)
			if err != nil {
				return nil, &TemplateError{Offset: at, Err: err}
			}
			if lit.Len() > 0 {
				t.parts = append(t.parts, tplPart{lit: lit.String()})
				lit.Reset()
			}
			t.parts = append(t.parts, tplPart{jq: j, at: at, raw: raw})
			i = end
		case c == '}':
			return nil, &TemplateError{Offset: i, Err: fmt.Errorf("unmatched } in template")}
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, tplPart{lit: lit.String()})
	}
	return t, nil
}

// Holes returns the program of each {jq} hole and its byte offset in the
// template text, for checks that read programs (engine check's vars keys).
func (t *Template) Holes() (srcs []string, offsets []int) {
	for _, p := range t.parts {
		if p.jq != nil {
			srcs = append(srcs, p.jq.src)
			offsets = append(offsets, p.at)
		}
	}
	return srcs, offsets
}

// matchBrace finds the } closing the { at i, skipping jq strings and
// nested objects.
func matchBrace(s string, i int) int {
	depth := 0
	inStr := false
	for k := i; k < len(s); k++ {
		c := s[k]
		if inStr {
			if c == '\\' {
				k++
			} else if c == '"' {
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return k
			}
		}
	}
	return -1
}

// String returns the template text.
func (t *Template) String() string { return t.src }

// Static reports whether the template has no holes.
func (t *Template) Static() bool {
	for _, p := range t.parts {
		if p.jq != nil {
			return false
		}
	}
	return true
}

// Render evaluates the holes against input. A hole must yield one scalar;
// null renders as "".
func (t *Template) Render(ctx context.Context, input any, v *Vars) (string, error) {
	return t.RenderEscaped(ctx, input, v, nil)
}

// RenderEscaped is Render with each hole's text passed through escape
// (unless the hole is {raw …}): a connector escapes a path hole as one path
// segment, so a record key such as "../../admin?x=" cannot reach another
// endpoint. A nil escape inserts every value as it is.
func (t *Template) RenderEscaped(ctx context.Context, input any, v *Vars, escape func(string) string) (string, error) {
	if len(t.parts) == 1 && t.parts[0].jq == nil {
		return t.parts[0].lit, nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.jq == nil {
			b.WriteString(p.lit)
			continue
		}
		x, err := p.jq.One(ctx, input, v)
		if err != nil {
			return "", fmt.Errorf("template {%s}: %w", p.jq.src, err)
		}
		switch x.(type) {
		case map[string]any, []any:
			return "", fmt.Errorf("template {%s}: yields a %s, not a scalar", p.jq.src, TypeName(x))
		case nil:
		default:
			s := keyString(x)
			if escape != nil && !p.raw {
				s = escape(s)
			}
			b.WriteString(s)
		}
	}
	return b.String(), nil
}

// TypeName names a decoded JSON value's type as jq does (object, array,
// string, number, boolean, null).
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "number"
}
