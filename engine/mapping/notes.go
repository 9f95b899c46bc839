package mapping

import (
	"slices"
	"sync"
)

// Notes are the field-level notes of one item's mapping: codes such as
// date_of_birth_unreadable, each kept once. Safe for concurrent use.
type Notes struct {
	mu    sync.Mutex
	codes []string
}

// Add records code.
func (n *Notes) Add(code string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !slices.Contains(n.codes, code) {
		n.codes = append(n.codes, code)
	}
}

// Codes returns the notes, sorted; nil when there are none.
func (n *Notes) Codes() []string {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.codes) == 0 {
		return nil
	}
	out := slices.Clone(n.codes)
	slices.Sort(out)
	return out
}
