package primero

import (
	"bytes"
	"encoding/json"
	"net/http"
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
	kb, _ := json.Marshal(k)
	o.buf.Write(kb)
	o.buf.WriteByte(':')
	if raw, ok := v.(json.RawMessage); ok {
		o.buf.Write(raw)
		return
	}
	vb, err := json.Marshal(v)
	if err != nil {
		vb = []byte("null")
	}
	o.buf.Write(vb)
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
