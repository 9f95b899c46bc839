package primero

import (
	"reflect"
	"sort"
	"strings"
)

// finishSave computes what Primero's save callbacks compute (primero.md §5,
// "Side effects on every save") and stamps the save. before is the document
// as it was, nil on create. Callers hold s.mu for writing.
func (s *Server) finishSave(r *record, before map[string]any, actor string) {
	d := r.doc
	s.fillSubformIDs(d)

	if before == nil || !sameValue(before["owned_by"], d["owned_by"]) {
		s.fillOwner(d)
	}

	assigned := stringsOf(d["assigned_user_names"])
	owner, _ := d["owned_by"].(string)
	d["associated_user_names"] = toAnyStrings(uniqueStrings(append([]string{owner}, assigned...)))

	servicesChanged := before == nil && d["services_section"] != nil || before != nil && !sameValue(before["services_section"], d["services_section"])
	if rows, ok := d["services_section"].([]any); ok {
		for _, row := range rows {
			m, ok := row.(map[string]any)
			if !ok {
				continue
			}
			switch {
			case present(m["service_implemented_day_time"]):
				m["service_implemented"] = "implemented"
			case present(m["service_type"]):
				m["service_implemented"] = "not_implemented"
			}
		}
	}
	s.calculateWorkflow(d, servicesChanged)

	if len(r.trans) > 0 {
		s.transitionSummary(r)
	}
	if s.opts.AutoName {
		var parts []string
		for _, k := range []string{"name_first", "name_middle", "name_last"} {
			if v, ok := d[k].(string); ok && v != "" {
				parts = append(parts, v)
			}
		}
		if len(parts) > 0 {
			d["name"] = strings.Join(parts, " ")
		}
	}
	d["last_updated_by"] = actor
	r.updated = s.stamp(r)
}

// fillSubformIDs gives every subform row without a unique_id a fresh one,
// as Primero does when a row is appended.
func (s *Server) fillSubformIDs(d map[string]any) {
	for _, k := range sortedKeys(d) {
		rows, ok := d[k].([]any)
		if !ok {
			continue
		}
		for _, row := range rows {
			if m, ok := row.(map[string]any); ok {
				if id, _ := m["unique_id"].(string); id == "" {
					m["unique_id"] = s.contentID("unique_id", m)
				}
			}
		}
	}
}

// fillOwner copies the owner's agency, groups and location onto the case.
func (s *Server) fillOwner(d map[string]any) {
	name, _ := d["owned_by"].(string)
	u := s.userByName[name]
	if u == nil {
		return
	}
	d["owned_by_full_name"] = u.FullName
	if u.agency != nil {
		d["owned_by_agency_id"] = u.agency.UniqueID
	}
	d["owned_by_groups"] = toAnyStrings(u.UserGroups)
	if u.Location != "" {
		d["owned_by_location"] = u.Location
	}
}

// calculateWorkflow is Workflow#calculate_workflow for the parts a sync
// touches: services set the workflow of an open case, closing sets
// "closed".
func (s *Server) calculateWorkflow(d map[string]any, servicesChanged bool) {
	switch d["status"] {
	case "closed":
		d["workflow"] = "closed"
		return
	case "open":
	default:
		return
	}
	rows, _ := d["services_section"].([]any)
	if !servicesChanged || len(rows) == 0 {
		return
	}
	mod := s.cat.moduleByID[strOf(d["module_id"])]
	allImplemented := true
	for _, row := range rows {
		m, _ := row.(map[string]any)
		if m["service_implemented"] != "implemented" {
			allImplemented = false
		}
	}
	if allImplemented && mod != nil && mod.UseWorkflowServiceImplemented {
		d["workflow"] = "services_implemented"
		return
	}
	var candidates []map[string]any
	for _, row := range rows {
		m, _ := row.(map[string]any)
		if m != nil && present(m["service_response_type"]) && m["service_implemented"] == "not_implemented" {
			candidates = append(candidates, m)
		}
	}
	if len(candidates) == 0 {
		return
	}
	// sort_by is stable in effect for equal keys; ties keep row order and
	// the last one wins, as with Ruby's sort_by(...).last.
	sort.SliceStable(candidates, func(i, j int) bool {
		return strOf(candidates[i]["service_response_day_time"]) < strOf(candidates[j]["service_response_day_time"])
	})
	d["workflow"] = candidates[len(candidates)-1]["service_response_type"]
}

// transitionSummary recalculates the referral and transfer summary fields.
func (s *Server) transitionSummary(r *record) {
	d := r.doc
	var referred, transferred []string
	transferStatus := ""
	for _, t := range r.trans {
		switch t.typ {
		case typeReferral:
			if t.status == statusInProgress || t.status == statusAccepted {
				referred = append(referred, t.to)
			}
		case typeTransfer:
			transferStatus = t.status
			if t.status == statusInProgress {
				transferred = append(transferred, t.to)
			}
		}
	}
	referred = uniqueStrings(referred)
	d["referred_users"] = toAnyStrings(referred)
	d["referred_users_present"] = len(referred) > 0
	if transferStatus != "" {
		d["transfer_status"] = transferStatus
		d["transferred_to_users"] = toAnyStrings(uniqueStrings(transferred))
	}
}

func present(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	}
	return true
}

func strOf(v any) string {
	s, _ := v.(string)
	return s
}

func stringsOf(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func sameValue(a, b any) bool { return reflect.DeepEqual(a, b) }
