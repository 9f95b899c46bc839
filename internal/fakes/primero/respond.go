package primero

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"strconv"
)

// apiError is one entry of Primero's error envelope. Message and Detail
// are strings or string lists depending on the error (primero.md §3).
type apiError struct {
	Status   int    `json:"status"`
	Resource string `json:"resource"`
	Message  any    `json:"message"`
	Detail   any    `json:"detail,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func writeErrors(w http.ResponseWriter, r *http.Request, status int, message, detail any) {
	writeJSON(w, status, map[string]any{"errors": []apiError{{Status: status, Resource: r.URL.Path, Message: message, Detail: detail}}})
}

func notFound(w http.ResponseWriter, r *http.Request, detail string) {
	writeErrors(w, r, http.StatusNotFound, "Not Found", detail)
}

func forbidden(w http.ResponseWriter, r *http.Request) {
	writeErrors(w, r, http.StatusForbidden, "Forbidden", nil)
}

func invalidRecord(w http.ResponseWriter, r *http.Request, pointers []string) {
	writeErrors(w, r, http.StatusUnprocessableEntity, "Invalid Record JSON", pointers)
}

func missingData(w http.ResponseWriter, r *http.Request) {
	writeErrors(w, r, http.StatusUnprocessableEntity, "param is missing or the value is empty: data", nil)
}

// unauthorized writes the Devise-style failure: never the envelope, always
// the WWW-Authenticate header (primero.md §2).
func unauthorized(w http.ResponseWriter, text string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="Primero" charset="UTF8"`)
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": text})
}

// object writes a JSON object with its keys in the given order; Primero's
// records start with id and enabled and end with last_updated_at, and
// keeping that order makes responses read like the real ones.
type object struct {
	buf   bytes.Buffer
	first bool
}

func newObject() *object {
	o := &object{first: true}
	o.buf.WriteByte('{')
	return o
}

func (o *object) add(k string, v any) {
	if !o.first {
		o.buf.WriteByte(',')
	}
	o.first = false
	writeString(&o.buf, k)
	o.buf.WriteByte(':')
	writeValue(&o.buf, v)
}

// writeValue encodes the JSON shapes of a record directly: building a
// page of 1000 cases through json.Marshal value by value was most of the
// cost of a listing.
func writeValue(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		writeString(b, x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e21 {
			var tmp [32]byte
			b.Write(strconv.AppendFloat(tmp[:0], x, 'f', -1, 64))
			return
		}
		vb, _ := json.Marshal(x)
		b.Write(vb)
	case int:
		b.WriteString(strconv.Itoa(x))
	case json.RawMessage:
		b.Write(x)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeValue(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			writeValue(b, x[k])
		}
		b.WriteByte('}')
	default:
		vb, err := json.Marshal(v)
		if err != nil {
			vb = []byte("null")
		}
		b.Write(vb)
	}
}

const hexDigits = "0123456789abcdef"

// writeString writes s as a JSON string, escaping what JSON requires
// (quote, backslash, control characters) and the HTML-sensitive characters
// encoding/json also escapes, so both encoders agree byte for byte.
func writeString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		lineSep := c == 0xe2 && i+2 < len(s) && s[i+1] == 0x80 && s[i+2]&^1 == 0xa8
		if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && !lineSep {
			continue
		}
		b.WriteString(s[start:i])
		if lineSep { // U+2028 and U+2029, escaped by encoding/json too
			b.WriteString(`\u202`)
			b.WriteByte(hexDigits[s[i+2]&0xf])
			i += 2
			start = i + 1
			continue
		}
		switch c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
		start = i + 1
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}

func (o *object) bytes() json.RawMessage {
	o.buf.WriteByte('}')
	return o.buf.Bytes()
}

func rawList(items []json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteByte(']')
	return b.Bytes()
}
