package oscar

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// The synthetic seed: invented people built from syllables, in the shapes
// and mixes doc.go describes. Everything derives from Options.Seed and
// BaseTime, never from the wall clock.

var (
	latinSyl = []string{"so", "pha", "ri", "na", "ka", "vy", "dy", "mo", "ra", "ly", "chan", "vi", "tha", "kea", "pi",
		"se", "nor", "bo", "mey", "dau", "rin", "tey", "lo", "ne", "sa", "vu", "he", "ko", "mi", "ta"}
	khmerSyl = []string{"សុ", "ភា", "រី", "ណា", "កា", "វី", "ឌី", "មុ", "រ៉ា", "លី", "ធា", "ពិ", "សេ", "បូ", "ម៉ី", "ដា"}
	programs = []string{"Safe Home", "Family Circle", "Step Up", "Learning Together", "Bright Path", "Care Bridge"}
	others   = []string{"lgbt", "unknown", "prefer_not_to_say", "other"}
)

// seedKind is the role a seeded client plays for the Cambodia flows.
type seedKind int

const (
	kindShared    seedKind = iota // a client shared with MoSVY, not referred
	kindReferred                  // referred from OSCaR to Primero (Flow 2 cases)
	kindLinked                    // created from an accepted Primero referral: external_id set
	kindInvisible                 // lacks a name, gender or date of birth
)

// designed are the first clients, placed so that even a small seed covers
// every case a test needs. Province "99" does not exist in Cambodia: the
// engine's province-owner lookup must miss on it.
var designed = []struct {
	kind     seedKind
	province string
	note     string
}{
	{kindReferred, "19", "referred, Stung Treng (the province the old province table lost)"},
	{kindReferred, "99", "referred, unknown province"},
	{kindLinked, "12", "Primero-originated, accepted"},
	{kindShared, "01", "shared, with enrolments"},
	{kindShared, "99", "shared, unknown province"},
	{kindReferred, "22", "referred, level_of_risk no action"},
	{kindInvisible, "05", "no date of birth"},
	{kindShared, "08", "local names only"},
	{kindShared, "17", "junk date of birth 22012-01-01"},
	{kindLinked, "02", "Primero-originated, referral Exited"},
	{kindShared, "03", "same global_id as client 3, in the next tenant"},
}

type seeder struct {
	s   *Server
	rng *rand.Rand
}

func tenantAddressCode(i int) string {
	if i == 0 {
		return "120611"
	}
	return fmt.Sprintf("%02d%02d%02d", 1+(i*7)%25, 1+i%9, 1+i%11)
}

func (s *Server) seed(n int) {
	sd := &seeder{s: s, rng: rand.New(rand.NewPCG(s.opts.Seed, 0x5eed))}
	var integrated []*tenant
	for _, t := range s.tenants {
		if t.integrated {
			integrated = append(integrated, t)
		}
	}
	var all []*client
	base := 0
	if s.opts.Clean {
		base = len(designed) // every designed index is below it
	}
	for i := 0; i < n; i++ {
		t := integrated[i%len(integrated)]
		all = append(all, sd.client(t, base+i, all))
	}
	// Pending Primero referrals nobody has accepted yet: no client.
	for j := 0; j < (n+24)/25; j++ {
		sd.pending(integrated[j%len(integrated)], j)
	}
}

func (sd *seeder) pick(list []string) string { return list[sd.rng.IntN(len(list))] }

func (sd *seeder) word(syl []string, min, max int) string {
	var b strings.Builder
	for k := min + sd.rng.IntN(max-min+1); k > 0; k-- {
		b.WriteString(sd.pick(syl))
	}
	return b.String()
}

func (sd *seeder) latinName() string {
	w := sd.word(latinSyl, 2, 3)
	return strings.ToUpper(w[:1]) + w[1:]
}

func (sd *seeder) between(from, to time.Time) time.Time {
	d := to.Sub(from)
	if d <= 0 {
		return from
	}
	return from.Add(time.Duration(sd.rng.Int64N(int64(d)))).Truncate(time.Second)
}

func (sd *seeder) ulid(t time.Time) string {
	return newULID(t, uint16(sd.rng.Uint32()), sd.rng.Uint64())
}

// uuid is a random version-4 uuid, the shape of a Primero case_id.
func (sd *seeder) uuid() string {
	a, b := sd.rng.Uint64(), sd.rng.Uint64()
	a = a&^0xf000 | 0x4000
	b = b&^(0xc<<60) | 0x8<<60
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}

// code is an NCDD code in the given province, usually a village (8
// digits), sometimes only a commune, district or province, sometimes none.
func (sd *seeder) code(province string, exactVillage bool) string {
	full := fmt.Sprintf("%s%02d%02d%02d", province, 1+sd.rng.IntN(12), 1+sd.rng.IntN(15), 1+sd.rng.IntN(20))
	if exactVillage {
		return full
	}
	switch r := sd.rng.Float64(); {
	case r < 0.80:
		return full
	case r < 0.87:
		return full[:6]
	case r < 0.92:
		return full[:4]
	case r < 0.95:
		return full[:2]
	}
	return ""
}

func (sd *seeder) services(n int) []service {
	rows := sd.s.cat.rows
	var out []service
	for len(out) < n {
		sv := rows[sd.rng.IntN(len(rows))]
		dup := false
		for _, x := range out {
			dup = dup || x.Name == sv.Name
		}
		if !dup {
			out = append(out, sv)
		}
	}
	return out
}

func (sd *seeder) workers() []caseWorker {
	ws := make([]caseWorker, 1+sd.rng.IntN(2))
	for i := range ws {
		ws[i].name = sd.latinName() + " " + sd.latinName()
		if sd.rng.Float64() < 0.85 {
			ws[i].mobile = fmt.Sprintf("0%d%07d", 10+sd.rng.IntN(89), sd.rng.IntN(10_000_000))
		}
	}
	return ws
}

func (sd *seeder) client(t *tenant, i int, prev []*client) *client {
	kind, province, exact := kindShared, fmt.Sprintf("%02d", 1+i%25), false
	if i < len(designed) {
		kind, province, exact = designed[i].kind, designed[i].province, true
	} else {
		switch r := sd.rng.Float64(); {
		case r < 0.20:
			kind = kindReferred
		case r < 0.27:
			kind = kindLinked
		case r < 0.30:
			kind = kindInvisible
		}
	}
	created := sd.between(BaseTime.Add(-730*24*time.Hour), BaseTime.Add(-time.Hour))
	updated := created
	switch r := sd.rng.Float64(); {
	case i < len(designed):
		// The designed clients all changed on the last day before BaseTime,
		// an hour apart, so a since_date of that day returns them all.
		created = BaseTime.Add(-time.Duration(30+i) * 24 * time.Hour)
		updated = BaseTime.Add(-time.Duration(i+1) * time.Hour)
	case r < 0.6:
	case r < 0.9:
		updated = sd.between(created, BaseTime)
	default:
		updated = sd.between(BaseTime.Add(-24*time.Hour), BaseTime)
		if updated.Before(created) {
			updated = created
		}
	}
	gender := "female"
	switch r := sd.rng.Float64(); {
	case r < 0.47:
	case r < 0.94:
		gender = "male"
	default:
		gender = sd.pick(others)
	}
	dob := fmt.Sprintf("%04d-%02d-%02d", 2005+sd.rng.IntN(17), 1+sd.rng.IntN(12), 1+sd.rng.IntN(28))
	c := &client{
		givenName:  strp(sd.latinName()),
		familyName: strp(sd.latinName()),
		gender:     &gender,
		dob:        &dob,
		code:       sd.code(province, exact),
		status:     "Active",
		externalID: strp(""), externalIDDisplay: strp(""), mosvyNumber: strp(""),
		caseWorkers: sd.workers(),
		createdAt:   created,
		updatedAt:   updated,
	}
	if sd.rng.Float64() < 0.6 {
		c.localGivenName, c.localFamilyName = strp(sd.word(khmerSyl, 1, 2)), strp(sd.word(khmerSyl, 1, 2))
	}
	if sd.rng.Float64() < 0.3 {
		c.mosvyNumber = strp(fmt.Sprintf("%07d", sd.rng.IntN(10_000_000)))
	}
	if sd.rng.Float64() < 0.1 {
		// Both null and "" occur in the referred shape's id fields.
		c.externalID, c.externalIDDisplay, c.mosvyNumber = nil, nil, nil
	}
	if r := sd.rng.Float64(); r < 0.2 {
		c.status = "Accepted"
	} else if r < 0.3 {
		c.status = "Exited"
	}
	if kind == kindShared && (sd.rng.Float64() < 0.4 || i == 3) {
		sd.enrol(c, 1+sd.rng.IntN(3))
	}
	gid := sd.ulid(created)
	switch i {
	case 6:
		c.dob = nil
	case 7:
		c.givenName, c.familyName = strp(""), strp("")
		c.localGivenName, c.localFamilyName = strp(sd.word(khmerSyl, 2, 2)), strp(sd.word(khmerSyl, 2, 2))
	case 8:
		c.dob = strp("22012-01-01")
	case 10:
		if prev[3].tenant != t { // a second client with one global_id must sit in another tenant
			gid = prev[3].globalID
		}
	}
	if kind == kindInvisible && i >= len(designed) {
		switch i % 3 {
		case 0:
			c.dob = nil
		case 1:
			c.gender = strp("")
		default:
			c.givenName, c.localGivenName = nil, nil
		}
	}
	c.globalID = gid
	t.addClient(c)
	c.slug = fmt.Sprintf("%s-%d", sd.word([]string{"a", "b", "c", "d", "e", "f", "g", "h", "k", "l", "m", "n", "p", "q", "r", "s", "t", "v", "w", "x"}, 3, 4), c.id)
	id := sd.s.identities[gid]
	if id == nil {
		id = &identity{ulid: gid}
		sd.s.identities[gid] = id
	}
	id.links = append(id.links, link{tenant: t, client: c})

	switch kind {
	case kindReferred:
		sd.referredOut(t, c, i)
	case kindLinked:
		sd.linked(t, c, i)
	}
	return c
}

func (sd *seeder) enrol(c *client, n int) {
	for _, sv := range sd.services(n) {
		d := sd.between(c.createdAt, c.updatedAt.Add(time.Second))
		c.enrollments = append(c.enrollments, enrollment{program: sd.pick(programs), date: d.Format(time.DateOnly), svc: sv})
	}
}

// referredOut makes c a client an NGO referred to MoSVY: flagged
// referred_external, one referral from the tenant to the external system
// carrying one or two services that are not enrolled.
func (sd *seeder) referredOut(t *tenant, c *client, i int) {
	c.referredExternal = true
	c.reasonForReferral = strp("Needs " + strings.ToLower(sd.latinName()) + " support")
	if sd.rng.Float64() < 0.5 {
		sd.enrol(c, 1+sd.rng.IntN(2))
	}
	risk := levelsOfRisk[sd.rng.IntN(len(levelsOfRisk))]
	if i == 5 {
		risk = "no action"
	}
	c.levelOfRisk = &risk
	status := "Referred"
	if r := sd.rng.Float64(); r < 0.15 && i >= len(designed) {
		status = "Accepted"
	} else if r < 0.2 && i >= len(designed) {
		status = "Exited"
	}
	w := c.caseWorkers[0]
	phone := w.mobile
	if phone == "" {
		phone = "000000000"
	}
	r := &referral{
		client: c, clientGlobalID: c.globalID,
		status: status, levelOfRisk: &risk, services: sd.services(1 + sd.rng.IntN(2)),
		ngoName: ExternalSystem, referredFrom: t.short, referredTo: "MoSVY External System", saved: true,
		clientName: squish(deref(c.givenName) + " " + deref(c.familyName)),
		givenName:  c.givenName, familyName: c.familyName, gender: c.gender, dob: c.dob,
		villageCode:   c.code,
		nameOfReferee: strp(w.name), referralPhone: strp(phone),
		referralReason: deref(c.reasonForReferral),
		createdAt:      c.updatedAt, updateAt: c.updatedAt,
	}
	if r.clientName == "" {
		r.clientName = squish(deref(c.localGivenName) + " " + deref(c.localFamilyName))
	}
	t.addReferral(r)
	r.consentForms = []string{fmt.Sprintf("https://assets.example.org/uploads/referral/consent_form/%d/consent.jpg", r.id)}
}

// linked makes c a client created when the NGO accepted a Primero
// referral: external_id set, the referral from MoSVY saved and decided.
func (sd *seeder) linked(t *tenant, c *client, i int) {
	case_ := sd.uuid()
	c.externalID, c.externalIDDisplay = strp(case_), strp(case_[len(case_)-7:])
	c.extCWName, c.extCWID = strp("Primero "+sd.latinName()), strp("cp_"+strings.ToLower(sd.latinName()))
	c.status = "Accepted"
	if sd.rng.Float64() < 0.5 {
		sd.enrol(c, 1)
	}
	status := "Accepted"
	if i == 9 {
		status = "Exited"
	}
	risk := levelsOfRisk[sd.rng.IntN(3)]
	t.addReferral(&referral{
		client: c, clientGlobalID: c.globalID, externalID: c.externalID, externalIDDisplay: c.externalIDDisplay,
		status: status, levelOfRisk: &risk, services: sd.services(1),
		ngoName: ExternalSystem, referredFrom: ExternalSystem, referredTo: t.short, saved: true,
		clientName: squish(deref(c.givenName) + " " + deref(c.familyName)),
		givenName:  c.givenName, familyName: c.familyName, gender: c.gender, dob: c.dob,
		villageCode: c.code, nameOfReferee: c.extCWName, referralPhone: strp("000000000"),
		referralReason: "N/A", refereeID: c.extCWID,
		createdAt: c.createdAt, updateAt: c.createdAt,
	})
}

// pending is a Primero referral nobody in the NGO has accepted: a global
// identity without a client, a referral without a client.
func (sd *seeder) pending(t *tenant, j int) {
	created := sd.between(BaseTime.Add(-14*24*time.Hour), BaseTime)
	gid := sd.ulid(created)
	sd.s.identities[gid] = &identity{ulid: gid}
	case_ := sd.uuid()
	gender := "female"
	if j%2 == 1 {
		gender = "male"
	}
	dob := fmt.Sprintf("%04d-%02d-%02d", 2008+sd.rng.IntN(12), 1+sd.rng.IntN(12), 1+sd.rng.IntN(28))
	given, family := sd.latinName(), sd.latinName()
	risk := "medium"
	t.addReferral(&referral{
		clientGlobalID: gid, externalID: strp(case_), externalIDDisplay: strp(case_[len(case_)-7:]),
		status: "Referred", levelOfRisk: &risk, services: sd.services(1),
		ngoName: ExternalSystem, referredFrom: ExternalSystem, referredTo: t.short,
		clientName: given + " " + family, givenName: &given, familyName: &family, gender: &gender, dob: &dob,
		villageCode: sd.code(fmt.Sprintf("%02d", 1+j%25), true), mosvyNumber: strp(""),
		nameOfReferee: strp("Primero " + sd.latinName()), referralPhone: strp("000000000"),
		referralReason: "N/A", createdAt: created, updateAt: created,
	})
}
