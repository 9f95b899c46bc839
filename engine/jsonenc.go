package engine

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MarshalJSON returns what json.Marshal returns for v. The JSON values the
// engine builds (maps and lists of any, strings, float64, bool, nil, Go
// integers) are encoded here without reflection: payload hashes, request
// bodies and enrich cache keys encode every written item, and
// json.Marshal's reflection and key sorting were about 5 % of the engine's
// CPU in engine bench --scenario e2e. Anything else (a SecretRef, a
// struct, NaN) goes to json.Marshal whole, so the bytes, and the payload
// hashes the state remembers, never differ (FuzzMarshalJSON).
func MarshalJSON(v any) ([]byte, error) {
	if b, ok := appendJSON(make([]byte, 0, 512), v); ok {
		return b, nil
	}
	return json.Marshal(v)
}

// appendJSON appends v's encoding to dst; false when v holds a value it
// leaves to json.Marshal (dst is then to be dropped).
func appendJSON(dst []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case string:
		return appendJSONString(dst, x)
	case bool:
		return strconv.AppendBool(dst, x), true
	case float64:
		return appendJSONFloat(dst, x)
	case int:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int64:
		return strconv.AppendInt(dst, x, 10), true
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), true
	case uint64:
		return strconv.AppendUint(dst, x, 10), true
	case map[string]any:
		return appendJSONObject(dst, x)
	case []any:
		if x == nil {
			return append(dst, "null"...), true
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendJSON(dst, e); !ok {
				return dst, false
			}
		}
		return append(dst, ']'), true
	}
	return dst, false
}

func appendJSONObject(dst []byte, m map[string]any) ([]byte, bool) {
	if m == nil {
		return append(dst, "null"...), true
	}
	var buf [32]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // json.Marshal sorts a map's keys as strings
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		var ok bool
		if dst, ok = appendJSONString(dst, k); !ok {
			return dst, false
		}
		dst = append(dst, ':')
		if dst, ok = appendJSON(dst, m[k]); !ok {
			return dst, false
		}
	}
	return append(dst, '}'), true
}

// appendJSONFloat is encoding/json's float64 encoding (ES6 number to
// string); NaN and infinities, which json.Marshal refuses, are left to it.
func appendJSONFloat(dst []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json writes it
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}

// appendJSONString quotes s when it needs no escape but '"' and '\\':
// printable ASCII other than the HTML characters json.Marshal escapes
// (<, >, &), and valid UTF-8 other than U+2028 and U+2029. Any other
// string is left to json.Marshal.
func appendJSONString(dst []byte, s string) ([]byte, bool) {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b >= utf8.RuneSelf {
			c, size := utf8.DecodeRuneInString(s[i:])
			if c == utf8.RuneError && size == 1 || c == '\u2028' || c == '\u2029' {
				return dst, false
			}
			i += size
			continue
		}
		switch {
		case b < 0x20 || b == '<' || b == '>' || b == '&':
			return dst, false
		case b == '"' || b == '\\':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', b)
			start = i + 1
		}
		i++
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), true
}
