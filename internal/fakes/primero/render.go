package primero

import (
	"encoding/json"
	"sort"
	"strings"
)

// summaryFields is `fields=short` (Child.summary_field_names).
var summaryFields = []string{
	"id", "short_id", "case_id_display", "name", "survivor_code_no", "age", "sex", "registration_date", "hidden_name",
	"workflow", "case_status_reopened", "module_id", "owned_by", "owned_by_agency_id", "status", "created_at",
	"photos", "flag_count", "record_in_scope", "alert_count",
}

// selection is the set of fields a listing asked for; nil means all.
type selection map[string]bool

func parseSelection(v string) selection {
	if v == "" {
		return nil
	}
	sel := selection{}
	names := strings.Split(v, ",")
	if v == "short" {
		names = summaryFields
	}
	for _, n := range names {
		sel[strings.TrimSpace(n)] = true
	}
	return sel
}

func (sel selection) has(k string) bool { return sel == nil || sel[k] }

// visible reports whether u may see stored key k. A key the configuration
// does not know can only come from an imported record (an instance's own
// fields) and is served as stored.
func (s *Server) visible(u *user, k string) bool {
	if hiddenFields[k] {
		return false
	}
	return u.role.read[k] || !s.cat.known[k]
}

// inScope is the role's group permission applied to a case (primero.md §4,
// "Scope"). Callers hold s.mu.
func (s *Server) inScope(u *user, d map[string]any) bool {
	gp := u.role.GroupPermission
	if gp == "all" {
		return true
	}
	assoc := stringsOf(d["associated_user_names"])
	switch gp {
	case "agency":
		if u.agency == nil {
			return false
		}
		if strOf(d["owned_by_agency_id"]) == u.agency.UniqueID {
			return true
		}
		for _, n := range assoc {
			if o := s.userByName[n]; o != nil && o.agency == u.agency {
				return true
			}
		}
	case "group":
		for _, n := range assoc {
			o := s.userByName[n]
			if o == nil {
				continue
			}
			for _, g := range o.UserGroups {
				for _, mine := range u.UserGroups {
					if g == mine {
						return true
					}
				}
			}
		}
	default: // self, identified
		for _, n := range assoc {
			if n == u.UserName {
				return true
			}
		}
	}
	return false
}

func enabledOf(d map[string]any) bool {
	if v, ok := d["record_state"].(bool); ok {
		return v
	}
	return true
}

// renderCase serialises a case as u sees it: id and enabled first, then
// the stored keys u may read, then last_updated_at and the computed keys
// (RecordDataService).
func (s *Server) renderCase(r *record, d map[string]any, u *user, sel selection) json.RawMessage {
	o := newObject()
	o.add("id", r.id)
	o.add("enabled", enabledOf(d))
	keys := make([]string, 0, len(d))
	for k := range d {
		if k == "id" || k == "enabled" || k == "last_updated_at" || !sel.has(k) || !s.visible(u, k) {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o.add(k, d[k])
	}
	o.add("last_updated_at", fmtMS(r.updated))
	s.addComputed(o, r, d, u, sel)
	return o.bytes()
}

func (s *Server) addComputed(o *object, r *record, d map[string]any, u *user, sel selection) {
	if sel.has("record_in_scope") {
		o.add("record_in_scope", s.inScope(u, d))
	}
	if u.role.read["flag_count"] && sel.has("flag_count") {
		o.add("flag_count", 0)
	}
	if u.role.read["alert_count"] && sel.has("alert_count") {
		o.add("alert_count", 0)
	}
	if u.role.read["photos"] && sel.has("photos") {
		o.add("photo", nil)
	}
	for _, f := range s.cat.attachmentFields {
		if u.role.read[f] && sel.has(f) {
			o.add(f, []any{})
		}
	}
	if u.role.read["sync_status"] {
		if r.syncStatus != "" && sel.has("sync_status") {
			o.add("sync_status", r.syncStatus)
		}
		if r.syncedAt != 0 && sel.has("synced_at") {
			o.add("synced_at", fmtMS(r.syncedAt))
		}
	}
}

// renderChanged is the answer to a write: id, enabled, the permitted keys
// the write changed, last_updated_at.
func (s *Server) renderChanged(r *record, u *user, changed []string) json.RawMessage {
	d := r.doc
	o := newObject()
	o.add("id", r.id)
	o.add("enabled", enabledOf(d))
	sort.Strings(changed)
	for _, k := range changed {
		if k == "id" || k == "enabled" || k == "last_updated_at" || !s.visible(u, k) {
			continue
		}
		if v, ok := d[k]; ok {
			o.add(k, v)
		}
	}
	o.add("last_updated_at", fmtMS(r.updated))
	return o.bytes()
}
