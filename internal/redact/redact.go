package redact

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Mask replaces every secret value.
const Mask = "[redacted]"

// Redactor replaces known secret values in text. It is safe for concurrent
// use; Add may be called while other goroutines redact (a token obtained by
// logging in is added as soon as it arrives). The zero value and a nil
// *Redactor redact nothing.
type Redactor struct {
	mu      sync.Mutex // serialises Add; readers use rep
	secrets map[string]bool
	rep     atomic.Pointer[strings.Replacer]
}

// New returns a Redactor for secrets, ignoring empty values. Every other
// value is masked however short: a declared secret of 3 characters is still
// a secret (issue 16 saw one printed), and masking its letters in unrelated
// text is the lesser harm; engine check cannot know the values to warn.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		r.Add(s)
	}
	return r
}

// Add registers one more secret value; an empty one is ignored.
func (r *Redactor) Add(secret string) {
	if r == nil || secret == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.secrets[secret] {
		return
	}
	if r.secrets == nil {
		r.secrets = map[string]bool{}
	}
	r.secrets[secret] = true

	// Every spelling a secret can take in our output: as is, in a query
	// string or path, and inside a JSON string (with and without HTML
	// escaping, since encoders differ).
	seen := map[string]bool{}
	for s := range r.secrets {
		for _, v := range spellings(s) {
			seen[v] = true
		}
	}
	olds := make([]string, 0, len(seen))
	for v := range seen {
		olds = append(olds, v)
	}
	// strings.Replacer tries old strings in argument order at each
	// position, so the longest goes first: a secret that contains another
	// is masked whole instead of leaving its tail behind.
	slices.SortFunc(olds, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	pairs := make([]string, 0, 2*len(olds))
	for _, v := range olds {
		pairs = append(pairs, v, Mask)
	}
	r.rep.Store(strings.NewReplacer(pairs...))
}

func spellings(s string) []string {
	out := []string{s, url.QueryEscape(s), url.PathEscape(s)}
	if b, err := json.Marshal(s); err == nil {
		out = append(out, string(b[1:len(b)-1]))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(s) == nil {
		b := bytes.TrimSpace(buf.Bytes())
		out = append(out, string(b[1:len(b)-1]))
	}
	return out
}

// String returns s with every secret masked.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	rep := r.rep.Load()
	if rep == nil {
		return s
	}
	return rep.Replace(s)
}

// Bytes returns b with every secret masked; b itself is not modified.
func (r *Redactor) Bytes(b []byte) []byte {
	if r == nil || r.rep.Load() == nil {
		return b
	}
	return []byte(r.String(string(b)))
}

// Contains reports whether s holds any secret.
func (r *Redactor) Contains(s string) bool { return r.String(s) != s }
