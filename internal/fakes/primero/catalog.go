package primero

import (
	"bytes"
	"embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The configuration is embedded so that `engine demo` and `engine fake
// primero` serve the same forms and lookups as the tests, from any working
// folder. config/README.md gives each file's origin.
//
//go:embed config/*.json config/*.csv
var configFS embed.FS

// Field types of the form catalogue (Primero's Field::*).
const (
	typeText      = "text_field"
	typeTextArea  = "textarea"
	typeTickBox   = "tick_box"
	typeNumeric   = "numeric_field"
	typeDate      = "date_field"
	typeSelect    = "select_box"
	typeRadio     = "radio_button"
	typeSubform   = "subform"
	typeSeparator = "separator"
)

// writeableTypes mirrors PermittedFormFieldsService::PERMITTED_WRITEABLE_FIELD_TYPES:
// a separator is on the form but can never be written.
var writeableTypes = map[string]bool{
	typeText: true, typeTextArea: true, typeRadio: true, typeTickBox: true, typeSelect: true,
	typeNumeric: true, typeDate: true, typeSubform: true,
	"audio_upload_box": true, "photo_upload_box": true, "document_upload_box": true,
	"tally_field": true, "calculated": true, "signature_field": true,
}

type fieldDef struct {
	Name            string   `json:"name"`
	Type            string   `json:"type"`
	OptionSource    string   `json:"option_strings_source,omitempty"`
	OptionIDs       []string `json:"option_ids,omitempty"`
	MultiSelect     bool     `json:"multi_select,omitempty"`
	DateIncludeTime bool     `json:"date_include_time,omitempty"`
	SubformID       string   `json:"subform_unique_id,omitempty"`
	Visible         *bool    `json:"visible,omitempty"`
	Editable        *bool    `json:"editable,omitempty"`
	Disabled        *bool    `json:"disabled,omitempty"`
	Required        bool     `json:"required,omitempty"`

	subform *formDef
	options map[string]bool // nil when the source is not enum-checked
}

type formDef struct {
	UniqueID   string      `json:"unique_id"`
	ParentForm string      `json:"parent_form"`
	IsNested   bool        `json:"is_nested"`
	Fields     []*fieldDef `json:"fields"`

	fieldByName map[string]*fieldDef
}

type lookupValue struct {
	ID          string            `json:"id"`
	DisplayText map[string]string `json:"display_text"`
}

type lookupDef struct {
	ID       int               `json:"id"`
	UniqueID string            `json:"unique_id"`
	Name     map[string]string `json:"name"`
	Locked   bool              `json:"locked"`
	Values   []lookupValue     `json:"values"`
}

type module struct {
	UniqueID                      string   `json:"unique_id"`
	Name                          string   `json:"name"`
	AssociatedRecordTypes         []string `json:"associated_record_types"`
	UseWebhooksFor                []string `json:"use_webhooks_for"`
	UseWebhookSyncFor             []string `json:"use_webhook_sync_for"`
	UseWorkflowServiceImplemented bool     `json:"use_workflow_service_implemented"`
	Forms                         []string `json:"forms"`

	id     int
	fields map[string]*fieldDef // top-level case fields of the module's forms
	forms  []*formDef
}

type role struct {
	UniqueID        string   `json:"unique_id"`
	GroupPermission string   `json:"group_permission"`
	Modules         []string `json:"modules"`
	Permissions     []string `json:"permissions"`
	ExcludeForms    []string `json:"exclude_forms"`

	id    int
	perms map[string]bool
	read  map[string]bool                 // readable field names (filters, output)
	write map[string]map[string]*fieldDef // module -> writable form fields
}

func (r *role) can(p string) bool { return r.perms[p] }

type agency struct {
	UniqueID   string `json:"unique_id"`
	AgencyCode string `json:"agency_code"`
	Name       string `json:"name"`

	id int
}

type location struct {
	Code   string `json:"code"`
	Type   string `json:"type"`
	Name   string `json:"name"`
	Parent string `json:"parent"`

	id        int
	level     int
	hierarchy []string // ancestor codes, root first, then the code itself
	fullName  string
}

type userSeed struct {
	UserName   string   `json:"user_name"`
	FullName   string   `json:"full_name"`
	Agency     string   `json:"agency"`
	Role       string   `json:"role"`
	Location   string   `json:"location"`
	Position   string   `json:"position"`
	UserGroups []string `json:"user_groups"`
	Disabled   bool     `json:"disabled"`
}

type extensions struct {
	LookupValues map[string][]string `json:"lookup_values"`
	Lookups      []struct {
		UniqueID string   `json:"unique_id"`
		Name     string   `json:"name"`
		Values   []string `json:"values"`
	} `json:"lookups"`
	FieldOptionIDs  map[string][]string    `json:"field_option_ids"`
	Forms           []*formDef             `json:"forms"`
	SubformFields   map[string][]*fieldDef `json:"subform_fields"`
	Modules         []*module              `json:"modules"`
	Roles           []*role                `json:"roles"`
	Agencies        []*agency              `json:"agencies"`
	Users           []userSeed             `json:"users"`
	ProvinceManager struct {
		Agency    string `json:"agency"`
		Role      string `json:"role"`
		UserGroup string `json:"user_group"`
	} `json:"province_manager"`
	AgencyUser struct {
		Role string `json:"role"`
	} `json:"agency_user"`
	Locations          []*location `json:"locations"`
	GeneratedLocations struct {
		ParentType string `json:"parent_type"`
		Districts  int    `json:"districts"`
		Communes   int    `json:"communes"`
		Villages   int    `json:"villages"`
	} `json:"generated_locations"`
}

type servicePair struct{ Type, Subtype string }

// catalog is the instance configuration: read-only once built, shared by
// every request.
type catalog struct {
	forms      []*formDef
	formByID   map[string]*formDef
	lookups    []*lookupDef
	lookupByID map[string]*lookupDef
	modules    []*module
	moduleByID map[string]*module
	roles      map[string]*role
	agencies   []*agency
	agencyByID map[string]*agency
	locations  []*location
	locByCode  map[string]*location
	userSeeds  []userSeed

	// known holds every name the configuration defines (form fields plus
	// the core, filter and record-information names); a stored key outside
	// it can only come from an imported record and is served as stored.
	known map[string]bool
	// attachmentFields are the upload fields, served from the attachment
	// table (always [] here), never from the record.
	attachmentFields []string

	// Deployment tables for the seed generator.
	cambodiaServices []servicePair
	cambodiaOrgs     []string // "cif", "fco", ...
	provinceOwner    map[int]string
	villages         []string // generated Cambodia village codes
	unhcrLocations   []string
	responseTypes    []string // Cambodia service_response_type extensions
}

// Primero's fixed field-name lists (PermittedFieldService).
var (
	coreFields       = []string{"id", "status", "state", "case_status_reopened", "record_state", "incident_case_id", "created_at", "owned_by", "module_id"}
	filterFieldNames = []string{
		"or", "not", "cases_by_date", "record_in_scope", "associated_user_names", "not_edited_by_owner", "referred_users",
		"referred_users_present", "transferred_to_users", "transferred_to_user_groups", "has_photo", "survivor_code",
		"survivor_code_no", "case_id_display", "created_at", "has_incidents", "short_id", "record_state", "sex", "age",
		"registration_date", "reassigned_transferred_on", "current_alert_types", "location_current",
		"reporting_location_hierarchy", "armed_force_group_party_names",
	}
	recordInfoFields = []string{
		"alert_count", "assigned_user_names", "created_at", "created_by", "created_by_agency", "owned_by", "owned_by_agency_id",
		"owned_by_text", "owned_by_agency_office", "previous_agency", "previously_owned_by", "reassigned_tranferred_on",
		"reopened_logs", "last_updated_at", "last_updated_by", "owned_by_groups", "previously_owned_by_agency",
		"created_organization", "consent_for_services", "disclosure_other_orgs",
	}
	syncFields = []string{"synced_at", "sync_status", "mark_synced", "mark_synced_url", "mark_synced_status"}
	// hiddenFields are stored for the server's own bookkeeping (scope,
	// owner details) but are never on a role's permitted list.
	hiddenFields = map[string]bool{
		"unique_identifier": true, "owned_by_full_name": true, "associated_user_agencies": true,
		"associated_user_groups": true, "transfer_status": true,
	}
)

func readConfig(name string) []byte {
	b, err := configFS.ReadFile("config/" + name)
	if err != nil {
		panic(fmt.Sprintf("primero fake: embedded config %s: %v", name, err))
	}
	return b
}

// loadCatalog builds the configuration from the embedded files. A failure is
// a bug in those files, caught by every test, so it panics.
func loadCatalog() *catalog {
	c := &catalog{
		formByID:   map[string]*formDef{},
		lookupByID: map[string]*lookupDef{},
		moduleByID: map[string]*module{},
		roles:      map[string]*role{},
		agencyByID: map[string]*agency{},
		locByCode:  map[string]*location{},
		known:      map[string]bool{},
	}
	var forms struct {
		Forms []*formDef `json:"forms"`
	}
	mustJSON("case_forms_field_catalog.json", &forms)
	var lookups struct {
		Data []*lookupDef `json:"data"`
	}
	mustJSON("lookups_default_config.json", &lookups)
	var ext extensions
	mustJSON("deployment_extensions.json", &ext)
	var vm struct {
		Services      map[string][]servicePairJSON `json:"oscar_service_name_to_primero_service"`
		OrgUsers      map[string]string            `json:"oscar_org_agency_to_primero_agency_user"`
		ResponseTypes []string                     `json:"primero_service_response_types"`
	}
	mustJSON("cambodia_integration_value_maps.json", &vm)

	// Lookups: defaults, then deployment values, then Cambodia's service tables.
	c.lookups = lookups.Data
	for _, l := range c.lookups {
		c.lookupByID[l.UniqueID] = l
	}
	for _, nl := range ext.Lookups {
		l := &lookupDef{ID: len(c.lookups) + 1, UniqueID: nl.UniqueID, Name: map[string]string{"en": nl.Name}}
		c.lookups = append(c.lookups, l)
		c.lookupByID[l.UniqueID] = l
		c.addLookupValues(l.UniqueID, nl.Values)
	}
	for id, vals := range ext.LookupValues {
		c.addLookupValues(id, vals)
	}
	names := make([]string, 0, len(vm.Services))
	for n := range vm.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, p := range vm.Services[n] {
			c.cambodiaServices = append(c.cambodiaServices, servicePair{p.ServiceType, p.ServiceSubtype})
			c.addLookupValues("lookup-service-type", []string{p.ServiceType})
			c.addLookupValues("lookup-service-subtype", []string{p.ServiceSubtype})
		}
	}
	c.responseTypes = vm.ResponseTypes
	c.addLookupValues("lookup-service-response-type", vm.ResponseTypes)
	for a := range vm.OrgUsers {
		c.cambodiaOrgs = append(c.cambodiaOrgs, strings.TrimPrefix(a, "agency-"))
	}
	sort.Strings(c.cambodiaOrgs)

	// Forms: defaults plus deployment forms and subform fields.
	c.forms = append(forms.Forms, ext.Forms...)
	for _, f := range c.forms {
		c.formByID[f.UniqueID] = f
	}
	for sub, fields := range ext.SubformFields {
		f := c.formByID[sub]
		if f == nil {
			panic("primero fake: extension for unknown subform " + sub)
		}
		f.Fields = append(f.Fields, fields...)
	}
	for _, f := range c.forms {
		f.fieldByName = map[string]*fieldDef{}
		for _, fd := range f.Fields {
			f.fieldByName[fd.Name] = fd
			if !f.IsNested {
				// Only top-level names: a subform's field names are not
				// keys of the case.
				c.known[fd.Name] = true
			}
			if attachmentTypes[fd.Type] {
				c.attachmentFields = append(c.attachmentFields, fd.Name)
			}
			if extra, ok := ext.FieldOptionIDs[fd.Name]; ok && len(fd.OptionIDs) > 0 {
				fd.OptionIDs = append(fd.OptionIDs, extra...)
			}
		}
	}
	for _, f := range c.forms {
		for _, fd := range f.Fields {
			c.resolveField(fd)
		}
	}
	for _, list := range [][]string{coreFields, filterFieldNames, recordInfoFields, syncFields, {"workflow", "flag_count", "flagged", "hidden_name", "incident_details", "last_updated_at"}} {
		for _, n := range list {
			c.known[n] = true
		}
	}
	for n := range hiddenFields {
		c.known[n] = true
	}

	// Modules and their fields.
	for i, m := range ext.Modules {
		m.id = i + 1
		m.fields = map[string]*fieldDef{}
		for _, f := range c.forms {
			if f.ParentForm != "case" || f.IsNested {
				continue
			}
			if !slices.Contains(m.Forms, "*") && !slices.Contains(m.Forms, f.UniqueID) {
				continue
			}
			m.forms = append(m.forms, f)
			for _, fd := range f.Fields {
				m.fields[fd.Name] = fd
			}
		}
		c.modules = append(c.modules, m)
		c.moduleByID[m.UniqueID] = m
	}

	for i, r := range ext.Roles {
		r.id = i + 1
		c.buildRole(r)
		c.roles[r.UniqueID] = r
	}
	for i, a := range ext.Agencies {
		a.id = i + 1
		c.agencies = append(c.agencies, a)
		c.agencyByID[a.UniqueID] = a
	}
	for _, org := range c.cambodiaOrgs {
		a := &agency{UniqueID: "agency-" + org, AgencyCode: strings.ToUpper(org), Name: strings.ToUpper(org), id: len(c.agencies) + 1}
		c.agencies = append(c.agencies, a)
		c.agencyByID[a.UniqueID] = a
	}

	c.buildLocations(ext)
	c.buildUsers(ext)
	return c
}

type servicePairJSON struct {
	ServiceType    string `json:"service_type"`
	ServiceSubtype string `json:"service_subtype"`
}

func mustJSON(name string, v any) {
	if err := json.Unmarshal(readConfig(name), v); err != nil {
		panic(fmt.Sprintf("primero fake: embedded config %s: %v", name, err))
	}
}

func (c *catalog) addLookupValues(id string, vals []string) {
	l := c.lookupByID[id]
	if l == nil {
		panic("primero fake: extension for unknown lookup " + id)
	}
	for _, v := range vals {
		if slices.ContainsFunc(l.Values, func(x lookupValue) bool { return x.ID == v }) {
			continue
		}
		l.Values = append(l.Values, lookupValue{ID: v, DisplayText: map[string]string{"en": displayText(v)}})
	}
}

func displayText(id string) string {
	s := strings.ReplaceAll(strings.Trim(id, "_"), "_", " ")
	if s == "" {
		return id
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// resolveField links subforms and computes the allowed option ids: fixed
// option ids and lookups are enum-checked, while Agency, User and Location
// sources are not (primero.md §5).
func (c *catalog) resolveField(fd *fieldDef) {
	if fd.Type == typeSubform {
		fd.subform = c.formByID[fd.SubformID]
		if fd.subform == nil {
			panic("primero fake: subform " + fd.SubformID + " missing")
		}
	}
	if fd.Type != typeSelect {
		return
	}
	switch {
	case len(fd.OptionIDs) > 0:
		fd.options = map[string]bool{}
		for _, o := range fd.OptionIDs {
			fd.options[o] = true
		}
	case strings.HasPrefix(fd.OptionSource, "lookup "):
		l := c.lookupByID[strings.TrimPrefix(fd.OptionSource, "lookup ")]
		if l == nil {
			return // a lookup the defaults do not ship: accept any string, as Primero would with no options
		}
		fd.options = map[string]bool{}
		for _, v := range l.Values {
			fd.options[v.ID] = true
		}
	}
}

func (c *catalog) buildRole(r *role) {
	r.perms = map[string]bool{}
	for _, p := range r.Permissions {
		r.perms[p] = true
	}
	excluded := func(f *formDef) bool { return slices.Contains(r.ExcludeForms, f.UniqueID) }
	r.read = map[string]bool{}
	r.write = map[string]map[string]*fieldDef{}
	for _, n := range coreFields {
		r.read[n] = true
	}
	for _, n := range filterFieldNames {
		r.read[n] = true
	}
	for _, n := range []string{"workflow", "status", "case_status_reopened", "last_updated_at"} {
		r.read[n] = true
	}
	if r.can("read") {
		for _, n := range recordInfoFields {
			r.read[n] = true
		}
	}
	if r.can("flag") {
		r.read["flag_count"], r.read["flagged"] = true, true
	}
	if r.can("sync_external") {
		for _, n := range syncFields {
			r.read[n] = true
		}
	}
	for _, mid := range r.Modules {
		m := c.moduleByID[mid]
		if m == nil {
			panic("primero fake: role " + r.UniqueID + " names unknown module " + mid)
		}
		w := map[string]*fieldDef{}
		for _, f := range m.forms {
			if excluded(f) {
				continue
			}
			for _, fd := range f.Fields {
				r.read[fd.Name] = true
				if writeableTypes[fd.Type] {
					w[fd.Name] = fd
				}
			}
		}
		r.write[mid] = w
	}
}

func (c *catalog) buildLocations(ext extensions) {
	add := func(l *location) {
		l.id = len(c.locations) + 1
		if p := c.locByCode[l.Parent]; p != nil {
			l.level = p.level + 1
			l.hierarchy = append(slices.Clone(p.hierarchy), l.Code)
			l.fullName = p.fullName + "::" + l.Name
		} else {
			l.hierarchy = []string{l.Code}
			l.fullName = l.Name
		}
		c.locations = append(c.locations, l)
		c.locByCode[l.Code] = l
	}
	for _, l := range ext.Locations {
		add(l)
	}
	g := ext.GeneratedLocations
	// Cambodia's NCDD codes below province level: DD, CC and VV two-digit
	// parts appended to the province code, which Primero stores without the
	// leading zero ("1070101" is province 01).
	for _, p := range ext.Locations {
		if p.Type != g.ParentType {
			continue
		}
		for d := 1; d <= g.Districts; d++ {
			dc := fmt.Sprintf("%s%02d", p.Code, d)
			add(&location{Code: dc, Type: "district", Name: fmt.Sprintf("District %s", dc), Parent: p.Code})
			for cm := 1; cm <= g.Communes; cm++ {
				cc := fmt.Sprintf("%s%02d", dc, cm)
				add(&location{Code: cc, Type: "commune", Name: fmt.Sprintf("Commune %s", cc), Parent: dc})
				for v := 1; v <= g.Villages; v++ {
					vc := fmt.Sprintf("%s%02d", cc, v)
					add(&location{Code: vc, Type: "village", Name: fmt.Sprintf("Village %s", vc), Parent: cc})
					c.villages = append(c.villages, vc)
				}
			}
		}
	}
	for _, l := range ext.Locations {
		if l.Type == "camp" {
			c.unhcrLocations = append(c.unhcrLocations, l.Code)
		}
	}
}

func (c *catalog) buildUsers(ext extensions) {
	c.userSeeds = append(c.userSeeds, ext.Users...)
	rows, err := csv.NewReader(bytes.NewReader(readConfig("province_owner.csv"))).ReadAll()
	if err != nil {
		panic("primero fake: province_owner.csv: " + err.Error())
	}
	c.provinceOwner = map[int]string{}
	for _, row := range rows[1:] {
		code, err := strconv.Atoi(row[0])
		if err != nil {
			panic("primero fake: province_owner.csv: " + err.Error())
		}
		c.provinceOwner[code] = row[1]
		c.userSeeds = append(c.userSeeds, userSeed{
			UserName: row[1], FullName: "Province manager " + row[0], Agency: ext.ProvinceManager.Agency,
			Role: ext.ProvinceManager.Role, Location: strconv.Itoa(code), Position: "province manager",
			UserGroups: []string{ext.ProvinceManager.UserGroup},
		})
	}
	for _, org := range c.cambodiaOrgs {
		c.userSeeds = append(c.userSeeds, userSeed{
			UserName: "agency-" + org + "-user", FullName: strings.ToUpper(org) + " referral inbox", Agency: "agency-" + org,
			Role: ext.AgencyUser.Role, Location: "KH", Position: "agency focal point",
			UserGroups: []string{"usergroup-agency-" + org},
		})
	}
}

// optionsOf returns the allowed ids of a lookup, for the seed generator.
func (c *catalog) optionsOf(lookup string) []string {
	l := c.lookupByID[lookup]
	out := make([]string, len(l.Values))
	for i, v := range l.Values {
		out[i] = v.ID
	}
	return out
}
