package engine

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Clip cuts s to at most n bytes on a character boundary and marks the cut
// with "…", so a bounded message never ends in half a character.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// UnmarshalJSON reads a plain string or {"secret": NAME}.
func (t *Text) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = Text{Value: s}
		return nil
	}
	var ref struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(b, &ref); err != nil || ref.Secret == "" {
		return fmt.Errorf("want a string or {secret: NAME}")
	}
	*t = Text{Secret: ref.Secret}
	return nil
}

// MarshalJSON writes the secret's name, never a resolved value.
func (t Text) MarshalJSON() ([]byte, error) {
	if t.Secret != "" {
		return json.Marshal(map[string]string{"secret": t.Secret})
	}
	return json.Marshal(t.Value)
}

// IsZero reports whether neither a value nor a secret is set.
func (t Text) IsZero() bool { return t.Value == "" && t.Secret == "" }

// Resolve returns the text, reading a secret from s.
func (t Text) Resolve(s Secrets) (string, error) {
	if t.Secret == "" {
		return t.Value, nil
	}
	if s == nil {
		return "", &MissingSecretError{Name: t.Secret}
	}
	v, ok := s.Secret(t.Secret)
	if !ok {
		return "", &MissingSecretError{Name: t.Secret}
	}
	return v, nil
}

// Secrets resolves secret names at run time (environment, secrets file).
type Secrets interface {
	Secret(name string) (string, bool)
}

// MissingSecretError names a secret that is not set. It never holds a value.
type MissingSecretError struct{ Name string }

func (e *MissingSecretError) Error() string { return fmt.Sprintf("secret %s is not set", e.Name) }
