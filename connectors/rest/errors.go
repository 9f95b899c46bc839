package rest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"casesync/engine"
)

// maxMsg bounds the server message kept in an error.
const maxMsg = 300

// serverMessage pulls a server's own error text out of an error body,
// tolerating the shapes REST APIs use:
//
//	{"errors": [{"message": "...", "detail": "..." | ["/json/pointer", ...]}]}
//	{"errors": ["..."]}  {"errors": {"field": ["..."]}}
//	{"message": "..." | {"field": ["..."]} | ["..."]}
//	{"error": "..." | {"message": "..."}, "error_description": "..."}
//	{"ErrorMessage": "..."}
//
// Record content is kept out as far as the shape allows: field names and
// validation texts stay, other members (ids, echoed records) are never
// read, JSON-pointer detail lists stay, a 5xx's free-text detail (an
// exception message that may quote data) is dropped, and an HTML page is
// named, not quoted. The result is at most maxMsg characters.
func serverMessage(status int, ctype string, raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		if strings.Contains(ctype, "html") || raw[0] == '<' {
			return "HTML error page"
		}
		line, _, _ := bytes.Cut(raw, []byte("\n"))
		return engine.Clip(string(line), maxMsg)
	}
	var parts []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s != "" && !slices.Contains(parts, s) {
			parts = append(parts, s)
		}
	}
	switch x := v.(type) {
	case string:
		add(x)
	case []any:
		add(describe(x, status))
	case map[string]any:
		for _, k := range []string{"ErrorMessage", "message", "Message", "error", "error_description", "errors"} {
			if e, ok := x[k]; ok {
				add(describe(e, status))
			}
		}
	}
	return engine.Clip(strings.Join(parts, "; "), maxMsg)
}

// describe renders one error member.
func describe(v any, status int) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		var out []string
		for _, e := range x {
			var s string
			if m, ok := e.(map[string]any); ok {
				s = describeItem(m, status)
			} else {
				s = describe(e, status)
			}
			if s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return strings.Join(out, "; ")
	case map[string]any:
		if _, ok := x["message"]; ok {
			return describeItem(x, status)
		}
		// Field-keyed validation errors: {"gender": ["can't be blank"]}.
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var out []string
		for _, k := range keys {
			if s := describe(x[k], status); s != "" {
				out = append(out, k+": "+s)
			}
		}
		return strings.Join(out, "; ")
	case nil:
		return ""
	case bool, float64:
		return ""
	}
	return ""
}

// describeItem renders {"message", "detail"}: the message, then a detail
// that is a list (JSON pointers, i18n keys) or, below 500, a short text.
func describeItem(m map[string]any, status int) string {
	msg := describe(m["message"], status)
	var detail string
	switch d := m["detail"].(type) {
	case []any:
		var ds []string
		for _, e := range d {
			if s, ok := e.(string); ok {
				ds = append(ds, s)
			}
		}
		detail = strings.Join(ds, ", ")
	case string:
		if status < 500 {
			detail = d
		}
	}
	switch {
	case msg == "":
		return detail
	case detail == "":
		return msg
	}
	return fmt.Sprintf("%s: %s", msg, detail)
}
