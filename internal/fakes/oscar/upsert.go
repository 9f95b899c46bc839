package oscar

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// POST /api/v1/organizations/clients/upsert: the decision tree of
// oscar.md §4, step by step as organizations_controller.rb runs it,
// including the places where a write is saved before the request fails.

// permittedKeys is clients_params' permit list; every other key is dropped.
var permittedKeys = []string{
	"global_id", "external_id", "external_id_display", "mosvy_number",
	"given_name", "family_name", "gender", "date_of_birth", "location_current_village_code",
	"address_current_village_code", "reason_for_referral", "reason_for_exiting",
	"organization_id", "organization_name", "external_case_worker_name",
	"external_case_worker_id", "external_case_worker_mobile", "external_case_worker_email",
	"level_of_risk", "is_referred", "referral_status",
}

// Value domains the models validate.
var (
	genderOptions  = []string{"female", "male", "lgbt", "unknown", "prefer_not_to_say", "other"}
	clientStatuses = []string{"Accepted", "Active", "Exited", "Referred"} // Client::CLIENT_STATUSES
	writeStatuses  = []string{"Accepted", "Exited", "Referred"}
	levelsOfRisk   = []string{"high", "medium", "low", "no action"}
)

// permit is params.require(:organization).permit(…): scalars for the listed
// keys, and services as a list of {uuid, name} scalars.
func permit(org map[string]any) params {
	p := params{}
	for _, k := range permittedKeys {
		if v, ok := org[k]; ok {
			switch v.(type) {
			case string, json.Number, bool, nil:
				p[k] = v
			}
		}
	}
	if list, ok := org["services"].([]any); ok {
		var svcs []any
		for _, it := range list {
			m, ok := it.(map[string]any)
			if !ok {
				continue
			}
			keep := map[string]any{}
			for _, k := range []string{"uuid", "name"} {
				switch v := m[k].(type) {
				case string, json.Number, bool:
					keep[k] = v
				}
			}
			svcs = append(svcs, keep)
		}
		p["services"] = svcs
	}
	return p
}

// serviceUUIDs are the uuids the request names, in order.
func (p params) serviceUUIDs() []string {
	list, _ := p["services"].([]any)
	var out []string
	for _, it := range list {
		if u, ok := params(it.(map[string]any)).scalar("uuid"); ok {
			out = append(out, u)
		}
	}
	return out
}

func (p params) serviceNames() []string {
	list, _ := p["services"].([]any)
	var out []string
	for _, it := range list {
		if n, ok := params(it.(map[string]any)).scalar("name"); ok {
			out = append(out, n)
		}
	}
	return out
}

// upsertReply keeps the key order of the real hashes.
type upsertReply struct {
	ExternalID *string      `json:"external_id"`
	Message    any          `json:"message"`
	Errors     *foundErrors `json:"errors,omitempty"`
}

// foundErrors rides along with "Record was found."; its keys appear only
// when no global_id was sent, so a sent-but-unknown one gives {}.
type foundErrors struct {
	GlobalID       string `json:"global_id,omitempty"`
	ReferralStatus string `json:"referral_status,omitempty"`
}

// result is what a branch decided: a JSON answer, or a 500 page.
type result struct {
	code int
	body any
	page bool
}

func ok200(ext *string) result {
	return result{code: http.StatusOK, body: upsertReply{ExternalID: ext, Message: msgRecordSaved}}
}

func err422(ext *string, msg any) result {
	return result{code: http.StatusUnprocessableEntity, body: upsertReply{ExternalID: ext, Message: msg}}
}

var crash = result{code: http.StatusInternalServerError, page: true}

func (s *Server) upsert(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		// ActionDispatch::ParamsParser::ParseError.
		writeHTML(w, http.StatusBadRequest, page400)
		return
	}
	// Rails files a JSON array under params[:_json], so it reads as a body
	// without organization.
	body, _ := doc.(map[string]any)
	raw := body["organization"]
	if !present(raw) {
		s.reply(w, http.StatusUnprocessableEntity, map[string]any{"message": msgRecordError})
		return
	}
	org, isHash := raw.(map[string]any)
	if !isHash {
		fail500(w) // permit on a String: NoMethodError
		return
	}
	p := permit(org)
	if !present(p["organization_name"]) {
		s.reply(w, http.StatusUnprocessableEntity, map[string]any{"message": msgRecordError})
		return
	}
	s.mu.Lock()
	res := s.upsertLocked(p)
	s.mu.Unlock()
	if res.page {
		fail500(w)
		return
	}
	s.reply(w, res.code, res.body)
}

func (s *Server) upsertLocked(p params) result {
	gid := p.str("global_id")
	if !present(gid) || s.identities[gid] == nil {
		return s.findReferral(p)
	}
	// Branch 2: a known global identity.
	t := s.byShort[p.str("organization_name")]
	if t == nil {
		return crash // Apartment::Tenant.switch! to a schema that is not there
	}
	if truthy(p["is_referred"]) {
		if c := t.clientByGID(gid); c != nil {
			r := s.buildReferral(p, t, gid)
			r.client = c
			if errs := validateReferral(r); len(errs) > 0 {
				return err422(p.ptr("external_id"), errs)
			}
			s.saveReferral(t, r)
			s.autoAccept(r)
		}
	}
	return s.renderClientData(p, gid)
}

// renderClientData updates the client in the first tenant linked to gid,
// or falls through to the referral branch when no tenant is linked yet.
func (s *Server) renderClientData(p params, gid string) result {
	id := s.identities[gid]
	if len(id.links) == 0 {
		return s.findReferral(p)
	}
	t := id.links[0].tenant
	c := t.clientByGID(gid)
	if c == nil {
		return crash // client.errors on nil
	}
	var errs fieldErrors
	switch g := p.ptr("gender"); {
	case blankPtr(g):
		errs.add("gender", errBlank)
	case !contains(genderOptions, *g):
		errs.add("gender", errNotIncluded)
	}
	if len(errs) > 0 {
		return err422(p.ptr("external_id"), errs)
	}
	s.updateClient(c, p)
	// `if clients_params['referral_status']`: any non-nil value, "" too.
	st, sent := p.scalar("referral_status")
	if !sent {
		return ok200(c.externalID)
	}
	if !contains(writeStatuses, st) {
		// The client update above is already saved.
		return err422(c.externalID, msgBadStatus)
	}
	// The latest referral received from, and the latest delivered to, the
	// external system; update_column, so no timestamps move.
	var received, delivered *referral
	for _, r := range c.referrals {
		if r.ngoName != ExternalSystem {
			continue
		}
		if r.referredTo == t.short {
			received = r
		}
		if r.referredFrom == t.short {
			delivered = r
		}
	}
	for _, r := range []*referral{received, delivered} {
		if r != nil {
			r.status = st
			s.Counters().Write("referral.status")
		}
	}
	return ok200(c.externalID)
}

// updateClient applies Client.get_client_attribute: demographics are
// overwritten and missing keys become null; local names and the reason for
// referral are blanked because the permit list does not carry them.
func (s *Server) updateClient(c *client, p params) {
	before := *c
	c.givenName, c.familyName = p.ptr("given_name"), p.ptr("family_name")
	c.localGivenName, c.localFamilyName = nil, nil
	c.gender = p.ptr("gender")
	c.dob = castDate(p.ptr("date_of_birth"))
	c.mosvyNumber = p.ptr("mosvy_number")
	c.reasonForReferral = nil
	c.extCWName, c.extCWID = p.ptr("external_case_worker_name"), p.ptr("external_case_worker_id")
	c.code = addressCode(p)
	if v := p.ptr("external_id"); v != nil {
		c.externalID = v
	}
	if v := p.ptr("external_id_display"); v != nil {
		c.externalIDDisplay = v
	}
	// Rails skips the UPDATE, and updated_at, when nothing changed.
	if !sameClient(&before, c) {
		c.updatedAt = s.Now()
		s.Counters().Write("client.update")
	}
}

func sameClient(a, b *client) bool {
	return eqPtr(a.givenName, b.givenName) && eqPtr(a.familyName, b.familyName) &&
		eqPtr(a.localGivenName, b.localGivenName) && eqPtr(a.localFamilyName, b.localFamilyName) &&
		eqPtr(a.gender, b.gender) && eqPtr(a.dob, b.dob) && eqPtr(a.mosvyNumber, b.mosvyNumber) &&
		eqPtr(a.reasonForReferral, b.reasonForReferral) && eqPtr(a.extCWName, b.extCWName) &&
		eqPtr(a.extCWID, b.extCWID) && a.code == b.code &&
		eqPtr(a.externalID, b.externalID) && eqPtr(a.externalIDDisplay, b.externalIDDisplay)
}

var digits = regexp.MustCompile(`^[0-9]+$`)

// addressCode is get_address_by_code(address || location). Ruby's || takes
// an empty address code over the location code. The length picks the
// level (1–2 province, 3–4 district, 5–6 commune, else village) and the
// code is left-padded with zeros. The fake has no gazetteer, so any digit
// string of up to 8 digits is "found"; anything else clears the address.
func addressCode(p params) string {
	code, ok := p.scalar("address_current_village_code")
	if !ok {
		code = p.str("location_current_village_code")
	}
	return padCode(code)
}

func padCode(code string) string {
	if code == "" || len(code) > 8 || !digits.MatchString(code) {
		return ""
	}
	width := 8
	switch {
	case len(code) <= 2:
		width = 2
	case len(code) <= 4:
		width = 4
	case len(code) <= 6:
		width = 6
	}
	return strings.Repeat("0", width-len(code)) + code
}

var dateRe = regexp.MustCompile(`^\s*(\d{1,5})[-/](\d{1,2})[-/](\d{1,2})`)

// castDate is ActiveRecord's date cast: an unreadable or impossible date is
// stored as NULL, silently.
func castDate(s *string) *string {
	if s == nil {
		return nil
	}
	m := dateRe.FindStringSubmatch(*s)
	if m == nil {
		return nil
	}
	y, _ := strconv.Atoi(m[1])
	mo, _ := strconv.Atoi(m[2])
	d, _ := strconv.Atoi(m[3])
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) {
		return nil
	}
	return strp(fmt.Sprintf("%04d-%02d-%02d", y, mo, d))
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// findReferral is branch 3: no known global_id, so the referral keyed on
// external_id in the target tenant decides.
func (s *Server) findReferral(p params) result {
	t := s.byShort[p.str("organization_name")]
	if t == nil {
		return crash
	}
	ext := p.ptr("external_id")
	prev := t.referralByExternalID(ext)
	switch {
	case prev == nil:
		gid := p.str("global_id")
		sentGID := present(gid)
		if !sentGID {
			gid = s.newGlobalID() // GlobalIdentity.create(ulid: ULID.generate)
		}
		r := s.buildReferral(p, t, gid)
		if errs := validateReferral(r); len(errs) > 0 {
			return err422(ext, errs)
		}
		s.saveReferral(t, r)
		if s.identities[gid] == nil {
			// A sent but unknown global_id: the referral is saved, then
			// GlobalIdentity.find_by returns nil and the next call raises.
			return crash
		}
		s.autoAccept(r)
		return ok200(ext)
	case prev.client == nil:
		r := s.buildReferral(p, t, prev.clientGlobalID)
		if errs := validateReferral(r); len(errs) > 0 {
			return err422(ext, errs)
		}
		s.saveReferral(t, r)
		s.autoAccept(r)
		return ok200(ext)
	default:
		var fe foundErrors
		if blank(p.str("global_id")) {
			fe = foundErrors{GlobalID: "global_id must exist.", ReferralStatus: "referral_status must be present."}
		}
		return result{code: http.StatusUnprocessableEntity, body: upsertReply{ExternalID: ext, Message: msgRecordFound, Errors: &fe}}
	}
}

func (s *Server) newGlobalID() string {
	gid := newULID(s.Now(), uint16(s.rng.Uint32()), s.rng.Uint64())
	s.identities[gid] = &identity{ulid: gid}
	return gid
}

// buildReferral is Referral.get_referral_attribute plus the ngo_name and
// referred_from the controller merges in.
func (s *Server) buildReferral(p params, t *tenant, gid string) *referral {
	now := s.Now()
	reason := p.str("reason_for_referral")
	if blank(reason) {
		reason = "N/A"
	}
	return &referral{
		clientGlobalID:    gid,
		externalID:        p.ptr("external_id"),
		externalIDDisplay: p.ptr("external_id_display"),
		status:            "Referred", // the column default
		levelOfRisk:       p.ptr("level_of_risk"),
		services:          s.cat.match(p.serviceNames()),
		ngoName:           ExternalSystem,
		referredFrom:      ExternalSystem,
		referredTo:        p.str("organization_name"),
		clientName:        squish(p.str("given_name") + " " + p.str("family_name")),
		givenName:         p.ptr("given_name"),
		familyName:        p.ptr("family_name"),
		gender:            p.ptr("gender"),
		dob:               castDate(p.ptr("date_of_birth")),
		villageCode:       p.str("location_current_village_code"),
		mosvyNumber:       p.ptr("mosvy_number"),
		nameOfReferee:     p.ptr("external_case_worker_name"),
		referralPhone:     p.ptr("external_case_worker_mobile"),
		referralReason:    reason,
		refereeEmail:      p.ptr("external_case_worker_email"),
		refereeID:         p.ptr("external_case_worker_id"),
		createdAt:         now,
		updateAt:          now,
		sentUUIDs:         p.serviceUUIDs(),
	}
}

// validateReferral runs Referral's validations in declaration order.
func validateReferral(r *referral) fieldErrors {
	var e fieldErrors
	if blank(r.clientName) {
		e.add("client_name", errBlank)
	}
	if blank(r.referredTo) {
		e.add("referred_to", errBlank)
	}
	if blank(r.referralReason) {
		e.add("referral_reason", errBlank)
	}
	if blankPtr(r.nameOfReferee) {
		e.add("name_of_referee", errBlank)
	}
	if blankPtr(r.referralPhone) {
		e.add("referral_phone", errBlank)
	}
	if r.referredFrom != "" && r.referredFrom == r.tenantShort() && len(r.consentForms) == 0 {
		e.add("consent_form", errBlank) // making_referral?
	}
	inclusion(&e, "referral_status", strp(r.status), clientStatuses)
	inclusion(&e, "level_of_risk", r.levelOfRisk, levelsOfRisk)
	if len(r.services) == 0 {
		e.add("services", errBlank)
	}
	return e
}

func (r *referral) tenantShort() string {
	if r.tenant == nil {
		return ""
	}
	return r.tenant.short
}

// inclusion is `presence: true, inclusion: {in: list}`: a blank value gets
// both messages.
func inclusion(e *fieldErrors, field string, v *string, list []string) {
	if blankPtr(v) {
		e.add(field, errBlank)
	}
	if v == nil || !contains(list, *v) {
		e.add(field, errNotIncluded)
	}
}

// saveReferral stores r and counts it. A second referral for the same
// external_id and the same services in one tenant is what a retried or
// repeated upsert leaves behind in the real system: a duplicate. Real
// OSCaR stores such a referral like any other (oscar.md §4, branch 3:
// "one more referral is added"), so the count is the fake's judgement,
// not OSCaR's: when both upserts named their services by uuid (Cambodia
// sends the Primero service's unique_id, which OSCaR ignores), different
// uuids are two referrals Primero made — two services of one type to one
// NGO — and not a duplicate; the same uuids are the same referral sent
// twice.
func (s *Server) saveReferral(t *tenant, r *referral) {
	if r.externalID != nil && *r.externalID != "" {
		names := strings.Join(r.serviceNames(), "\x00")
		uuids := strings.Join(r.sentUUIDs, "\x00")
		for _, x := range t.referrals {
			if !eqPtr(x.externalID, r.externalID) || strings.Join(x.serviceNames(), "\x00") != names {
				continue
			}
			if prev := strings.Join(x.sentUUIDs, "\x00"); prev != "" && uuids != "" && prev != uuids {
				continue
			}
			s.Counters().Duplicates.Add(1)
			break
		}
	}
	t.addReferral(r)
	s.Counters().Write("referral.create")
}

// autoAccept queues r, a referral the upsert created (pending, or for a
// client the NGO has), for acceptance. An NGO user accepts a referral some
// time after it arrives, never inside the upsert call: accepting at once
// would make the next upsert of the same case (one per service) answer
// "Record was found.", which the real server only does once a human acted.
// Queued referrals are accepted when clients are next listed.
func (s *Server) autoAccept(r *referral) {
	if s.opts.AutoAccept {
		s.toAccept = append(s.toAccept, r)
	}
}

// acceptQueued accepts every referral queued by AutoAccept. The caller holds
// s.mu for writing. A referral for a client the NGO already has (branch 2
// of the upsert) creates no client: the NGO user accepts it on that
// client, as SetReferralStatus does, and it is saved to the client.
func (s *Server) acceptQueued() {
	for _, r := range s.toAccept {
		switch {
		case r.client == nil:
			s.accept(r) // an error means the client exists already: nothing to do
		case r.status == "Referred":
			now := s.Now()
			r.status, r.saved, r.updateAt = "Accepted", true, now
			r.client.updatedAt = now
		}
	}
	s.toAccept = nil
}
