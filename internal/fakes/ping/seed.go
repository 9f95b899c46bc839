package ping

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"time"
)

// seedBase anchors every seeded date, so seeded rows are identical on every
// run and in every time zone whatever Options.Now says.
var seedBase = time.Date(2026, time.May, 1, 0, 0, 0, 0, time.UTC)

// Streams of the seeded generators. Interventions, decisions and runtime ids
// draw from separate streams so that asking for more of one never changes
// the others.
const (
	streamInterventions = 0x50494e47_0001
	streamDecisions     = 0x50494e47_0002
	streamRuntime       = 0x50494e47_0003
)

// Syllables for invented names. They avoid the syllables of the names in the
// fixtures, and TestServer_SeedIsInvented checks that no fixture name comes out.
var (
	nameSyllables = []string{
		"ka", "lo", "mi", "ne", "ta", "ru", "sa", "vo", "fi", "ga",
		"ho", "ju", "ke", "no", "pe", "su", "te", "wa", "yo", "zu",
		"be", "chi", "da", "le", "mo", "na", "so", "ba", "ti", "ku",
	}
	familyEndings = []string{"", "", "n", "ri", "we", "mbe", "ko"}
	staffTitles   = []string{"Ms", "Mr", "Dr"}
	zones         = []string{"Zone A", "Zone B", "Zone C", "Zone D"}
	descriptions  = []string{
		"<p>Needs follow-up by a child protection partner.</p>",
		"<p>Assessment completed; referral for <strong>case management</strong>.</p>",
		"Family requested support during home visit.",
		"",
	}
	reasons = []string{
		"<p>Child out of school and at risk.</p>",
		"<p>Separated from caregivers since arrival.</p>",
		"Caregiver unable to meet basic needs.",
		"",
	}
	rejectionComments = []string{
		"No capacity in this area this month.",
		"Please resubmit with the caregiver's contact details.",
		"Already followed by another partner.",
	}
)

// seeder builds the deterministic seed data of one Server.
type seeder struct {
	rng  *rand.Rand
	opts Options
}

func (g *seeder) pick(xs []string) string { return xs[g.rng.IntN(len(xs))] }

func (g *seeder) name(syllables int) string {
	var b strings.Builder
	prev := ""
	for range syllables {
		// No syllable twice in a row: doubled ones ("Dada") are real names.
		syl := g.pick(nameSyllables)
		for syl == prev {
			syl = g.pick(nameSyllables)
		}
		b.WriteString(syl)
		prev = syl
	}
	s := b.String()
	return strings.ToUpper(s[:1]) + s[1:]
}

func (g *seeder) familyName() string { return g.name(2+g.rng.IntN(2)) + g.pick(familyEndings) }

// phone returns a number in the unassigned +999 country code, so a seeded
// number can never ring anyone.
func (g *seeder) phone() string {
	return fmt.Sprintf("+999 7%02d %03d %03d", g.rng.IntN(100), g.rng.IntN(1000), g.rng.IntN(1000))
}

func (g *seeder) daysBefore(maxDays int) string {
	return seedBase.AddDate(0, 0, -g.rng.IntN(maxDays)).Format(time.DateOnly)
}

// stableGUID derives a GUID from a name, for reference data (languages,
// locations) whose id must not depend on which individual drew it first.
func stableGUID(kind, name string) string {
	h := fnv.New128a()
	h.Write([]byte(kind + "\x00" + name))
	b := h.Sum(nil)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// interventions returns n seeded interventions pending transfer. Indexes 0-4
// carry the fixed cases listed in doc.go; the rest are drawn at random.
func (g *seeder) interventions(n int) []*intervention {
	out := make([]*intervention, 0, n)
	for i := range n {
		out = append(out, g.intervention(i))
	}
	return out
}

func (g *seeder) intervention(i int) *intervention {
	in := &intervention{
		ID:           guidFrom(g.rng),
		DeliveryID:   guidFrom(g.rng),
		Number:       fmt.Sprintf("900-26-PRTITV-1%06d", i+1),
		BusinessUnit: g.opts.BusinessUnitID,
		StartDate:    g.daysBefore(365),
		Description:  g.pick(descriptions),
		Reason:       g.pick(reasons),
		Type:         allowListedTypes[g.rng.IntN(len(allowListedTypes))],
		Person:       g.person(i),
		Staff: staff{
			Title:  g.pick(staffTitles),
			Mobile: g.phone(),
			Email:  strings.ToLower(g.name(2)+"."+g.name(2)) + "@example.org",
		},
	}
	in.StatusDate = in.StartDate
	in.Languages = g.languages(g.rng.IntN(3))
	in.Needs = g.needs(g.rng.IntN(3))
	if g.opts.Clean {
		i = -1 // no designed edge case: drawn like the rest
	}
	switch i {
	case 0: // the join case: 2 languages x 2 specific needs = 4 detail rows
		in.Languages = g.languages(2)
		in.Needs = g.needs(2)
		in.Person.Sex = 125080000
	case 1: // an intervention type outside Flow 1.1's allow-list
		in.Type = offListType
		in.Person.Sex = 125080001
	case 2: // proGres has no date of birth (the job crashes on it)
		in.Person.DateOfBirth = ""
		in.Person.Sex = 125080002
	case 3: // a language the inbound table does not know
		in.Languages = []language{{stableGUID("language", unknownLanguage), unknownLanguage}, g.languages(1)[0]}
		in.Person.Sex = 125080003
	case 4: // no languages, no needs, and back in the queue after a failed delivery
		in.Languages, in.Needs = nil, nil
		in.TransferStatus = TransferDeliveryFail
		in.TransferStatusDate = in.StartDate
	}
	return in
}

func (g *seeder) person(i int) individual {
	p := individual{
		ID:        guidFrom(g.rng),
		ProgresID: fmt.Sprintf("900-1%08d", i+1),
		GroupID:   guidFrom(g.rng),
		GroupName: fmt.Sprintf("900-26-1%06d", i+1),
		Given:     g.name(2 + g.rng.IntN(2)),
		Family:    g.familyName(),
		// Children of 1-17, as child-protection referrals are.
		DateOfBirth: seedBase.AddDate(-1-g.rng.IntN(17), 0, -g.rng.IntN(365)).Format(time.DateOnly),
		Sex:         g.sex(),
	}
	if g.rng.IntN(10) < 4 {
		p.Middle = g.name(2)
	}
	if g.rng.IntN(10) < 2 {
		p.CommonName = g.name(2)
	}
	if g.rng.IntN(10) < 6 {
		p.Phone = g.phone()
	}
	levels := []string{
		g.pick(zones),
		fmt.Sprintf("Block %d", 1+g.rng.IntN(20)),
		fmt.Sprintf("Group %02d", 1+g.rng.IntN(40)),
	}
	if g.rng.IntN(10) < 4 {
		levels = append(levels, fmt.Sprintf("Section %d", 1+g.rng.IntN(9)))
	}
	for l, name := range levels {
		p.Locations[l] = location{stableGUID("location", name), name}
	}
	return p
}

// sex draws mostly female and male, with some other and unknown.
func (g *seeder) sex() int {
	switch r := g.rng.IntN(20); {
	case r < 9:
		return 125080000
	case r < 18:
		return 125080001
	default:
		return sexCodes[2+r-18]
	}
}

func (g *seeder) languages(n int) []language {
	var out []language
	for _, k := range g.rng.Perm(len(knownLanguages))[:n] {
		out = append(out, language{stableGUID("language", knownLanguages[k]), knownLanguages[k]})
	}
	return out
}

func (g *seeder) needs(n int) []specificNeed {
	var out []specificNeed
	for _, k := range g.rng.Perm(len(specificNeeds))[:n] {
		out = append(out, specificNeeds[k])
	}
	return out
}

// decisions returns n seeded interoperability referrals that came from
// Primero and were decided in proGres. Indexes 0-3 are fixed (doc.go).
func (g *seeder) decisions(n int) []*referral {
	out := make([]*referral, 0, n)
	for i := range n {
		out = append(out, g.decision(i))
	}
	return out
}

func (g *seeder) decision(i int) *referral {
	str := func(s string) *string { return &s }
	caseID := guidFrom(g.rng)
	given, family := g.name(2), g.familyName()
	r := &referral{
		ID:     guidFrom(g.rng),
		Number: fmt.Sprintf("REF-IOP-FKE-%09d", i+1),
		Fields: map[string]*string{
			"progres_externalguid":           str(guidFrom(g.rng)),
			"progres_externalid":             str(caseID),
			"progres_offlineid":              str(caseID),
			"progres_businessunit":           str(g.opts.BusinessUnitID),
			"progres_organizationfrom":       str(g.opts.OrganizationFromID),
			"progres_orgreferredby":          str("Primero CP"),
			"progres_orgposition":            str("Child Protection Officer"),
			"progres_orgemail":               str(strings.ToLower(g.name(2)) + "@example.org"),
			"progres_orgphonenumber":         str(g.phone()),
			"progres_orgreferralid":          str(guidFrom(g.rng)),
			"progres_referraldate":           str(g.daysBefore(120)),
			"progres_otherrequestedservices": nil,
			"progres_requestedservice":       str(requestedServices[g.rng.IntN(len(requestedServices))]),
			"progres_spneedcategory":         str(spneedCategories[g.rng.IntN(len(spneedCategories))]),
			"progres_reasonforreferral":      str("Primero referral"),
			"progres_pocphonenumber":         str(g.phone()),
			"progres_pocaddress":             str(g.pick(zones)),
			"progres_pocotheridnumber":       str(fmt.Sprintf("900-26-2%06d", i+1)),
			"progres_pocdateofbirth":         str(seedBase.AddDate(-1-g.rng.IntN(17), 0, -g.rng.IntN(365)).Format(time.DateOnly)),
			"progres_pocsex":                 str(fmt.Sprint(sexCodes[g.rng.IntN(2)])),
			"progres_poclastname":            str(family),
			"progres_pocmiddlename":          nil,
			"progres_pocfirstname":           str(given),
			"progres_unhcrid":                str(fmt.Sprintf("900-2%08d", i+1)),
		},
	}
	status := ReferralAccepted
	if g.rng.IntN(2) == 1 {
		status = ReferralRejected
	}
	if g.opts.Clean {
		i = -1
	}
	switch i {
	case 0:
		status = ReferralAccepted
	case 1:
		status = ReferralRejected
	case 2:
		status = ReferralUnknownCode
	case 3:
		status = ReferralNew
	}
	reason, comment := g.pick(rejectionReasons), g.pick(rejectionComments)
	decide(r, status, reason, comment)
	return r
}

// decide records a proGres decision on r. The review decision follows the
// job comment of ping.md §9 (accepted 125080000, rejected 125080001); other
// statuses carry none, as the job's fallback implies.
func decide(r *referral, status int, reasonName, comment string) {
	r.Status = status
	r.ReviewDecision, r.ReasonName, r.ReasonComment = 0, "", ""
	switch status {
	case ReferralAccepted:
		r.ReviewDecision = 125080000
	case ReferralRejected:
		r.ReviewDecision = 125080001
		r.ReasonName, r.ReasonComment = reasonName, comment
	}
}
