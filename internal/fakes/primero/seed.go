package primero

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// SeedBase is the fixed instant the synthetic cases are dated against:
// every seeded created_at and last_updated_at falls in the 180 days before
// it, whatever the clock says, so goldens built on seeded data stay stable.
var SeedBase = time.Date(2025, 6, 30, 0, 0, 0, 0, time.UTC)

const seedSpan = 180 * 24 * time.Hour

// Syllables for invented names. Names are built, never copied from fixtures.
var (
	givenSyllables  = []string{"so", "ka", "vi", "ra", "ny", "da", "mo", "li", "pe", "tu", "ne", "ha", "ri", "ma", "lo", "ke", "sa", "bo"}
	familySyllables = []string{"chan", "dor", "mek", "tal", "ven", "pan", "rit", "sok", "lam", "ter", "vok", "nal", "bur", "kes"}
)

// Service types the UNHCR flows send, all present in the deployment lookups.
var (
	unhcrServiceTypes = []string{"focuses_non_specialized_mhpss_care", "basic_psychosocial_support", "legal_support", "medical",
		"documentation", "education_formal", "cash_assistance", "shelter"}
	pingServiceTypes = []string{"alternative_care", "focuses_non_specialized_mhpss_care", "food", "other_please_specify"}
	unhcrConcerns    = []string{"sexual_exploitation", "child_labour", "child_marriage", "physical_abuse", "emotional_or_psychological", "abandonment", "unaccompanied", "separated", "orphan", "rape"}
	unhcrLanguages   = []string{"language1", "language2", "language3", "language4", "language5", "language8", "_arabic", "_english"}
	// A MoSVY Primero's concerns and disability types: the ids of
	// Primero's default lookups (lookups_default_config.json).
	cambodiaConcerns = []string{"sexually_exploited", "gbv_survivor", "trafficked_smuggled", "statelessness", "arrested_detained",
		"migrant", "disabled", "serious_health_issue", "refugee", "caafag", "street_child", "child_mother",
		"physically_or_mentally_abused", "living_with_vulnerable_person", "worst_forms_of_child_labor",
		"child_headed_household", "mentally_distressed", "other"}
	cambodiaDisabilityTypes = []string{"mental_disability", "physical_disability", "both"}
	cambodiaRiskLevels      = []string{"high", "medium", "low", "no_action"}
	unhcrRiskLevels         = []string{"high", "medium", "low"}
)

// Seed mix: the case index modulo 20 picks the kind, so even a handful of
// cases covers every branch the deployments take. doc.go lists the shares.
const (
	kindCambodiaReferral = iota
	kindCambodiaAccepted
	kindCambodiaNoConsent
	kindCambodiaLinked
	kindCambodiaFromOscar
	kindCambodiaPlain
	kindUNHCRReferral
	kindPINGInbound
	kindUNHCRPlain
)

func seedKind(idx int) int {
	switch k := idx % 20; {
	case k <= 4:
		return kindCambodiaReferral
	case k == 5:
		return kindCambodiaAccepted
	case k == 6:
		return kindCambodiaNoConsent
	case k == 7:
		return kindCambodiaLinked
	case k == 8:
		return kindCambodiaFromOscar
	case k <= 11:
		return kindCambodiaPlain
	case k <= 15:
		return kindUNHCRReferral
	case k <= 17:
		return kindPINGInbound
	default:
		return kindUNHCRPlain
	}
}

// seedRef is a referral the generator attaches to a seeded case.
type seedRef struct {
	id, to, toAgency, by, service, serviceRecordID, notes, status string
	created, responded                                            int64
}

// generator turns a case index into a case. It is a pure function of
// (seed, index), which is what lets the store keep only the index of a
// seeded case until something writes to it.
type generator struct {
	seed  uint64
	cat   *catalog
	users map[string]*user
	orgs  []string
	// mosvy: every case is one of the Cambodia kinds (Options.MoSVY).
	mosvy bool
}

func (g *generator) rng(idx int) *rand.Rand {
	return rand.New(rand.NewPCG(g.seed^0x5eed5eed5eed5eed, uint64(idx)*0x9e3779b97f4a7c15+1))
}

func randUUID(r *rand.Rand) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func name(r *rand.Rand, syl []string, n int) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		sb.WriteString(pick(r, syl))
	}
	s := sb.String()
	return strings.ToUpper(s[:1]) + s[1:]
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// ulid makes an OSCaR-style global_id (a ULID).
func ulid(r *rand.Rand) string {
	var sb strings.Builder
	sb.WriteString("01")
	for i := 0; i < 24; i++ {
		sb.WriteByte(crockford[r.IntN(32)])
	}
	return sb.String()
}

func msOf(t time.Time) int64 { return t.UnixMilli() }

// seedCase is the generator's output for one index.
type seedCase struct {
	id      string
	created int64
	updated int64
	doc     map[string]any
	refs    []seedRef
}

// caseAt builds case idx. The record id, timestamps and referrals come back
// beside the document because the store keeps them as columns.
func (g *generator) caseAt(idx int) seedCase {
	r := g.rng(idx)
	kind := seedKind(idx)
	if g.mosvy {
		// Kinds 0-11 are the Cambodia ones, in the same shares.
		kind = seedKind(idx % 12)
	}
	id := randUUID(r)
	caseID := randUUID(r)
	span := int64(seedSpan / time.Millisecond)
	baseMS := msOf(SeedBase)
	created := baseMS - span + r.Int64N(span-int64(48*time.Hour/time.Millisecond))
	updated := created + r.Int64N(baseMS-created)
	dob := SeedBase.AddDate(-1-r.IntN(16), -r.IntN(12), -r.IntN(28))
	age := SeedBase.Year() - dob.Year()
	if SeedBase.YearDay() < dob.YearDay() {
		age--
	}
	shortID := caseID[len(caseID)-7:]
	sc := seedCase{id: id, created: created, updated: updated}
	cambodia := kind <= kindCambodiaPlain

	d := map[string]any{
		"case_id": caseID, "short_id": shortID, "case_id_display": shortID, "unique_identifier": caseID,
		"status": "open", "record_state": true, "case_status_reopened": false, "workflow": "new",
		"name_first": name(r, givenSyllables, 2+r.IntN(2)), "name_last": name(r, familySyllables, 1+r.IntN(2)),
		"sex": pick(r, []string{"male", "female"}), "date_of_birth": dob.Format(time.DateOnly), "age": float64(age),
		"created_at": fmtMS(created), "registration_date": time.UnixMilli(created).UTC().Format(time.DateOnly),
		"reopened_logs": []any{}, "module_id": "primeromodule-cp",
	}
	var owner string
	if cambodia {
		province := 1 + idx%25
		owner = g.cat.provinceOwner[province]
		villages := g.cat.villages
		// Villages are laid out province by province in catalogue order.
		perProvince := len(villages) / 25
		d["location_current"] = villages[(province-1)*perProvince+r.IntN(perProvince)]
		d["risk_level"] = pick(r, cambodiaRiskLevels)
		d["interview_subject"] = "individual"
		d["consent_for_services"] = kind != kindCambodiaNoConsent
		d["disclosure_other_orgs"] = kind != kindCambodiaNoConsent
		if r.IntN(3) == 0 {
			d["mosvy_number"] = fmt.Sprintf("%07d", r.IntN(10_000_000))
		}
	} else {
		owner = pick(r, []string{"primero_cp", "unhcr_cw"})
		d["location_current"] = pick(r, g.cat.unhcrLocations)
		d["risk_level"] = pick(r, unhcrRiskLevels)
		d["interview_subject"] = "child"
		d["consent_for_services"] = true
		d["disclosure_other_orgs"] = true
		d["unhcr_export_opt_in"] = true
		d["unhcr_individual_no"] = fmt.Sprintf("GMB-%08d", idx+1)
		d["unhcr_id_no"] = fmt.Sprintf("GMB-RG%06d", idx/3+1)
		d["nationality"] = []any{"south_sudan"}
		d["language"] = []any{pick(r, unhcrLanguages)}
		d["telephone_current"] = fmt.Sprintf("09%08d", r.IntN(100_000_000))
		d["address_current"] = fmt.Sprintf("Block %d, %s", 1+r.IntN(40), d["location_current"])
		concerns := []any{pick(r, unhcrConcerns)}
		if c2 := pick(r, unhcrConcerns); c2 != concerns[0] && r.IntN(2) == 0 {
			concerns = append(concerns, c2)
		}
		d["protection_concerns"] = concerns
		if r.IntN(8) == 0 {
			d["sex"] = pick(r, []string{"other_b25f252", "unknown_4b34795"})
		}
	}
	ou := g.users[owner]
	d["owned_by"] = owner
	d["created_by"] = owner
	d["last_updated_by"] = owner
	if ou != nil {
		d["owned_by_agency_id"] = ou.Agency
		d["created_organization"] = ou.Agency
		d["owned_by_groups"] = toAnyStrings(ou.UserGroups)
		d["owned_by_location"] = ou.Location
		d["owned_by_full_name"] = ou.FullName
	}

	svcDay := func(off int64) int64 {
		t := created + off
		return t - t%1000 // services are entered to the second
	}
	var services []any
	var assigned []string
	switch kind {
	case kindCambodiaReferral, kindCambodiaAccepted, kindCambodiaNoConsent:
		n := 1
		if kind == kindCambodiaReferral && r.IntN(4) == 0 {
			n = 2
		}
		for i := 0; i < n; i++ {
			pair := pick(r, g.cat.cambodiaServices)
			org := pick(r, g.orgs)
			uid := randUUID(r)
			day := svcDay(int64(i+1) * 60_000)
			row := map[string]any{
				"unique_id": uid, "service_type": pair.Type, "service_subtype": []any{pair.Subtype},
				"service_response_type": "referral_to_oscar", "service_response_day_time": fmtMS(day),
				"service_implementing_agency": "agency-" + org, "service_implemented": "not_implemented",
			}
			if kind != kindCambodiaNoConsent {
				row["service_status_referred"] = true
				ref := seedRef{
					id: randUUID(r), to: "agency-" + org + "-user", toAgency: "agency-" + org, by: owner,
					service: pair.Type, serviceRecordID: uid, notes: "Referral to " + strings.ToUpper(org),
					status: "in_progress", created: day + 30_000 + r.Int64N(600_000),
				}
				if kind == kindCambodiaAccepted {
					ref.status = "accepted"
					ref.responded = ref.created + r.Int64N(86_400_000)
					row["referral_status_edf41f2"] = "accepted_340953"
					d["oscar_number"] = ulid(r)
					d["oscar_short_id"] = fmt.Sprintf("%s-%d", strings.ToLower(name(r, givenSyllables, 2))[:3], 100+r.IntN(9900))
					d["oscar_status"] = "Active"
				}
				sc.refs = append(sc.refs, ref)
				assigned = append(assigned, ref.to)
			}
			services = append(services, row)
		}
	case kindCambodiaLinked:
		d["oscar_number"] = ulid(r)
		d["oscar_short_id"] = fmt.Sprintf("%s-%d", strings.ToLower(name(r, givenSyllables, 2))[:3], 100+r.IntN(9900))
		d["oscar_status"] = "Active"
		if r.IntN(2) == 0 {
			pair := pick(r, g.cat.cambodiaServices)
			org := pick(r, g.orgs)
			services = append(services, map[string]any{
				"unique_id": randUUID(r), "service_type": pair.Type, "service_subtype": []any{pair.Subtype},
				"service_response_type":     "service_being_provided_by_oscar_partner_47618",
				"service_response_day_time": fmtMS(svcDay(120_000)), "service_implementing_agency": "agency-" + org,
				"oscar_referring_organization": "agency-" + org, "service_implemented": "not_implemented",
			})
		}
	case kindCambodiaFromOscar:
		pair := pick(r, g.cat.cambodiaServices)
		org := pick(r, g.orgs)
		d["oscar_number"] = ulid(r)
		row := map[string]any{
			"unique_id": randUUID(r), "service_type": pair.Type, "service_subtype": []any{pair.Subtype},
			"service_response_type": "referral_from_oscar", "service_response_day_time": fmtMS(svcDay(60_000)),
			"service_implementing_agency": "agency-" + org, "oscar_referring_organization": "agency-" + org,
			"oscar_referral_id_a4ac8a5": fmt.Sprintf("%d", 1000+idx), "oscar_case_worker_name": name(r, givenSyllables, 2) + " " + name(r, familySyllables, 1),
			"service_implemented": "not_implemented",
		}
		switch r.IntN(3) {
		case 0:
			row["referral_status_edf41f2"] = "accepted_340953"
		case 1:
			row["referral_status_edf41f2"] = "rejected_936484"
		}
		services = append(services, row)
	case kindUNHCRReferral:
		uid := randUUID(r)
		day := svcDay(90_000)
		st := pick(r, unhcrServiceTypes)
		row := map[string]any{
			"unique_id": uid, "service_type": st, "service_response_type": "service_provision",
			"service_response_day_time": fmtMS(day), "service_implementing_agency": "UNHCR",
			"service_referral": "external_referral", "service_referral_notes": "Needs follow-up by UNHCR",
			"service_implemented": "not_implemented", "service_status_referred": true,
		}
		if r.IntN(4) == 0 {
			row["service_type_other"] = "Additional support"
		}
		services = append(services, row)
		sc.refs = append(sc.refs, seedRef{
			id: randUUID(r), to: "unhcr_focal", toAgency: "agency-unhcr", by: owner, service: st, serviceRecordID: uid,
			notes: "Referral to UNHCR", status: "in_progress", created: day + 45_000 + r.Int64N(600_000),
		})
		assigned = append(assigned, "unhcr_focal")
	case kindPINGInbound:
		status := pick(r, []string{"pending", "pending", "accepted", "rejected"})
		row := map[string]any{
			"unique_id": randUUID(r), "service_type": pick(r, pingServiceTypes), "service_response_type": "service_provision",
			"service_response_day_time": fmtMS(svcDay(30_000)), "service_appointment_date": time.UnixMilli(created).UTC().AddDate(0, 0, 3).Format(time.DateOnly),
			"service_request_external": true, "service_request_agency": "UNHCR", "service_request_title": "Protection Officer",
			"service_request_phone": fmt.Sprintf("09%08d", r.IntN(100_000_000)), "service_request_email": "protection.officer@example.org",
			"service_implementing_agency": "UNICEF", "service_referral": "external_referral", "unhcr_referral_status": status,
			"progres_interventionnumber": fmt.Sprintf("GMB-24-PRTITV-%07d,%s,%s", idx+1, randUUID(r), "b0e1c5d2-0000-4000-8000-00000000e7e7"),
			"service_referral_notes":     "Referred from proGres", "service_implemented": "not_implemented",
		}
		if status == "rejected" {
			row["unhcr_referral_rejection_reason"] = "No capacity in the area"
		}
		services = append(services, row)
		d["created_by"] = "openfn_cp_user"
	}
	if services != nil {
		d["services_section"] = services
		d["workflow"] = services[len(services)-1].(map[string]any)["service_response_type"]
	}
	if idx%31 == 5 {
		d["status"] = "closed"
		d["workflow"] = "closed"
		d["date_closure"] = time.UnixMilli(updated).UTC().Format(time.DateOnly)
	}
	if idx%97 == 13 {
		d["record_state"] = false
	}
	if g.mosvy {
		g.mosvyConcerns(idx, d)
	}
	assignedAny := toAnyStrings(assigned)
	d["assigned_user_names"] = assignedAny
	d["associated_user_names"] = toAnyStrings(uniqueStrings(append([]string{owner}, assigned...)))
	if len(assigned) > 0 {
		d["referred_users"] = assignedAny
		d["referred_users_present"] = true
	}
	for _, ref := range sc.refs {
		// Every transition saves the case, so the case is never older
		// than its newest referral.
		if t := max(ref.created, ref.responded); t >= sc.updated {
			sc.updated = t + 1
		}
	}
	sc.doc = d
	return sc
}

// mosvyConcerns gives a MoSVY case the protection concerns and disability
// type a caseworker picks from Primero's own lookups
// (lookup-protection-concerns, lookup-disability-type). A stream of its
// own, so the rest of the case is the same as without Options.MoSVY.
func (g *generator) mosvyConcerns(idx int, d map[string]any) {
	r := rand.New(rand.NewPCG(g.seed^0x4d6f535659, uint64(idx)*0x9e3779b97f4a7c15+7))
	if r.IntN(3) > 0 {
		concerns := []any{pick(r, cambodiaConcerns)}
		if c2 := pick(r, cambodiaConcerns); c2 != concerns[0] && r.IntN(3) == 0 {
			concerns = append(concerns, c2)
		}
		d["protection_concerns"] = concerns
	}
	if r.IntN(10) == 0 {
		d["disability_type"] = pick(r, cambodiaDisabilityTypes)
	}
}

func toAnyStrings(xs []string) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

func uniqueStrings(xs []string) []string {
	seen := map[string]bool{}
	out := xs[:0:0]
	for _, x := range xs {
		if x != "" && !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func fmtMS(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") }
