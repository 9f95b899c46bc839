package oscar

import (
	"net/http"
	"strings"
)

// The simple endpoints: the organization list and the duplicate check.

// organizations lists the tenants (visible organizations), integrated or
// not. No auth.
func (s *Server) organizations(w http.ResponseWriter, r *http.Request) {
	out := make([]map[string]any, 0, len(s.tenants))
	for _, t := range s.tenants {
		out = append(out, map[string]any{
			"id": t.id, "full_name": t.full, "short_name": t.short,
			"logo": map[string]any{"url": nil}, "country": "cambodia", "integrated": t.integrated,
		})
	}
	s.reply(w, http.StatusOK, out)
}

var dupKeys = []string{"given_name", "family_name", "local_given_name", "local_family_name", "date_of_birth", "address_current_village_code", "birth_province_id"}

// checkDuplication answers whether a client with the same names (and date
// of birth, when given) exists in any tenant. The real check scores fuzzy
// matches across a shared schema; equality is enough to exercise callers.
// With none of its parameters the action renders nothing and Rails fails
// on the missing template: a 500 page.
func (s *Server) checkDuplication(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	asked := false
	for _, k := range dupKeys {
		if q.Has(k) {
			asked = true
		}
	}
	if !asked {
		fail500(w)
		return
	}
	norm := func(parts ...string) string { return strings.ToLower(squish(strings.Join(parts, " "))) }
	want := norm(q.Get("given_name"), q.Get("family_name"), q.Get("local_given_name"), q.Get("local_family_name"))
	dob := q.Get("date_of_birth")
	found := false
	s.mu.RLock()
	for _, t := range s.tenants {
		for _, c := range t.clients {
			got := norm(deref(c.givenName), deref(c.familyName), deref(c.localGivenName), deref(c.localFamilyName))
			if want != "" && got == want && (dob == "" || deref(c.dob) == dob) {
				found = true
			}
		}
	}
	s.mu.RUnlock()
	msg := "Record was not found"
	if found {
		msg = "Record was Found"
	}
	s.reply(w, http.StatusOK, map[string]any{"similar_fields": msg})
}
