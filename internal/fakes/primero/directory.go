package primero

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// renderUser is the users index item: nulls removed, no secrets
// (primero.md §9).
func (s *Server) renderUser(u *user) json.RawMessage {
	o := newObject()
	o.add("id", u.id)
	o.add("user_name", u.UserName)
	for _, kv := range [][2]string{{"full_name", u.FullName}, {"email", u.Email}, {"phone", u.Phone}, {"position", u.Position}} {
		if kv[1] != "" {
			o.add(kv[0], kv[1])
		}
	}
	if u.agency != nil {
		o.add("agency_id", u.agency.id)
	}
	if u.Location != "" {
		o.add("location", u.Location)
		o.add("reporting_location_code", u.Location)
	}
	o.add("disabled", u.Disabled)
	o.add("role_unique_id", u.role.UniqueID)
	o.add("role_group_permission", u.role.GroupPermission)
	o.add("module_unique_ids", u.role.Modules)
	groups := u.UserGroups
	if groups == nil {
		groups = []string{}
	}
	o.add("user_group_unique_ids", groups)
	return o.bytes()
}

// listParam collects `k[]=v`, `k[0]=v` and `k=v` values.
func listParam(q map[string][]string, k string) []string {
	var out []string
	for key, vals := range q {
		if key == k || key == k+"[]" || strings.HasPrefix(key, k+"[") {
			out = append(out, vals...)
		}
	}
	return out
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request, u *user) {
	if !u.role.can("read_users") {
		forbidden(w, r)
		return
	}
	page, per, broken := s.pagination(r)
	if broken || s.sqlBroken(r) {
		writeRaw(w, http.StatusOK, listBody(nil, 0, per, page, "total_enabled", 0))
		return
	}
	q := r.URL.Query()
	agencies := listParam(q, "agency")
	disabled := listParam(q, "disabled")
	groups := listParam(q, "user_group_ids")
	roles := listParam(q, "role_id")
	search := strings.ToLower(q.Get("query"))
	s.mu.RLock()
	defer s.mu.RUnlock()
	var matches []*user
	enabled := 0
	for _, x := range s.users {
		if v := q.Get("user_name"); q.Has("user_name") && x.UserName != v {
			continue
		}
		if len(agencies) > 0 && (x.agency == nil || !slices.Contains(agencies, strconv.Itoa(x.agency.id))) {
			continue
		}
		if len(disabled) > 0 && !slices.Contains(disabled, strconv.FormatBool(x.Disabled)) {
			continue
		}
		if len(groups) > 0 && !slices.ContainsFunc(x.UserGroups, func(g string) bool { return slices.Contains(groups, g) }) {
			continue
		}
		if len(roles) > 0 && !slices.Contains(roles, x.role.UniqueID) && !slices.Contains(roles, strconv.Itoa(x.role.id)) {
			continue
		}
		if v := q.Get("location"); v != "" && x.Location != v {
			continue
		}
		if search != "" && !strings.Contains(strings.ToLower(x.UserName+" "+x.FullName), search) {
			continue
		}
		matches = append(matches, x)
		if !x.Disabled {
			enabled++
		}
	}
	var items []json.RawMessage
	if off := (page - 1) * per; off < len(matches) && per > 0 {
		for _, x := range matches[off:min(off+per, len(matches))] {
			items = append(items, s.renderUser(x))
		}
	}
	writeRaw(w, http.StatusOK, listBody(items, len(matches), per, page, "total_enabled", enabled))
}

func (s *Server) handleShowUser(w http.ResponseWriter, r *http.Request, u *user) {
	if !u.role.can("read_users") {
		forbidden(w, r)
		return
	}
	id, err := strconv.Atoi(r.PathValue("id"))
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err != nil || id < 1 || id > len(s.users) {
		notFound(w, r, fmt.Sprintf("Couldn't find User with 'id'=%s", r.PathValue("id")))
		return
	}
	writeRaw(w, http.StatusOK, wrapData(s.renderUser(s.users[id-1])))
}

// handleReferTo lists who may receive a referral of a case of the given
// module: enabled users holding receive_referral, never the caller.
func (s *Server) handleReferTo(w http.ResponseWriter, r *http.Request, u *user) {
	q := r.URL.Query()
	mod := q.Get("record_module_id")
	s.mu.RLock()
	defer s.mu.RUnlock()
	var items []map[string]any
	for _, x := range s.users {
		if x == u || x.Disabled || !x.role.can("receive_referral") {
			continue
		}
		if mod != "" && !slices.Contains(x.role.Modules, mod) {
			continue
		}
		if a := q.Get("agency"); a != "" && (x.agency == nil || x.agency.UniqueID != a) {
			continue
		}
		if l := q.Get("location"); l != "" && x.Location != l {
			continue
		}
		item := map[string]any{"id": x.id, "user_name": x.UserName, "full_name": x.FullName, "position": x.Position,
			"location": x.Location}
		if x.agency != nil {
			item["agency_id"] = x.agency.id
		}
		items = append(items, item)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": items})
}

func (s *Server) handleAgencies(w http.ResponseWriter, r *http.Request, u *user) {
	page, per, _ := s.pagination(r)
	s.mu.RLock()
	all := slices.Clone(s.agencies)
	s.mu.RUnlock()
	var items []json.RawMessage
	if off := (page - 1) * per; off >= 0 && off < len(all) && per > 0 {
		for _, a := range all[off:min(off+per, len(all))] {
			b, _ := json.Marshal(map[string]any{"id": a.id, "unique_id": a.UniqueID, "agency_code": a.AgencyCode,
				"name": map[string]string{"en": a.Name}, "services": []string{}, "disabled": false, "telephone": nil, "logo_enabled": false})
			items = append(items, b)
		}
	}
	writeRaw(w, http.StatusOK, listBody(items, len(all), per, page))
}

func (s *Server) handleLocations(w http.ResponseWriter, r *http.Request, u *user) {
	q := r.URL.Query()
	page, per := 1, 100 // locations: default 100, no cap
	if q.Has("page") {
		page = atoi(q.Get("page"))
	}
	if q.Has("per") {
		per = atoi(q.Get("per"))
	}
	hierarchy := q.Get("hierarchy") == "true"
	all := s.cat.locations
	var items []json.RawMessage
	if off := (page - 1) * per; off >= 0 && off < len(all) && per > 0 {
		for _, l := range all[off:min(off+per, len(all))] {
			m := map[string]any{"id": l.id, "code": l.Code, "type": l.Type, "admin_level": l.level,
				"name": map[string]string{"en": l.fullName}, "placename": map[string]string{"en": l.Name}}
			if hierarchy {
				m["hierarchy"] = l.hierarchy
			}
			b, _ := json.Marshal(m)
			items = append(items, b)
		}
	}
	writeRaw(w, http.StatusOK, listBody(items, len(all), per, page))
}

func (s *Server) handleLookups(w http.ResponseWriter, r *http.Request, u *user) {
	page, per, _ := s.pagination(r)
	all := s.cat.lookups
	var items []json.RawMessage
	if off := (page - 1) * per; off >= 0 && off < len(all) && per > 0 {
		for _, l := range all[off:min(off+per, len(all))] {
			b, _ := json.Marshal(l)
			items = append(items, b)
		}
	}
	writeRaw(w, http.StatusOK, listBody(items, len(all), per, page))
}

func (s *Server) handleForms(w http.ResponseWriter, r *http.Request, u *user) {
	q := r.URL.Query()
	rt, mod := q.Get("record_type"), q.Get("module_id")
	var items []map[string]any
	for i, f := range s.cat.forms {
		if rt != "" && f.ParentForm != rt {
			continue
		}
		var mods []string
		for _, m := range s.cat.modules {
			if slices.Contains(m.forms, f) || f.IsNested && slices.Contains(m.Forms, "*") ||
				f.IsNested && slices.Contains(m.Forms, f.UniqueID) {
				mods = append(mods, m.UniqueID)
			}
		}
		if mod != "" && !slices.Contains(mods, mod) {
			continue
		}
		items = append(items, map[string]any{"id": i + 1, "unique_id": f.UniqueID, "parent_form": f.ParentForm,
			"is_nested": f.IsNested, "module_ids": mods, "fields": f.Fields})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": items})
}

func (s *Server) handleModules(w http.ResponseWriter, r *http.Request, u *user) {
	var items []map[string]any
	for _, m := range s.cat.modules {
		items = append(items, map[string]any{"id": m.id, "unique_id": m.UniqueID, "name": map[string]string{"en": m.Name},
			"associated_record_types": m.AssociatedRecordTypes, "use_webhooks_for": m.UseWebhooksFor,
			"use_webhook_sync_for": m.UseWebhookSyncFor, "use_workflow_service_implemented": m.UseWorkflowServiceImplemented})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": items})
}

// Location is one location of the fake's catalogue: its code, type
// (country, province, district, commune, village, camp), name and parent's
// code.
type Location struct {
	Code, Type, Name, Parent string
}

// Locations lists the catalogue's locations in the order GET
// /api/v2/locations serves them, for a test or the demo that needs a
// system's own copy of the place names (the ONA dashboard's
// locations_lookup).
func (s *Server) Locations() []Location {
	out := make([]Location, 0, len(s.cat.locations))
	for _, l := range s.cat.locations {
		out = append(out, Location{Code: l.Code, Type: l.Type, Name: l.Name, Parent: l.Parent})
	}
	return out
}
