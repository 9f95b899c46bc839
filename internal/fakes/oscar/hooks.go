package oscar

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Test hooks: what NGO staff do in the OSCaR web UI, and snapshots of the
// store for assertions. They take the same lock as the handlers.

// Errors returned by the hooks.
var (
	ErrNoPendingReferral = errors.New("oscar: no pending referral with that external_id")
	ErrClientExists      = errors.New("oscar: the tenant already has a client with that global_id")
	ErrUnknownGlobalID   = errors.New("oscar: unknown global_id")
	ErrUnknownReferral   = errors.New("oscar: unknown referral")
)

// Accept is an NGO user accepting the oldest pending referral with this
// external_id (tenants in order): the client is created with the
// referral's global_id, external_id and a new slug, status "Accepted",
// created_at = updated_at = now, so GET clients delivers it with its
// external_id and the id sync-back can run. Every pending referral of that
// external_id and global_id in the tenant is linked to the new client and
// marked Accepted.
func (s *Server) Accept(externalID string) (globalID string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tenants {
		for _, r := range t.referrals {
			if r.client == nil && r.externalID != nil && *r.externalID == externalID {
				return s.accept(r)
			}
		}
	}
	return "", ErrNoPendingReferral
}

func (s *Server) accept(r *referral) (string, error) {
	t := r.tenant
	if t.clientByGID(r.clientGlobalID) != nil {
		return "", ErrClientExists // validates_uniqueness_of :global_id
	}
	now := s.Now()
	reason := r.referralReason
	c := &client{
		globalID:   r.clientGlobalID,
		givenName:  r.givenName,
		familyName: r.familyName,
		gender:     r.gender,
		dob:        r.dob,
		code:       padCode(r.villageCode),
		status:     "Accepted",
		externalID: r.externalID, externalIDDisplay: r.externalIDDisplay,
		mosvyNumber:       r.mosvyNumber,
		extCWName:         r.nameOfReferee,
		extCWID:           r.refereeID,
		reasonForReferral: &reason,
		levelOfRisk:       r.levelOfRisk,
		caseWorkers:       []caseWorker{{name: "Intake Worker", mobile: "012000000"}},
		createdAt:         now,
		updatedAt:         now,
	}
	t.addClient(c)
	c.slug = s.newSlug(c.id)
	id := s.identities[c.globalID]
	if id == nil {
		id = &identity{ulid: c.globalID}
		s.identities[c.globalID] = id
	}
	id.links = append(id.links, link{tenant: t, client: c})
	for _, x := range t.referrals {
		if x.client == nil && eqPtr(x.externalID, r.externalID) && x.clientGlobalID == r.clientGlobalID {
			x.client, x.saved, x.status = c, true, "Accepted"
			c.referrals = append(c.referrals, x)
		}
	}
	return c.globalID, nil
}

// newSlug is a per-NGO display id such as "qvmx-1787".
func (s *Server) newSlug(id int) string {
	b := make([]byte, 4)
	for i := range b {
		b[i] = byte('a' + s.rng.IntN(26))
	}
	return fmt.Sprintf("%s-%d", b, id)
}

// clientByGID finds the client in the first tenant linked to gid.
func (s *Server) clientByGID(gid string) *client {
	id := s.identities[gid]
	if id == nil || len(id.links) == 0 {
		return nil
	}
	return id.links[0].client
}

// Touch is an NGO user editing the client with globalID (in the first
// tenant linked to it): updated_at moves to now, then fields are applied
// (see AddClient for the keys). It panics on an unknown global_id or key:
// a test asking for something the fake cannot do must not pass quietly.
func (s *Server) Touch(globalID string, fields map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clientByGID(globalID)
	if c == nil {
		panic(fmt.Sprintf("oscar: Touch: %v %q", ErrUnknownGlobalID, globalID))
	}
	c.updatedAt = s.Now()
	setFields("Touch", c, fields)
}

// AddClient is an NGO user registering a client directly in tenant, with
// no referral: visible defaults (invented name, female, born 2015-01-01,
// status Active, empty ids, one case worker), created_at = updated_at =
// now, then fields. fields uses the serializer's key names, a nil value
// stores NULL: global_id (default a new ULID), given_name, family_name,
// local_given_name, local_family_name, gender, date_of_birth, mosvy_number,
// external_id, external_id_display, status, location_current_village_code,
// reason_for_referral, level_of_risk, referred_external (bool), created_at
// and updated_at (time.Time). It returns the global_id, and panics on an
// unknown tenant or key, or a global_id the tenant already has.
//
// A client added with referred_external has no referral to MoSVY, so GET
// clients still shows it in the shared shape; seed data has both.
func (s *Server) AddClient(tenant string, fields map[string]any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.byShort[tenant]
	if t == nil {
		panic(fmt.Sprintf("oscar: AddClient: unknown tenant %q", tenant))
	}
	now := s.Now()
	gid, _ := fields["global_id"].(string)
	if gid == "" {
		gid = newULID(now, uint16(s.rng.Uint32()), s.rng.Uint64())
	}
	if t.clientByGID(gid) != nil {
		panic(fmt.Sprintf("oscar: AddClient: %v: %s", ErrClientExists, gid))
	}
	c := &client{
		globalID: gid, givenName: strp("Kanira"), familyName: strp("Solyta"),
		gender: strp("female"), dob: strp("2015-01-01"), status: "Active",
		externalID: strp(""), externalIDDisplay: strp(""), mosvyNumber: strp(""),
		caseWorkers: []caseWorker{{name: "Intake Worker", mobile: "012000000"}},
		createdAt:   now, updatedAt: now,
	}
	rest := map[string]any{}
	for k, v := range fields {
		if k != "global_id" {
			rest[k] = v
		}
	}
	setFields("AddClient", c, rest)
	t.addClient(c)
	c.slug = s.newSlug(c.id)
	id := s.identities[gid]
	if id == nil {
		id = &identity{ulid: gid}
		s.identities[gid] = id
	}
	id.links = append(id.links, link{tenant: t, client: c})
	return gid
}

func setFields(hook string, c *client, fields map[string]any) {
	for k, v := range fields {
		sp := func() *string {
			if v == nil {
				return nil
			}
			str, ok := v.(string)
			if !ok {
				panic(fmt.Sprintf("oscar: %s: %s wants a string, got %T", hook, k, v))
			}
			return &str
		}
		switch k {
		case "given_name":
			c.givenName = sp()
		case "family_name":
			c.familyName = sp()
		case "local_given_name":
			c.localGivenName = sp()
		case "local_family_name":
			c.localFamilyName = sp()
		case "gender":
			c.gender = sp()
		case "date_of_birth":
			c.dob = sp()
		case "mosvy_number":
			c.mosvyNumber = sp()
		case "external_id":
			c.externalID = sp()
		case "external_id_display":
			c.externalIDDisplay = sp()
		case "status":
			c.status = deref(sp())
		case "location_current_village_code", "address_current_village_code":
			c.code = deref(sp())
		case "reason_for_referral":
			c.reasonForReferral = sp()
		case "level_of_risk":
			c.levelOfRisk = sp()
		case "referred_external":
			c.referredExternal = v.(bool)
		case "created_at", "updated_at":
		default:
			panic(fmt.Sprintf("oscar: %s: unknown field %q", hook, k))
		}
	}
	// Explicit timestamps last, so a test can place a client in time.
	if v, ok := fields["created_at"]; ok {
		c.createdAt = v.(time.Time).UTC()
	}
	if v, ok := fields["updated_at"]; ok {
		c.updatedAt = v.(time.Time).UTC()
	}
}

// Exit is an NGO user exiting the client from the programme: status
// "Exited", updated_at now.
func (s *Server) Exit(globalID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clientByGID(globalID)
	if c == nil {
		return ErrUnknownGlobalID
	}
	c.status = "Exited"
	c.updatedAt = s.Now()
	return nil
}

// ReferToExternal is an NGO user referring the client with globalID (in
// the first tenant linked to it) to the external system (MoSVY) for the
// named catalogue services: a referral with status "Referred" and the
// given level of risk, the client flagged referred_external, updated_at
// now, so GET clients delivers it in the referred shape. It returns the
// referral id, and panics on a name the catalogue lacks.
func (s *Server) ReferToExternal(globalID, levelOfRisk string, services ...string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clientByGID(globalID)
	if c == nil {
		return 0, ErrUnknownGlobalID
	}
	svcs := s.cat.match(services)
	if len(svcs) != len(services) {
		panic(fmt.Sprintf("oscar: ReferToExternal: services %q are not all in the catalogue", services))
	}
	now := s.Now()
	risk := levelOfRisk
	reason := "Needs support from MoSVY"
	c.referredExternal, c.levelOfRisk, c.reasonForReferral, c.updatedAt = true, &risk, &reason, now
	r := &referral{
		client: c, clientGlobalID: c.globalID, externalID: c.externalID, externalIDDisplay: c.externalIDDisplay,
		status: "Referred", levelOfRisk: &risk, services: svcs,
		ngoName: ExternalSystem, referredFrom: c.tenant.short, referredTo: "MoSVY External System", saved: true,
		clientName: squish(deref(c.givenName) + " " + deref(c.familyName)),
		givenName:  c.givenName, familyName: c.familyName, gender: c.gender, dob: c.dob,
		villageCode: c.code, nameOfReferee: strp("Intake Worker"), referralPhone: strp("012000000"),
		referralReason: reason, createdAt: now, updateAt: now,
	}
	c.tenant.addReferral(r)
	return r.id, nil
}

// SetReferralStatus is an NGO user deciding on referral referralID in the
// first tenant linked to globalID (e.g. "Accepted" or "Exited" on a
// referral from Primero). It touches the referral's client, if any, the way
// the decision's form save does, so GET clients re-delivers it.
func (s *Server) SetReferralStatus(globalID string, referralID int, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.identities[globalID]
	if id == nil || len(id.links) == 0 {
		return ErrUnknownGlobalID
	}
	r := id.links[0].tenant.referralByID(referralID)
	if r == nil {
		return ErrUnknownReferral
	}
	now := s.Now()
	r.status, r.updateAt = status, now
	if r.client != nil {
		r.client.updatedAt = now
	}
	return nil
}

// Clients returns a snapshot of every client, tenants in order then by id.
// Each map holds the union of both serializer shapes (services always
// filled) plus tenant, level_of_risk, referred_external, visible,
// synced_date, created_at and updated_at (RFC 3339).
func (s *Server) Clients() []map[string]any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []map[string]any
	for _, t := range s.tenants {
		for _, c := range t.clients {
			out = append(out, s.snapshot(c))
		}
	}
	return out
}

// Client returns the snapshot of the client in the first tenant linked to
// globalID, and whether there is one.
func (s *Server) Client(globalID string) (map[string]any, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.clientByGID(globalID)
	if c == nil {
		return nil, false
	}
	return s.snapshot(c), true
}

func nullable(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func (s *Server) snapshot(c *client) map[string]any {
	names, mobiles := joinWorkers(c.caseWorkers)
	var svcs []any
	for _, sv := range s.services(c) {
		m := map[string]any{"program_name": nullable(sv.ProgramName), "enrollment_date": nullable(sv.EnrollmentDate), "uuid": sv.UUID, "name": sv.Name}
		if sv.ReferralID != nil {
			m["referral_id"] = *sv.ReferralID
			m["referral_status"] = *sv.ReferralStatus
		}
		svcs = append(svcs, m)
	}
	return map[string]any{
		"tenant": c.tenant.short, "organization_id": c.tenant.id, "organization_name": c.tenant.short,
		"organization_address_code": c.tenant.addressCode,
		"slug":                      c.slug, "global_id": c.globalID,
		"external_id": nullable(c.externalID), "external_id_display": nullable(c.externalIDDisplay),
		"mosvy_number": nullable(c.mosvyNumber),
		"given_name":   nullable(c.givenName), "family_name": nullable(c.familyName),
		"local_given_name": nullable(c.localGivenName), "local_family_name": nullable(c.localFamilyName),
		"gender": nullable(c.gender), "date_of_birth": nullable(c.dob),
		"location_current_village_code": c.code, "address_current_village_code": c.code,
		"status": c.status, "case_worker_name": names, "case_worker_mobile": mobiles,
		"external_case_worker_name": nullable(c.extCWName), "external_case_worker_id": nullable(c.extCWID),
		"reason_for_referral": nullable(c.reasonForReferral), "level_of_risk": nullable(c.levelOfRisk),
		"is_referred": c.lastExternal(ExternalSystem) != nil, "referred_external": c.referredExternal,
		"visible": c.visible(), "synced_date": c.syncedDate,
		"created_at": c.createdAt.Format(time.RFC3339Nano), "updated_at": c.updatedAt.Format(time.RFC3339Nano),
		"services": svcs,
	}
}

// Referrals returns a snapshot of every referral, tenants in order then by
// id: id, tenant, external_id, external_id_display, global_id (the
// referral's client_global_id), referral_status, services (names),
// level_of_risk, ngo_name, referred_from, referred_to, saved, accepted
// (a client exists), client_name, name_of_referee, referral_phone,
// referral_reason, created_at.
func (s *Server) Referrals() []map[string]any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []map[string]any
	for _, t := range s.tenants {
		for _, r := range t.referrals {
			out = append(out, map[string]any{
				"id": r.id, "tenant": t.short,
				"external_id": nullable(r.externalID), "external_id_display": nullable(r.externalIDDisplay),
				"global_id": r.clientGlobalID, "referral_status": r.status,
				"services":      slices.Clone(r.serviceNames()),
				"level_of_risk": nullable(r.levelOfRisk), "ngo_name": r.ngoName,
				"referred_from": r.referredFrom, "referred_to": r.referredTo,
				"saved": r.saved, "accepted": r.client != nil,
				"client_name": r.clientName, "name_of_referee": nullable(r.nameOfReferee),
				"referral_phone": nullable(r.referralPhone), "referral_reason": r.referralReason,
				"created_at": r.createdAt.Format(time.RFC3339Nano),
			})
		}
	}
	return out
}

// KnownGlobalID reports whether a GlobalIdentity with this ULID exists
// (with or without a client behind it).
func (s *Server) KnownGlobalID(globalID string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.identities[globalID] != nil
}

// Tenants returns the tenant short names in order, integrated ones first.
func (s *Server) Tenants() []string {
	out := make([]string, len(s.tenants))
	for i, t := range s.tenants {
		out[i] = t.short
	}
	return out
}

// Catalog returns the service names of the catalogue in file order (a
// name listed under two categories appears twice).
func (s *Server) Catalog() []string {
	out := make([]string, len(s.cat.rows))
	for i, r := range s.cat.rows {
		out[i] = r.Name
	}
	return out
}

// Count returns how many clients and referrals the store holds, in every
// tenant; cheaper than Clients for large seeds.
func (s *Server) Count() (clients, referrals int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range s.tenants {
		clients += len(t.clients)
		referrals += len(t.referrals)
	}
	return clients, referrals
}
