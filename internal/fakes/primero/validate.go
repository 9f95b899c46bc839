package primero

import (
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// reUUID is Primero's UUID_REGEX: lower case only.
var reUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// updateForbidden are dropped from a PATCH without an error
// (PermittedFormFieldsService::UPDATE_FORBIDDEN plus the case ones).
var updateForbidden = map[string]bool{
	"id": true, "unique_identifier": true, "unique_id": true, "short_id": true, "created_at": true,
	"created_by": true, "case_id": true, "case_id_display": true,
}

var coreStatus = map[string]bool{"open": true, "closed": true, "transferred": true, "identified": true}

var moduleIDs = map[string]bool{"primeromodule-cp": true, "primeromodule-gbv": true, "primeromodule-mrm": true}

var attachmentTypes = map[string]bool{"audio_upload_box": true, "photo_upload_box": true, "document_upload_box": true}

// coreRule checks a core field (PERMITTED_CORE_FIELDS_SCHEMA and the case
// extras); it reports whether v is acceptable.
var coreRule = map[string]func(v any) bool{
	"id":                   func(v any) bool { s, ok := v.(string); return ok && reUUID.MatchString(s) },
	"incident_case_id":     func(v any) bool { s, ok := v.(string); return ok && reUUID.MatchString(s) },
	"status":               func(v any) bool { s, ok := v.(string); return ok && coreStatus[s] },
	"state":                isBool,
	"record_state":         isBool,
	"case_status_reopened": func(v any) bool { return v == nil || isBool(v) },
	"created_at":           func(v any) bool { return isDateTime(v) },
	"owned_by":             func(v any) bool { _, ok := v.(string); return ok },
	"module_id":            func(v any) bool { s, ok := v.(string); return ok && moduleIDs[s] },
	"workflow":             func(v any) bool { _, ok := v.(string); return ok },
	// SYNC_FIELDS_SCHEMA, for roles with sync_external.
	"synced_at":          isDate,
	"sync_status":        func(v any) bool { _, ok := v.(string); return ok },
	"mark_synced":        isBool,
	"mark_synced_url":    func(v any) bool { _, ok := v.(string); return ok },
	"mark_synced_status": func(v any) bool { _, ok := v.(string); return ok },
}

func isBool(v any) bool { _, ok := v.(bool); return ok }

func isDateTime(v any) bool {
	s, ok := v.(string)
	if !ok || !strings.Contains(s, "T") && !strings.Contains(s, " ") {
		return false
	}
	if m := reDateTime.FindStringSubmatch(s); m != nil {
		return true
	}
	return false
}

// isDate accepts YYYY-MM-DD, and only a real calendar date.
func isDate(v any) bool {
	s, ok := v.(string)
	if !ok || !reDate.MatchString(s) {
		return false
	}
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

// writable lists the top-level keys a role may write on a record of the
// given module: the core fields, the module's form fields, and the sync
// fields for sync_external roles. Everything else is dropped silently.
func (s *Server) writable(u *user, moduleID string, create bool) (map[string]*fieldDef, map[string]bool) {
	core := map[string]bool{}
	for _, n := range coreFields {
		core[n] = true
	}
	core["workflow"] = true
	if !create {
		delete(core, "id")
	}
	if u.role.can("sync_external") {
		for _, n := range syncFields {
			core[n] = true
		}
	}
	return u.role.write[moduleID], core
}

// clean trims data to what the role may write and validates it. It returns
// the kept fields, or the JSON pointers of the invalid ones (422).
func (s *Server) clean(data map[string]any, u *user, moduleID string, create bool, now time.Time) (map[string]any, []string) {
	fields, core := s.writable(u, moduleID, create)
	out := map[string]any{}
	var bad []string
	for _, k := range sortedKeys(data) {
		v := data[k]
		if !create && updateForbidden[k] {
			continue
		}
		if fd, ok := fields[k]; ok && !core[k] {
			if attachmentTypes[fd.Type] {
				continue // attachments have their own endpoints
			}
			bad = append(bad, checkField(fd, v, "/"+escapePointer(k), now)...)
			out[k] = v
			continue
		}
		if core[k] {
			if rule := coreRule[k]; rule != nil && !rule(v) {
				bad = append(bad, "/"+escapePointer(k))
			}
			out[k] = v
		}
	}
	if len(bad) > 0 {
		return nil, bad
	}
	return out, nil
}

func escapePointer(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

// checkField applies RecordJsonValidatorService's schema for one field,
// with the enum check on lookup-backed selects that primero.md §5 asks for.
func checkField(fd *fieldDef, v any, ptr string, now time.Time) []string {
	bad := func() []string { return []string{ptr} }
	switch fd.Type {
	case typeText, typeTextArea:
		if _, ok := v.(string); !ok && v != nil {
			return bad()
		}
	case typeNumeric:
		if v == nil {
			return nil
		}
		n, ok := v.(float64)
		if !ok || n != math.Trunc(n) || n < math.MinInt32 || n > math.MaxInt32 {
			return bad()
		}
	case typeTickBox:
		if !isBool(v) {
			return bad()
		}
	case typeDate:
		if v == nil {
			return nil
		}
		if fd.DateIncludeTime {
			if !isDateTime(v) {
				return bad()
			}
			return nil
		}
		if !isDate(v) {
			return bad()
		}
		if fd.Name == "date_of_birth" {
			if t, _ := time.Parse(time.DateOnly, v.(string)); t.Year() > now.Year() {
				return bad()
			}
		}
	case typeRadio:
		switch v.(type) {
		case nil, string, bool:
		default:
			return bad()
		}
	case typeSelect:
		if v == nil {
			return nil
		}
		if !fd.MultiSelect {
			s, ok := v.(string)
			if !ok || fd.options != nil && !fd.options[s] {
				return bad()
			}
			return nil
		}
		arr, ok := v.([]any)
		if !ok {
			return bad()
		}
		var out []string
		for i, e := range arr {
			s, ok := e.(string)
			if !ok || fd.options != nil && !fd.options[s] {
				out = append(out, ptr+"/"+strconv.Itoa(i))
			}
		}
		return out
	case typeSubform:
		if v == nil {
			return nil
		}
		rows, ok := v.([]any)
		if !ok {
			return bad()
		}
		var out []string
		for i, row := range rows {
			rp := ptr + "/" + strconv.Itoa(i)
			m, ok := row.(map[string]any)
			if !ok {
				out = append(out, rp)
				continue
			}
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				kp := rp + "/" + escapePointer(k)
				switch k {
				case "unique_id":
					if s, ok := m[k].(string); !ok || !reUUID.MatchString(s) {
						out = append(out, kp)
					}
					continue
				case "_destroy":
					if m[k] != nil && !isBool(m[k]) {
						out = append(out, kp)
					}
					continue
				}
				sub := fd.subform.fieldByName[k]
				if sub == nil || !writeableTypes[sub.Type] {
					// The subform schema is closed (additionalProperties: false).
					out = append(out, kp)
					continue
				}
				out = append(out, checkField(sub, m[k], kp, now)...)
			}
		}
		return out
	}
	return nil
}
