package oscar

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// GET /api/v1/organizations/clients: one unpaginated {"data":[…]} walking
// every integrated tenant in order. Per tenant, referred clients (exact
// since comparison) come first in OrganizationClientSerializer shape, then
// every other visible client (day-granular comparison) in
// ClientShareExternalSerializer shape.

// serviceJSON is one entry of a client's services: a programme enrolment,
// or one service of a referral exchanged with the external system.
type serviceJSON struct {
	ProgramName    *string `json:"program_name"`
	EnrollmentDate *string `json:"enrollment_date"`
	UUID           string  `json:"uuid"`
	Name           string  `json:"name"`
	ReferralID     *int    `json:"referral_id,omitempty"`
	ReferralStatus *string `json:"referral_status,omitempty"`
}

// referredJSON is OrganizationClientSerializer, keys in its order.
type referredJSON struct {
	Slug                       string        `json:"slug"`
	GlobalID                   string        `json:"global_id"`
	ExternalID                 *string       `json:"external_id"`
	ExternalIDDisplay          *string       `json:"external_id_display"`
	MosvyNumber                *string       `json:"mosvy_number"`
	GivenName                  string        `json:"given_name"`
	FamilyName                 string        `json:"family_name"`
	Gender                     *string       `json:"gender"`
	DateOfBirth                *string       `json:"date_of_birth"`
	LocationCurrentVillageCode string        `json:"location_current_village_code"`
	AddressCurrentVillageCode  string        `json:"address_current_village_code"`
	OrganizationID             int           `json:"organization_id"`
	OrganizationName           string        `json:"organization_name"`
	ExternalCaseWorkerName     *string       `json:"external_case_worker_name"`
	ExternalCaseWorkerID       *string       `json:"external_case_worker_id"`
	ReasonForReferral          *string       `json:"reason_for_referral"`
	Services                   []serviceJSON `json:"services"`
	Status                     string        `json:"status"`
	CaseWorkerName             string        `json:"case_worker_name"`
	CaseWorkerMobile           string        `json:"case_worker_mobile"`
	IsReferred                 bool          `json:"is_referred"`
	ReferralConsentForm        []string      `json:"referral_consent_form"`
	OrganizationAddressCode    string        `json:"organization_address_code"`
	LevelOfRisk                *string       `json:"level_of_risk"`
}

// sharedJSON is ClientShareExternalSerializer, keys in its order. The three
// id strings are never null here.
type sharedJSON struct {
	GivenName                  *string       `json:"given_name"`
	FamilyName                 *string       `json:"family_name"`
	LocalGivenName             *string       `json:"local_given_name"`
	LocalFamilyName            *string       `json:"local_family_name"`
	Gender                     *string       `json:"gender"`
	DateOfBirth                *string       `json:"date_of_birth"`
	GlobalID                   string        `json:"global_id"`
	Slug                       string        `json:"slug"`
	ExternalID                 string        `json:"external_id"`
	ExternalIDDisplay          string        `json:"external_id_display"`
	Status                     string        `json:"status"`
	MosvyNumber                string        `json:"mosvy_number"`
	LocationCurrentVillageCode string        `json:"location_current_village_code"`
	CaseWorkerName             string        `json:"case_worker_name"`
	CaseWorkerMobile           string        `json:"case_worker_mobile"`
	IsReferred                 bool          `json:"is_referred"`
	OrganizationName           string        `json:"organization_name"`
	OrganizationAddressCode    string        `json:"organization_address_code"`
	Resource                   *string       `json:"resource"`
	Services                   []serviceJSON `json:"services"`
}

// services lists programme enrolments, then one entry per service of each
// referral exchanged with the external system, oldest referral first.
func (s *Server) services(c *client) []serviceJSON {
	out := make([]serviceJSON, 0, len(c.enrollments)+len(c.referrals))
	for _, e := range c.enrollments {
		out = append(out, serviceJSON{ProgramName: strp(e.program), EnrollmentDate: strp(e.date), UUID: e.svc.UUID, Name: e.svc.Name})
	}
	for _, r := range c.referrals {
		if r.ngoName != ExternalSystem {
			continue
		}
		for _, sv := range r.services {
			id, st := r.id, r.status
			out = append(out, serviceJSON{UUID: sv.UUID, Name: sv.Name, ReferralID: &id, ReferralStatus: &st})
		}
	}
	return out
}

func joinWorkers(ws []caseWorker) (names, mobiles string) {
	var n, m []string
	for _, w := range ws {
		if w.name != "" {
			n = append(n, w.name)
		}
		if w.mobile != "" {
			m = append(m, w.mobile)
		}
	}
	return strings.Join(n, ", "), strings.Join(m, ", ")
}

// fallback is given_name falling back to the local (Khmer) name.
func fallback(name, local *string) string {
	if !blankPtr(name) {
		return *name
	}
	return deref(local)
}

func (s *Server) referredShape(c *client) referredJSON {
	names, mobiles := joinWorkers(c.caseWorkers)
	last := c.lastExternal(ExternalSystem)
	consent := []string{}
	risk := c.levelOfRisk
	if last != nil {
		consent = append(consent, last.consentForms...)
		if last.levelOfRisk != nil {
			risk = last.levelOfRisk
		}
	}
	return referredJSON{
		Slug: c.slug, GlobalID: c.globalID,
		ExternalID: c.externalID, ExternalIDDisplay: c.externalIDDisplay, MosvyNumber: c.mosvyNumber,
		GivenName: fallback(c.givenName, c.localGivenName), FamilyName: fallback(c.familyName, c.localFamilyName),
		Gender: c.gender, DateOfBirth: c.dob,
		LocationCurrentVillageCode: c.code, AddressCurrentVillageCode: c.code,
		OrganizationID: c.tenant.id, OrganizationName: c.tenant.short,
		ExternalCaseWorkerName: c.extCWName, ExternalCaseWorkerID: c.extCWID,
		ReasonForReferral: c.reasonForReferral,
		Services:          s.services(c),
		Status:            c.status,
		CaseWorkerName:    names, CaseWorkerMobile: mobiles,
		IsReferred:              last != nil,
		ReferralConsentForm:     consent,
		OrganizationAddressCode: c.tenant.addressCode,
		LevelOfRisk:             risk,
	}
}

func (s *Server) sharedShape(c *client) sharedJSON {
	names, mobiles := joinWorkers(c.caseWorkers)
	// This serializer reads village, commune or district code, never the
	// province: a province-only address shows as "".
	code := c.code
	if len(code) <= 2 {
		code = ""
	}
	out := sharedJSON{
		GivenName: c.givenName, FamilyName: c.familyName,
		LocalGivenName: c.localGivenName, LocalFamilyName: c.localFamilyName,
		Gender: c.gender, DateOfBirth: c.dob,
		GlobalID: c.globalID, Slug: c.slug,
		ExternalID: deref(c.externalID), ExternalIDDisplay: deref(c.externalIDDisplay),
		Status: c.status, MosvyNumber: deref(c.mosvyNumber),
		LocationCurrentVillageCode: code,
		CaseWorkerName:             names, CaseWorkerMobile: mobiles,
		IsReferred:              c.lastExternal(ExternalSystem) != nil,
		OrganizationName:        c.tenant.short,
		OrganizationAddressCode: c.tenant.addressCode,
		Services:                []serviceJSON{},
	}
	// resource and services are filled only for Primero-linked clients.
	if !blankPtr(c.externalID) {
		out.Resource = strp("primero")
		out.Services = s.services(c)
	}
	return out
}

// referredExternal is Client.referred_external(name): flagged, and joined
// to at least one referral exchanged with the external system.
func referredExternal(c *client) bool {
	return c.referredExternal && c.lastExternal(ExternalSystem) != nil
}

func byUpdatedDesc(a, b *client) int {
	if c := b.updatedAt.Compare(a.updatedAt); c != 0 {
		return c
	}
	return b.id - a.id
}

func (s *Server) getClients(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// referred_external is read by nobody: old docs send it, the server
	// ignores it.
	var since, end *time.Time
	if v := q.Get("since_date"); strings.TrimSpace(v) != "" {
		t, err := parseRubyTime(v)
		if err != nil {
			fail500(w) // Time.parse raises ArgumentError
			return
		}
		since = &t
	}
	if v := q.Get("end_date"); strings.TrimSpace(v) != "" {
		t, err := parseRubyTime(v)
		if err != nil || since == nil {
			// With no since_date the SQL reads BETWEEN '' AND …, which
			// Postgres refuses.
			fail500(w)
			return
		}
		end = &t
	}
	if s.opts.AutoAccept {
		s.mu.Lock()
		s.acceptQueued()
		s.mu.Unlock()
	}
	s.mu.RLock()
	data := make([]any, 0, 64)
	for _, t := range s.tenants {
		if !t.integrated {
			continue
		}
		if end != nil {
			data = s.historical(data, t, *since, *end)
			continue
		}
		data = s.current(data, t, since)
	}
	s.mu.RUnlock()
	s.inj.Counters().Served(r.Method+" "+r.URL.Path, len(data))
	s.reply(w, http.StatusOK, map[string]any{"data": data})
}

func (s *Server) current(data []any, t *tenant, since *time.Time) []any {
	var referred, others []*client
	inReferred := map[*client]bool{}
	for _, c := range t.clients {
		if !c.visible() || !referredExternal(c) {
			continue
		}
		if since == nil || !c.createdAt.Before(*since) || !c.updatedAt.Before(*since) {
			referred = append(referred, c)
			inReferred[c] = true
		}
	}
	// DATE(created_at) >= '<since as text>': the timestamp's UTC day against
	// the day written in since, so the time of day is thrown away.
	var sinceDay string
	if since != nil {
		sinceDay = since.Format(time.DateOnly)
	}
	for _, c := range t.clients {
		if !c.visible() || inReferred[c] {
			continue
		}
		// A referred client that missed the exact comparison lands here, in
		// the other shape, when only its day matches.
		if since == nil || c.createdAt.Format(time.DateOnly) >= sinceDay || c.updatedAt.Format(time.DateOnly) >= sinceDay {
			others = append(others, c)
		}
	}
	slices.SortFunc(referred, byUpdatedDesc)
	slices.SortFunc(others, byUpdatedDesc)
	for _, c := range referred {
		data = append(data, s.referredShape(c))
	}
	for _, c := range others {
		data = append(data, s.sharedShape(c))
	}
	return data
}

// historical is the end_date mode: clients created between the two
// instants, oldest first, all in the shared shape.
func (s *Server) historical(data []any, t *tenant, since, end time.Time) []any {
	var list []*client
	for _, c := range t.clients {
		if c.visible() && !c.createdAt.Before(since) && !c.createdAt.After(end) {
			list = append(list, c)
		}
	}
	slices.SortFunc(list, func(a, b *client) int {
		if c := a.createdAt.Compare(b.createdAt); c != 0 {
			return c
		}
		return a.id - b.id
	})
	for _, c := range list {
		data = append(data, s.sharedShape(c))
	}
	return data
}

var (
	rubyDateRe = regexp.MustCompile(`(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[T\s]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2})?`)
	compactRe  = regexp.MustCompile(`^(\d{4})(\d{2})(\d{2})$`)
)

var errNoTime = errors.New("no time information")

// parseRubyTime approximates Ruby's Time.parse as the server uses it: the
// first date (YYYY-MM-DD or YYYY/MM/DD, optionally with a time and a zone)
// anywhere in the text, so quotes and other decoration around it are
// ignored. No zone means UTC, the server's zone. Text without a date, or a
// date out of range, fails, and the endpoint answers 500.
func parseRubyTime(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	m := rubyDateRe.FindStringSubmatch(v)
	if m == nil {
		c := compactRe.FindStringSubmatch(v)
		if c == nil {
			return time.Time{}, errNoTime
		}
		m = []string{c[0], c[1], c[2], c[3], "", "", "", "", ""}
	}
	n := func(s string) int { i, _ := strconv.Atoi(s); return i }
	y, mo, d := n(m[1]), n(m[2]), n(m[3])
	h, mi, sec := n(m[4]), n(m[5]), n(m[6])
	var ns int
	if m[7] != "" {
		frac := (m[7] + "000000000")[:9]
		ns = n(frac)
	}
	loc := time.UTC
	if z := m[8]; z != "" && z != "Z" && z != "UTC" && z != "GMT" {
		z = strings.ReplaceAll(z, ":", "")
		off := (n(z[1:3])*60 + n(z[3:5])) * 60
		if z[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	}
	if mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 {
		return time.Time{}, errors.New("argument out of range")
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, ns, loc)
	if t.Day() != d {
		return time.Time{}, errors.New("argument out of range")
	}
	return t, nil
}
