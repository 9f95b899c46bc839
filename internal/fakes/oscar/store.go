package oscar

import (
	"slices"
	"strings"
	"time"
)

// The store mirrors the tables the interop endpoints touch: organizations
// (one tenant schema each), clients, referrals and the cross-tenant
// global identities. Everything is guarded by Server.mu.

// tenant is one NGO schema.
type tenant struct {
	id          int
	short       string
	full        string
	integrated  bool
	addressCode string // organization_address_code, from the NGO's settings

	clients   []*client // by id
	byGID     map[string]*client
	referrals []*referral
	nextCID   int
	nextRID   int
}

// caseWorker is a User assigned to the client; the serializers join their
// names and mobiles with ", ".
type caseWorker struct{ name, mobile string }

// enrollment is a programme-stream enrolment and the catalogue service it
// provides.
type enrollment struct {
	program string
	date    string // YYYY-MM-DD
	svc     service
}

// client is a row of the tenant's clients table, reduced to what the API
// reads or writes. Pointers are nullable columns.
type client struct {
	id     int
	tenant *tenant

	globalID string
	slug     string

	givenName, familyName           *string
	localGivenName, localFamilyName *string
	gender                          *string
	dob                             *string // YYYY-MM-DD; nil hides the client from GET
	code                            string  // most specific NCDD code known, "" for none
	status                          string

	externalID, externalIDDisplay, mosvyNumber *string
	extCWName, extCWID                         *string
	reasonForReferral                          *string
	levelOfRisk                                *string
	referredExternal                           bool
	caseWorkers                                []caseWorker
	enrollments                                []enrollment
	referrals                                  []*referral // referrals.client_id = id, by id
	syncedDate                                 string

	createdAt, updatedAt time.Time
}

// visible is the WHERE clause every GET clients branch starts from: a given
// name (or local one), a family name (or local one), a gender and a date of
// birth. TRIM in Postgres strips spaces only.
func (c *client) visible() bool {
	return strings.Trim(deref(c.givenName)+deref(c.localGivenName), " ") != "" &&
		strings.Trim(deref(c.familyName)+deref(c.localFamilyName), " ") != "" &&
		c.gender != nil && *c.gender != "" && c.dob != nil
}

// lastExternal is client.referrals.get_external_systems(name).last.
func (c *client) lastExternal(ext string) *referral {
	for i := len(c.referrals) - 1; i >= 0; i-- {
		if c.referrals[i].ngoName == ext {
			return c.referrals[i]
		}
	}
	return nil
}

// referral is a row of the tenant's referrals table.
type referral struct {
	id     int
	tenant *tenant
	client *client // nil while pending: nobody in the NGO has accepted it

	clientGlobalID    string
	externalID        *string
	externalIDDisplay *string
	status            string
	levelOfRisk       *string
	services          []service
	ngoName           string
	referredFrom      string
	referredTo        string
	saved             bool

	clientName          string
	givenName           *string // kept so Accept can build the client
	familyName          *string
	gender, dob         *string
	villageCode         string
	mosvyNumber         *string
	nameOfReferee       *string
	referralPhone       *string
	referralReason      string
	refereeEmail        *string
	refereeID           *string
	consentForms        []string
	createdAt, updateAt time.Time
	// sentUUIDs are the services[].uuid of the upsert that made the
	// referral. OSCaR ignores them (it matches services by name); the fake
	// keeps them only to tell a repeated upsert from a second referral of
	// the same service (see saveReferral).
	sentUUIDs []string
}

func (r *referral) serviceNames() []string {
	out := make([]string, len(r.services))
	for i, s := range r.services {
		out[i] = s.Name
	}
	return out
}

// link is a global_identity_organizations row: this identity has a client
// in that tenant.
type link struct {
	tenant *tenant
	client *client
}

// identity is a GlobalIdentity (ULID) and its tenant links in creation
// order; "the first tenant linked" decides where an upsert lands.
type identity struct {
	ulid  string
	links []link
}

func (t *tenant) addClient(c *client) {
	t.nextCID++
	c.id = t.nextCID
	c.tenant = t
	t.clients = append(t.clients, c)
	if t.byGID == nil {
		t.byGID = map[string]*client{}
	}
	t.byGID[c.globalID] = c
}

func (t *tenant) addReferral(r *referral) {
	t.nextRID++
	r.id = t.nextRID
	r.tenant = t
	t.referrals = append(t.referrals, r)
	if r.client != nil {
		r.client.referrals = append(r.client.referrals, r)
	}
}

func (t *tenant) clientByGID(gid string) *client { return t.byGID[gid] }

// referralByExternalID is Referral.find_by(external_id: x): the lowest id
// wins, and a nil x matches a NULL column, exactly as the SQL does.
func (t *tenant) referralByExternalID(x *string) *referral {
	for _, r := range t.referrals {
		if eqPtr(r.externalID, x) {
			return r
		}
	}
	return nil
}

func (t *tenant) referralByID(id int) *referral {
	i, ok := slices.BinarySearchFunc(t.referrals, id, func(r *referral, id int) int { return r.id - id })
	if !ok {
		return nil
	}
	return t.referrals[i]
}
