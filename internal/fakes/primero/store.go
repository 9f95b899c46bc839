package primero

import (
	"encoding/json"
	"sort"
	"time"
)

// record is one case. A seeded case that nothing has written to keeps only
// its generator index and its columns; its document is rebuilt on demand.
// That is what keeps 100,000 seeded cases small.
type record struct {
	id      string
	seed    int32 // generator index, -1 once the document is stored
	created int64 // unix ms of created_at; never changes after create
	updated int64 // unix ms of last_updated_at
	doc     map[string]any
	trans   []*transition

	// Computed from the webhook log in Primero, so a change here is not a
	// save and does not bump last_updated_at.
	syncStatus string
	syncedAt   int64
}

func recordLess(a, b *record) bool {
	if a.created != b.created {
		return a.created < b.created
	}
	return a.id < b.id
}

// identifierFields are filtered by exact string match (primero.md §4) and
// indexed so that an integration's "find by key" does not scan every case.
var identifierFields = []string{
	"case_id", "short_id", "case_id_display", "unique_identifier", "unhcr_id_no", "unhcr_individual_no",
	"national_id_no", "other_id_no", "oscar_number", "registry_no", "cpims_id", "rc_id_no", "icrc_ref_no",
	"un_no", "ration_card_no",
}

var isIdentifier = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range identifierFields {
		m[f] = true
	}
	return m
}()

// docOf returns the stored document of r, or a freshly generated one for
// an untouched seeded case. Callers hold s.mu and must not modify it.
func (s *Server) docOf(r *record) map[string]any {
	if r.doc != nil {
		return r.doc
	}
	return s.gen.caseAt(int(r.seed)).doc
}

// ownDoc makes r's document stored and writable. Callers hold s.mu for
// writing.
func (s *Server) ownDoc(r *record) map[string]any {
	if r.doc == nil {
		r.doc = s.gen.caseAt(int(r.seed)).doc
		r.seed = -1
	}
	return r.doc
}

func (s *Server) seedSynthetic(n int) {
	s.records = make([]*record, 0, n)
	for i := 0; i < n; i++ {
		sc := s.gen.caseAt(i)
		r := &record{id: sc.id, seed: int32(i), created: sc.created, updated: sc.updated}
		s.records = append(s.records, r)
		s.byID[r.id] = r
		s.index(r, sc.doc)
		for _, ref := range sc.refs {
			t := &transition{
				id: ref.id, typ: typeReferral, status: ref.status, record: r, to: ref.to, toAgency: ref.toAgency,
				by: ref.by, service: strPtr(ref.service), serviceRecordID: strPtr(ref.serviceRecordID),
				notes: strPtr(ref.notes), created: ref.created, responded: ref.responded,
			}
			r.trans = append(r.trans, t)
			s.refByID[t.id] = t
		}
	}
}

// importCase stores a Primero case record as a database import would:
// every stored key is kept (an instance may have fields this fake's forms
// lack), while the keys Primero computes on output are dropped so that they
// are computed again.
func (s *Server) importCase(in map[string]any) {
	d := deepCopy(in).(map[string]any)
	id, _ := d["id"].(string)
	if id == "" {
		id = s.newID()
	}
	if _, ok := d["record_state"]; !ok {
		if en, ok := d["enabled"].(bool); ok {
			d["record_state"] = en
		} else {
			d["record_state"] = true
		}
	}
	r := &record{id: id, seed: -1}
	r.created = parseMS(d["created_at"], msOf(SeedBase))
	r.updated = parseMS(d["last_updated_at"], r.created)
	if st, ok := d["sync_status"].(string); ok {
		r.syncStatus = st
	}
	r.syncedAt = parseMS(d["synced_at"], 0)
	refs, _ := d["referrals"].([]any)
	for _, k := range []string{"id", "enabled", "last_updated_at", "record_in_scope", "alert_count", "flag_count",
		"photo", "photos", "recorded_audio", "upload_bid_document", "other_documents", "referrals",
		"sync_status", "synced_at"} {
		delete(d, k)
	}
	r.doc = d
	s.records = append(s.records, r)
	s.byID[r.id] = r
	s.index(r, d)
	for _, x := range refs {
		m, ok := x.(map[string]any)
		if !ok {
			continue
		}
		t := transitionFromJSON(m, r)
		if t.id == "" {
			t.id = s.newID()
		}
		r.trans = append(r.trans, t)
		s.refByID[t.id] = t
	}
}

func parseMS(v any, def int64) int64 {
	str, ok := v.(string)
	if !ok {
		return def
	}
	t, err := time.Parse(time.RFC3339Nano, str)
	if err != nil {
		return def
	}
	return t.UnixMilli()
}

// indexAlias halves the index of 100,000 seeded cases: unique_identifier
// is nearly always case_id and case_id_display short_id, so such a value is
// indexed under the alias only, and a lookup consults both.
var indexAlias = map[string]string{"unique_identifier": "case_id", "case_id_display": "short_id"}

// indexed reports the value of f that the index holds for d, if any.
func indexed(d map[string]any, f string) (string, bool) {
	v, ok := d[f].(string)
	if !ok || v == "" {
		return "", false
	}
	if a, ok := indexAlias[f]; ok && d[a] == v {
		return "", false
	}
	return v, true
}

// lookup returns the candidates for an identifier filter, in no order.
func (s *Server) lookup(field, value string) []*record {
	out := append([]*record(nil), s.ident[field][value]...)
	if a, ok := indexAlias[field]; ok {
		out = append(out, s.ident[a][value]...)
	}
	return out
}

func (s *Server) index(r *record, d map[string]any) {
	for _, f := range identifierFields {
		v, ok := indexed(d, f)
		if !ok {
			continue
		}
		m := s.ident[f]
		if m == nil {
			m = map[string][]*record{}
			s.ident[f] = m
		}
		m[v] = append(m[v], r)
	}
}

func (s *Server) unindex(r *record, d map[string]any) {
	for _, f := range identifierFields {
		v, ok := indexed(d, f)
		if !ok {
			continue
		}
		list := s.ident[f][v]
		for i, x := range list {
			if x == r {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(s.ident[f], v)
		} else {
			s.ident[f][v] = list
		}
	}
}

// insert adds a new record in list order.
func (s *Server) insert(r *record) {
	i := sort.Search(len(s.records), func(i int) bool { return recordLess(r, s.records[i]) })
	s.records = append(s.records, nil)
	copy(s.records[i+1:], s.records[i:])
	s.records[i] = r
	s.byID[r.id] = r
}

// stamp returns the last_updated_at of a save of r happening now. Saves are
// strictly increasing across the whole server, and never move a record
// backwards, even when a test's clock stands still or sits in the past.
func (s *Server) stamp(r *record) int64 {
	t := s.now().UnixMilli()
	if t <= s.lastStamp {
		t = s.lastStamp + 1
	}
	if r != nil && t <= r.updated {
		t = r.updated + 1
	}
	s.lastStamp = t
	return t
}

func strPtr(s string) *string { return &s }

// deepCopy copies a JSON-shaped value.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = deepCopy(e)
		}
		return a
	case []string:
		return toAnyStrings(x)
	case int:
		return float64(x)
	case json.Number:
		f, _ := x.Float64()
		return f
	default:
		return v
	}
}
