package primero

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// atoi is Ruby's String#to_i: leading digits, garbage is 0.
func atoi(s string) int {
	s = strings.TrimSpace(s)
	end := 0
	if end < len(s) && (s[end] == '-' || s[end] == '+') {
		end++
	}
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(s[:end])
	return n
}

// pagination reads page and per like Primero: per defaults to 20 and is
// capped; neither is validated, so a page below 1 or a negative per gives
// an offset or limit the SQL refuses.
func (s *Server) pagination(r *http.Request) (page, per int, broken bool) {
	q := r.URL.Query()
	page, per = 1, 20
	if q.Has("page") {
		page = atoi(q.Get("page"))
	}
	if q.Has("per") {
		per = atoi(q.Get("per"))
	}
	if !s.opts.LegacyUncapped && per > s.opts.PerCap {
		per = s.opts.PerCap
	}
	return page, per, page < 1 || per < 0
}

func listBody(items []json.RawMessage, total, per, page int, extra ...any) []byte {
	meta := newObject()
	meta.add("total", total)
	meta.add("per", per)
	meta.add("page", page)
	for i := 0; i+1 < len(extra); i += 2 {
		meta.add(extra[i].(string), extra[i+1])
	}
	o := newObject()
	o.add("data", rawList(items))
	o.add("metadata", meta.bytes())
	return o.bytes()
}

func (s *Server) handleListCases(w http.ResponseWriter, r *http.Request, u *user) {
	if !u.role.can("read") {
		forbidden(w, r)
		return
	}
	q := r.URL.Query()
	page, per, broken := s.pagination(r)
	filters, idents, badValue := parseFilters(q, u.role)
	if broken || badValue || s.sqlBroken(r) {
		writeRaw(w, http.StatusOK, listBody(nil, 0, per, page))
		return
	}
	sel := parseSelection(q.Get("fields"))
	search := strings.ToLower(q.Get("query"))
	idSearch := q.Get("id_search") == "true"
	phonetic := q.Get("phonetic") == "true"
	orderBy := q.Get("order_by")
	if orderBy == "" {
		orderBy = "created_at"
	}
	desc := !q.Has("order") || strings.EqualFold(q.Get("order"), "desc")

	s.mu.RLock()
	defer s.mu.RUnlock()
	off := (page - 1) * per
	all := s.listedMatches(u, q)
	if all == nil {
		all = s.matchCases(u, filters, idents, search, idSearch, phonetic, orderBy, desc)
		s.rememberListing(u, q, all)
	}
	var matches []*record
	if off < len(all) {
		matches = all[off:min(off+per, len(all))]
	}
	items := make([]json.RawMessage, 0, len(matches))
	for _, rec := range matches {
		items = append(items, s.renderCase(rec, s.docOf(rec), u, sel))
	}
	s.inj.Counters().Served(r.Method+" "+r.URL.Path, len(items))
	writeRaw(w, http.StatusOK, listBody(items, len(all), per, page))
}

// listMemo is the last listing's matches, in their order, for the pages
// after its first: Primero runs the query again for each page, which the
// fake did too, scanning every case per page (at 100,000 cases and 100 a
// page, 33 s of the bench process's CPU per listing). The pages it serves
// are the same while nothing changed in between (writes).
type listMemo struct {
	u      *user
	query  string
	writes int64
	all    []*record
}

// listingKey is the query without its page: every page of one listing.
func listingKey(q url.Values) string {
	k := make(url.Values, len(q))
	for name, v := range q {
		if name != "page" && name != "per" {
			k[name] = v
		}
	}
	return k.Encode()
}

// listedMatches returns the remembered matches of this listing, or nil.
// Callers hold s.mu (for reading at least).
func (s *Server) listedMatches(u *user, q url.Values) []*record {
	s.listMu.Lock()
	defer s.listMu.Unlock()
	m := s.listed
	if m == nil || m.u != u || m.writes != s.writes || m.query != listingKey(q) {
		return nil
	}
	return m.all
}

func (s *Server) rememberListing(u *user, q url.Values, all []*record) {
	s.listMu.Lock()
	s.listed = &listMemo{u: u, query: listingKey(q), writes: s.writes, all: all}
	s.listMu.Unlock()
}

// lock takes mu for a change, which ends the remembered listing.
func (s *Server) lock() {
	s.mu.Lock()
	s.writes++
}

// matchCases is every case the listing query matches, in the listing's
// order. Callers hold s.mu.
func (s *Server) matchCases(u *user, filters []filter, idents []identFilter, search string, idSearch, phonetic bool, orderBy string, desc bool) []*record {
	cands := s.records
	if len(idents) > 0 {
		// An identifier filter narrows the scan to its index entry; the
		// filter itself still runs on every candidate.
		cands = s.lookup(idents[0].field, idents[0].value)
		sort.Slice(cands, func(i, j int) bool { return recordLess(cands[i], cands[j]) })
	}
	var matches []*record
	v := &view{s: s}
	for i := range cands {
		rec := cands[i]
		if desc {
			rec = cands[len(cands)-1-i]
		}
		v.r, v.doc = rec, nil
		if !idSearch && u.role.GroupPermission != "all" && !s.inScope(u, v.document()) {
			continue
		}
		ok := true
		for _, f := range filters {
			if !f.match(v) {
				ok = false
				break
			}
		}
		if ok && search != "" && !searchMatch(v.document(), search, phonetic) {
			ok = false
		}
		if !ok {
			continue
		}
		matches = append(matches, rec)
	}
	if orderBy != "created_at" {
		s.sortBy(matches, orderBy, desc)
	}
	if matches == nil {
		matches = []*record{}
	}
	return matches
}

// searchMatch is `query`: a case-insensitive substring of an identifier,
// or of a name with phonetic=true.
func searchMatch(d map[string]any, q string, phonetic bool) bool {
	fields := identifierFields
	if phonetic {
		fields = []string{"name", "name_first", "name_middle", "name_last", "name_nickname", "name_other"}
	}
	for _, f := range fields {
		if v, ok := d[f].(string); ok && strings.Contains(strings.ToLower(v), q) {
			return true
		}
	}
	return false
}

// sortBy orders by a column or by the raw JSON value of a field, with
// Postgres' jsonb ordering; the record id breaks ties so pages are stable.
func (s *Server) sortBy(recs []*record, field string, desc bool) {
	type keyed struct {
		r       *record
		v       any
		present bool
	}
	ks := make([]keyed, len(recs))
	for i, r := range recs {
		if field == "last_updated_at" {
			ks[i] = keyed{r, float64(r.updated), true}
			continue
		}
		v, ok := s.docOf(r)[field]
		ks[i] = keyed{r, v, ok}
	}
	sort.SliceStable(ks, func(i, j int) bool {
		a, b := ks[i], ks[j]
		// SQL NULL sorts last ascending and first descending.
		if a.present != b.present {
			return a.present != desc
		}
		c := jsonCompare(a.v, b.v)
		if c == 0 {
			c = strings.Compare(a.r.id, b.r.id)
		}
		if desc {
			return c > 0
		}
		return c < 0
	})
	for i := range ks {
		recs[i] = ks[i].r
	}
}

// jsonRank is jsonb's cross-type order: null < string < number < boolean <
// array < object.
func jsonRank(v any) int {
	switch v.(type) {
	case nil:
		return 0
	case string:
		return 1
	case float64:
		return 2
	case bool:
		return 3
	case []any:
		return 4
	}
	return 5
}

func jsonCompare(a, b any) int {
	ra, rb := jsonRank(a), jsonRank(b)
	if ra != rb {
		return ra - rb
	}
	switch x := a.(type) {
	case string:
		return strings.Compare(x, b.(string))
	case float64:
		y := b.(float64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
	case bool:
		y := b.(bool)
		if x != y {
			if !x {
				return -1
			}
			return 1
		}
	}
	return 0
}

func (s *Server) handleShowCase(w http.ResponseWriter, r *http.Request, u *user) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rec := s.caseFor(w, r, u)
	if rec == nil {
		return
	}
	writeRaw(w, http.StatusOK, wrapData(s.renderCase(rec, s.docOf(rec), u, nil)))
}

// readData decodes {"data": {...}}. present is false when data is missing
// or not an object; err is set for a body that is not JSON at all.
func readData(r *http.Request) (data map[string]any, present bool, err error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return nil, false, err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil, false, nil
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, false, err
	}
	data, present = body["data"].(map[string]any)
	return data, present, nil
}

func badJSON(w http.ResponseWriter, r *http.Request, err error) {
	writeErrors(w, r, http.StatusBadRequest, "Bad Request", err.Error())
}

func (s *Server) handleCreateCase(w http.ResponseWriter, r *http.Request, u *user) {
	if !u.role.can("create") {
		forbidden(w, r)
		return
	}
	data, _, err := readData(r)
	if err != nil {
		badJSON(w, r, err)
		return
	}
	if data == nil {
		data = map[string]any{} // a missing data creates an empty case
	}
	now := s.now()
	clientID, hasID := data["id"]
	moduleID, _ := data["module_id"].(string)
	clean, bad := s.clean(data, u, moduleID, true, now)
	if bad != nil {
		invalidRecord(w, r, bad)
		return
	}
	s.lock()
	id, _ := clientID.(string)
	if hasID && s.byID[id] != nil {
		s.mu.Unlock()
		s.inj.Counters().Duplicates.Add(1)
		writeErrors(w, r, http.StatusConflict, "Conflict: A record with this id already exists", nil)
		return
	}
	caseID, clientCaseID := clean["case_id"].(string)
	if clientCaseID && len(s.ident["case_id"][caseID]) > 0 {
		s.mu.Unlock()
		s.inj.Counters().Duplicates.Add(1)
		writeErrors(w, r, http.StatusConflict, "Conflict: A record with this id already exists", nil)
		return
	}
	if !hasID {
		id = s.contentID("id", clean)
	}
	d := clean
	delete(d, "id")
	if !clientCaseID || caseID == "" {
		caseID = s.contentID("case_id", d)
		d["unique_identifier"] = caseID
	} else {
		d["unique_identifier"] = s.contentID("unique_identifier", d)
	}
	d["case_id"] = caseID
	d["short_id"] = caseID[max(0, len(caseID)-7):]
	d["case_id_display"] = d["short_id"]
	created := now.UnixMilli()
	if v, ok := d["created_at"].(string); ok {
		created = parseMS(v, created)
	} else {
		d["created_at"] = fmtMS(created)
	}
	d["created_by"] = u.UserName
	if u.agency != nil {
		d["created_organization"] = u.agency.UniqueID
	}
	if owner, ok := d["owned_by"].(string); ok {
		if s.userByName[owner] == nil {
			d["owned_by"] = nil // an unknown owner reverts quietly
		}
	} else {
		d["owned_by"] = u.UserName
	}
	for k, v := range map[string]any{"status": "open", "record_state": true, "workflow": "new", "case_status_reopened": false,
		"registration_date": now.Format(time.DateOnly)} {
		if _, ok := d[k]; !ok {
			d[k] = v
		}
	}
	if _, ok := d["assigned_user_names"]; !ok {
		d["assigned_user_names"] = []any{}
	}
	rec := &record{id: id, seed: -1, created: created, doc: d}
	s.finishSave(rec, nil, u.UserName)
	s.insert(rec)
	s.index(rec, d)
	if s.businessDuplicate(rec) {
		s.inj.Counters().Duplicates.Add(1)
	}
	s.inj.Counters().Write("create")
	body := s.renderChanged(rec, u, sortedKeys(d))
	out := s.outbound(EventCaseCreate, rec)
	s.mu.Unlock()
	s.deliver(out)
	if hasID {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeRaw(w, http.StatusOK, wrapData(body))
}

// businessDuplicate reports whether a new case repeats an external
// identifier (UNHCR or national number, OSCaR id) another case already
// has. Primero accepts such a create; the counter is how tests catch a
// connector that created twice.
func (s *Server) businessDuplicate(rec *record) bool {
	for _, f := range []string{"unhcr_individual_no", "unhcr_id_no", "national_id_no", "oscar_number"} {
		v, ok := rec.doc[f].(string)
		if ok && v != "" && len(s.ident[f][v]) > 1 {
			return true
		}
	}
	return false
}

func (s *Server) handleUpdateCase(w http.ResponseWriter, r *http.Request, u *user) {
	data, present, err := readData(r)
	if err != nil {
		badJSON(w, r, err)
		return
	}
	s.lock()
	rec := s.caseFor(w, r, u)
	if rec == nil {
		s.mu.Unlock()
		return
	}
	if !u.role.can("write") {
		s.mu.Unlock()
		forbidden(w, r)
		return
	}
	if !present || len(data) == 0 {
		s.mu.Unlock()
		missingData(w, r)
		return
	}
	now := s.now()
	// The module that gates the fields is the stored one.
	clean, bad := s.clean(data, u, strOf(s.docOf(rec)["module_id"]), false, now)
	if bad != nil {
		s.mu.Unlock()
		invalidRecord(w, r, bad)
		return
	}
	var mark map[string]any
	for _, k := range []string{"mark_synced", "mark_synced_url", "mark_synced_status"} {
		if v, ok := clean[k]; ok {
			if mark == nil {
				mark = map[string]any{}
			}
			mark[k] = v
			delete(clean, k)
		}
	}
	doc := s.ownDoc(rec)
	before := deepCopy(doc).(map[string]any)
	if owner, ok := clean["owned_by"]; ok {
		if name, _ := owner.(string); s.userByName[name] == nil {
			delete(clean, "owned_by") // an unknown owner keeps the previous one
		}
	}
	s.unindex(rec, doc)
	rec.doc = mergeData(doc, clean).(map[string]any)
	s.finishSave(rec, before, u.UserName)
	s.index(rec, rec.doc)
	if mark != nil {
		s.markSynced(rec, mark, now)
	}
	s.inj.Counters().Write("update")
	body := s.renderChanged(rec, u, changedKeys(before, rec.doc))
	out := s.outbound(EventCaseUpdate, rec)
	s.mu.Unlock()
	s.deliver(out)
	writeRaw(w, http.StatusOK, wrapData(body))
}

// markSynced is the webhook write-back: Primero records it, strips the
// keys and shows the computed sync_status/synced_at.
func (s *Server) markSynced(rec *record, mark map[string]any, now time.Time) {
	status, _ := mark["mark_synced_status"].(string)
	if status == "" {
		if ok, _ := mark["mark_synced"].(bool); ok {
			status = "synced"
		} else {
			status = "failed"
		}
	}
	rec.syncStatus = status
	if status == "synced" {
		rec.syncedAt = now.UnixMilli()
	}
}

func (s *Server) handleDisableCase(w http.ResponseWriter, r *http.Request, u *user) {
	s.lock()
	rec := s.caseFor(w, r, u)
	if rec == nil {
		s.mu.Unlock()
		return
	}
	if !u.role.can("enable_disable_record") {
		s.mu.Unlock()
		forbidden(w, r)
		return
	}
	doc := s.ownDoc(rec)
	before := deepCopy(doc).(map[string]any)
	doc["record_state"] = false
	s.finishSave(rec, before, u.UserName)
	s.inj.Counters().Write("disable")
	out := s.outbound(EventCaseUpdate, rec)
	s.mu.Unlock()
	s.deliver(out)
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"id": rec.id}})
}

func (s *Server) handleSync(w http.ResponseWriter, r *http.Request, u *user) {
	s.lock()
	rec := s.caseFor(w, r, u)
	if rec == nil {
		s.mu.Unlock()
		return
	}
	if !u.role.can("sync_external") {
		s.mu.Unlock()
		forbidden(w, r)
		return
	}
	rec.syncStatus = "sending"
	out := s.outbound(EventCasePost, rec)
	s.mu.Unlock()
	s.deliver(out)
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
		"record_id": rec.id, "record_type": "case", "synced_at": nil, "sync_status": "sending",
	}})
}

// Cases returns a deep copy of every case, in the default list order
// (created_at descending). Each carries id and last_updated_at beside its
// stored fields.
func (s *Server) Cases() []map[string]any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]map[string]any, 0, len(s.records))
	for i := len(s.records) - 1; i >= 0; i-- {
		out = append(out, s.snapshot(s.records[i]))
	}
	return out
}

// Case returns a deep copy of the case with record id id.
func (s *Server) Case(id string) (map[string]any, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rec := s.byID[id]
	if rec == nil {
		return nil, false
	}
	return s.snapshot(rec), true
}

// CaseByCaseID returns a deep copy of the case whose case_id is caseID.
func (s *Server) CaseByCaseID(caseID string) (map[string]any, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	recs := s.ident["case_id"][caseID]
	if len(recs) == 0 {
		return nil, false
	}
	return s.snapshot(recs[0]), true
}

func (s *Server) snapshot(rec *record) map[string]any {
	d := deepCopy(s.docOf(rec)).(map[string]any)
	d["id"] = rec.id
	d["last_updated_at"] = fmtMS(rec.updated)
	if rec.syncStatus != "" {
		d["sync_status"] = rec.syncStatus
	}
	return d
}

// Referrals returns the referrals of the case with record id caseRecordID,
// oldest first, as the integration user sees them.
func (s *Server) Referrals(caseRecordID string) []map[string]any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rec := s.byID[caseRecordID]
	if rec == nil {
		return nil
	}
	u := s.userByName[s.opts.Login]
	var out []map[string]any
	for _, t := range rec.trans {
		if t.typ != typeReferral {
			continue
		}
		var m map[string]any
		json.Unmarshal(s.renderTransition(t, u).bytes(), &m)
		out = append(out, m)
	}
	return out
}

// AddCase stores one case record as Options.CasesFrom does (its
// "referrals" become referral transitions, its created_at and
// last_updated_at are kept), as if a user had just made it: for tests of
// what a later run sends.
func (s *Server) AddCase(c map[string]any) {
	s.lock()
	defer s.mu.Unlock()
	s.importCase(c)
	sort.Slice(s.records, func(i, j int) bool { return recordLess(s.records[i], s.records[j]) })
	for _, r := range s.records {
		s.lastStamp = max(s.lastStamp, r.updated)
	}
}

// Touch updates a case as a user would in the Primero UI: fields are
// merged (subforms by unique_id), derived fields recomputed, and
// last_updated_at bumped. No permission or schema check applies. It panics
// on an unknown id, which is a mistake in the test.
func (s *Server) Touch(id string, fields map[string]any) {
	s.lock()
	rec := s.byID[id]
	if rec == nil {
		s.mu.Unlock()
		panic(fmt.Sprintf("primero fake: Touch of unknown case %s", id))
	}
	doc := s.ownDoc(rec)
	before := deepCopy(doc).(map[string]any)
	s.unindex(rec, doc)
	rec.doc = mergeData(doc, deepCopy(fields)).(map[string]any)
	actor := strOf(rec.doc["owned_by"])
	if actor == "" {
		actor = s.opts.Login
	}
	s.finishSave(rec, before, actor)
	s.index(rec, rec.doc)
	out := s.outbound(EventCaseUpdate, rec)
	s.mu.Unlock()
	s.deliver(out)
}
