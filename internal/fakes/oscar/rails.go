package oscar

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// This file holds the Rails 4.2 behaviour the real server gets for free and
// the fake has to spell out: strong-parameter filtering, Ruby truthiness,
// ActiveModel error hashes and the static HTML error pages.

// Rails' production error pages. A client must not try to parse these as JSON.
const (
	page500 = `<!DOCTYPE html>
<html>
<head>
  <title>We're sorry, but something went wrong (500)</title>
</head>
<body>
  <div class="dialog">
    <h1>We're sorry, but something went wrong.</h1>
  </div>
  <p>If you are the application owner check the logs for more information.</p>
</body>
</html>
`
	page404 = `<!DOCTYPE html>
<html>
<head>
  <title>The page you were looking for doesn't exist (404)</title>
</head>
<body>
  <div class="dialog">
    <h1>The page you were looking for doesn't exist.</h1>
  </div>
</body>
</html>
`
	page400 = `<!DOCTYPE html>
<html>
<head>
  <title>Bad Request (400)</title>
</head>
<body>
  <h1>Bad Request</h1>
</body>
</html>
`
)

// Texts the real server answers with; tests compare against these.
const (
	msgRecordError   = "Record error. Please check OSCaR logs for details."
	msgRecordSaved   = "Record saved."
	msgRecordFound   = "Record was found."
	msgRecordMissing = "Record not found."
	msgBadStatus     = "Referral status must be one of ['Accepted', 'Exited', 'Referred']."
	errBlank         = "can't be blank"
	errNotIncluded   = "is not included in the list"
	msgSignInFirst   = "You need to sign in or sign up before continuing."
	msgBadLogin      = "Invalid login credentials. Please try again."
	msgBadToken      = "Invalid login credentials"
	msgNotLoggedIn   = "User was not found or was not logged in."
)

// fieldErrors is an ActiveModel::Errors hash. It keeps the order in which
// the validations are declared, as Rails' JSON does, so a diff against a
// captured body lines up.
type fieldErrors []fieldError

type fieldError struct {
	Field string
	Msgs  []string
}

func (e *fieldErrors) add(field string, msgs ...string) {
	for i := range *e {
		if (*e)[i].Field == field {
			(*e)[i].Msgs = append((*e)[i].Msgs, msgs...)
			return
		}
	}
	*e = append(*e, fieldError{Field: field, Msgs: msgs})
}

// MarshalJSON writes {"field":["msg",…],…} in declaration order.
func (e fieldErrors) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range e {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.Field)
		v, err := json.Marshal(f.Msgs)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// params is one permitted hash (ActionController::Parameters after permit).
type params map[string]any

// scalar returns the permitted scalar under key. Strong parameters drop
// arrays and hashes given for a scalar key, so those read as absent, and a
// JSON null is absent too. Numbers and booleans are rendered the way Ruby's
// to_s renders them when they land in a string column.
func (p params) scalar(key string) (string, bool) {
	v, ok := p[key]
	if !ok || v == nil {
		return "", false
	}
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool:
		return strconv.FormatBool(t), true
	}
	return "", false
}

// ptr is scalar as a nullable column value.
func (p params) ptr(key string) *string {
	if s, ok := p.scalar(key); ok {
		return &s
	}
	return nil
}

// str is scalar with absent read as "".
func (p params) str(key string) string {
	s, _ := p.scalar(key)
	return s
}

// present is Rails' Object#present?: not nil, not false, not whitespace-only,
// not an empty collection.
func present(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case bool:
		return t
	case string:
		return strings.TrimSpace(t) != ""
	case []any:
		return len(t) > 0
	case map[string]any:
		return len(t) > 0
	}
	return true
}

// truthy is `x.present? && x` in Ruby: present, and not false. The string
// "false" is present and truthy in Ruby, so it counts as true here too.
func truthy(v any) bool { return present(v) }

func blank(s string) bool { return strings.TrimSpace(s) == "" }

func blankPtr(s *string) bool { return s == nil || blank(*s) }

// squish is ActiveSupport's String#squish.
func squish(s string) string { return strings.Join(strings.Fields(s), " ") }

func strp(s string) *string { return &s }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func eqPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func writeHTML(w http.ResponseWriter, code int, page string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(code)
	w.Write([]byte(page))
}
