package his

import (
	"fmt"
	"math/rand/v2"
)

// Visit and risk-model ids are 24-hex MongoDB ObjectIds, as a LoopBack
// model on MongoDB has them: the OpenFn job builds Primero subform row ids
// from a visit id and eight digits of the national id, which is a UUID's
// 32 digits only with such an id.

// Person is one HIS patient as the person model stores it, with its visits
// (the interventions relation) and its risk model (nil: none).
type Person struct {
	Fields    map[string]any
	Visits    []map[string]any
	RiskModel map[string]any
}

// CID is the person's national id.
func (p *Person) CID() string { s, _ := p.Fields["cid"].(string); return s }

// The fixed patients' national ids. The first two are those of the Primero
// webhook fixtures (primero_sync_webhook_minimal.json and …_full.json).
const (
	// CIDFound has everything: two visits that both carry lab results,
	// the newest at 00:20 Thai time, an ANC entry, a full risk model.
	CIDFound = "1417500060321"
	// CIDPartial has a risk model with strings missing, a nationality
	// code no table holds, a home-service visit, and a bare "+" phone.
	CIDPartial = "1399900518123"
	// CIDNoDates has visits, none of them dated, and no risk model.
	CIDNoDates = "3100600012347"
	// CIDNoVisits has no visit at all.
	CIDNoVisits = "5101400045673"
	// NotFoundCID is a valid national id HIS does not know.
	NotFoundCID = "1100700099992"
)

// Patients returns the fixed patients, freshly built.
func Patients() []*Person {
	return []*Person{
		{
			Fields: map[string]any{
				"cid": CIDFound, "hn": "000123", "hcode": "10669", "fname": "Kanokwan", "lname": "Phetrung",
				"birthday": "2011-05-14", "sex": "2", "marrystatus": "1", "educate": "2", "nation": "099",
				"informaddr": "12 Moo 3, Tambon Nong Pla, Amphoe Mueang, Fake Province", "hometel": "0800000001",
				"pttype_name": "UC card", "occupation_name": "student",
			},
			Visits: []map[string]any{
				{
					"id": "65e2f1a0b3c4d5e6f7a80701", "vn": "670302101500", "vstdate": "2024-03-02", "vsttime": "10:15:00",
					"main_dep": "OSCC clinic", "spclty_name": "Paediatrics",
					"diagnosis": []any{
						map[string]any{"diagtype": "1", "icd10": "T74.2", "diag_name": "Sexual abuse"},
					},
					"assessment": []any{map[string]any{"physicalexam": "bruises on arms", "bw": 41.6, "height": 151.4, "pe": "alert", "pe_gen_text": "no acute distress"}},
					"anc":        []any{},
					"lab": []any{
						map[string]any{"lab_items_code": "0602203", "lab_order_result": "negative", "lab_items_unit": "", "lab_items_normal_value": "negative"},
						map[string]any{"lab_items_code": "0721298", "lab_order_result": "non-reactive", "lab_items_unit": "", "lab_items_normal_value": "non-reactive"},
					},
				},
				{
					"id": "65ee6b10b3c4d5e6f7a80702", "vn": "670311002000", "vstdate": "2024-03-11", "vsttime": "00:20:00",
					"main_dep": "Emergency room", "spclty_name": "Emergency medicine",
					"diagnosis": []any{
						map[string]any{"diagtype": "1", "icd10": "T74.2", "diag_name": "Sexual abuse"},
						map[string]any{"diagtype": "02", "icd10": "F43.1", "diag_name": "Post-traumatic stress disorder"},
						map[string]any{"diagtype": "5", "icd10": "Y05", "diag_name": "Sexual assault by bodily force"},
						map[string]any{"diagtype": "9", "icd10": "Z04.5", "diag_name": "Examination following other inflicted injury"},
					},
					"assessment": []any{map[string]any{"physicalexam": "no new injury", "bw": 41.24, "height": 151.56, "pe": "tearful", "pe_gen_text": "oriented"}},
					"anc":        []any{map[string]any{"lmp": "2024-01-20", "ga_week": 7, "date": "2024-03-11"}},
					"lab": []any{
						map[string]any{"lab_items_code": "0749300", "lab_order_result": "negative", "lab_items_unit": "S/CO", "lab_items_normal_value": "<1.0"},
						map[string]any{"lab_items_code": "0749303", "lab_order_result": "0.2", "lab_items_unit": "IU/mL", "lab_items_normal_value": "<0.05"},
					},
				},
			},
			RiskModel: map[string]any{
				"id": "65e2f1a0c0ffee0000000501", "severityType": "รุนแรง", "mental": "yes", "physical": "yes", "sexual": "yes", "import_no": "IMP-0501",
				"caseStatus": "assignedOfficer", "osccTeamId": "team-07", "officerId": "officer-19", "careGiverUser": "caregiver-3",
				"caseStatusBeforeRemove": "assignedTeam", "caseUserId": "user-88", "riskLevel": "high", "summaryRiskLevel": "high",
				"improveLevel": "unchanged",
			},
		},
		{
			Fields: map[string]any{
				"cid": CIDPartial, "hn": "", "hcode": "11020", "fname": "Thanawat", "lname": "Boonmee",
				"birthday": "2009-11-30", "sex": "1", "marrystatus": "7", "educate": "3", "nation": "998",
				"informaddr": "45 Soi Fake 2, Fake District", "hometel": "+",
				"pttype_name": "Social security", "occupation_name": "",
			},
			Visits: []map[string]any{
				{
					"id": "63a03a48b3c4d5e6f7a88101", "vn": "651219093000", "vstdate": "2022-12-19", "vsttime": "09:30:00",
					"main_dep": "OSCC clinic", "spclty_name": "Psychiatry",
					"diagnosis":  []any{map[string]any{"diagtype": "1", "icd10": "T74.1", "diag_name": "Physical abuse"}},
					"assessment": []any{map[string]any{"physicalexam": "healing fracture", "bw": 50, "height": 165, "pe": "calm", "pe_gen_text": ""}},
					"anc":        []any{},
					"lab":        []any{},
				},
				{
					"id": "63a97a70b3c4d5e6f7a88102", "vn": "651226140000", "vstdate": "2022-12-26", "vsttime": "14:00:00",
					"main_dep": "Home visit", "spclty_name": "Community care",
					"diagnosis":   []any{},
					"assessment":  []any{},
					"anc":         []any{},
					"lab":         []any{},
					"homeservice": []any{map[string]any{"code": "CQ1", "answers": []any{}}},
				},
			},
			RiskModel: map[string]any{
				"id": "63a03a48c0ffee0000000502", "mental": "no", "physical": "yes", "sexual": nil, "caseStatus": "new", "riskLevel": "medium",
				"summaryRiskLevel": "medium",
			},
		},
		{
			Fields: map[string]any{
				"cid": CIDNoDates, "hn": "004411", "hcode": "10669", "fname": "Pimchanok", "lname": "Saengdao",
				"birthday": "2014-02-01", "sex": "2", "marrystatus": "1", "educate": "1", "nation": "099",
				"informaddr": "7 Fake Road", "hometel": "0800000003", "pttype_name": "UC card", "occupation_name": "student",
			},
			Visits: []map[string]any{
				{"id": "65e0a000b3c4d5e6f7a89201", "vn": "", "vstdate": nil, "vsttime": nil, "main_dep": "OPD", "spclty_name": "General practice",
					"diagnosis": []any{}, "assessment": []any{}, "anc": []any{}, "lab": []any{}},
				{"id": "65e0a001b3c4d5e6f7a89202", "vn": "", "main_dep": "OPD", "spclty_name": "General practice",
					"diagnosis": []any{}, "assessment": []any{}, "anc": []any{}, "lab": []any{}},
			},
		},
		{
			Fields: map[string]any{
				"cid": CIDNoVisits, "hn": "005500", "hcode": "10670", "fname": "Arthit", "lname": "Chaiyaporn",
				"birthday": "2016-08-09", "sex": "1", "marrystatus": "1", "educate": "0", "nation": "099",
				"informaddr": "99 Fake Lane", "hometel": "", "pttype_name": "UC card", "occupation_name": "",
			},
		},
	}
}

// syllables build invented names; none is a name in any fixture.
var syllables = []string{"ka", "no", "pha", "ri", "su", "wan", "thi", "chai", "la", "mon", "pen", "sak", "dao", "rung"}

// generated builds n invented patients from seed: one or two dated visits,
// half with lab results, and a risk model on two in three.
func generated(n int, seed uint64) []*Person {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	name := func() string {
		s := ""
		for i := 0; i < 2+rng.IntN(2); i++ {
			s += syllables[rng.IntN(len(syllables))]
		}
		return string(s[0]-32) + s[1:]
	}
	out := make([]*Person, 0, n)
	for i := 0; i < n; i++ {
		cid := WithCheckDigit(fmt.Sprintf("2%011d", i))
		p := &Person{Fields: map[string]any{
			"cid": cid, "hn": fmt.Sprintf("%06d", 100000+i), "hcode": "10669", "fname": name(), "lname": name(),
			"birthday": fmt.Sprintf("20%02d-%02d-%02d", 8+rng.IntN(15), 1+rng.IntN(12), 1+rng.IntN(28)),
			"sex":      fmt.Sprint(1 + rng.IntN(2)), "marrystatus": "1", "educate": fmt.Sprint(rng.IntN(5)), "nation": "099",
			"informaddr": fmt.Sprintf("%d Fake Road", 1+rng.IntN(200)), "hometel": fmt.Sprintf("0800%06d", i),
			"pttype_name": "UC card", "occupation_name": "student",
		}}
		for v := 0; v < 1+rng.IntN(2); v++ {
			visit := map[string]any{
				"id": objectID(uint64(i)*10 + uint64(v)), "vn": fmt.Sprintf("67%02d%02d%06d", 1+rng.IntN(12), 1+rng.IntN(28), i),
				"vstdate":  fmt.Sprintf("2024-%02d-%02d", 1+rng.IntN(12), 1+rng.IntN(28)),
				"vsttime":  fmt.Sprintf("%02d:%02d:00", rng.IntN(24), rng.IntN(60)),
				"main_dep": "OPD", "spclty_name": "General practice",
				"diagnosis":  []any{map[string]any{"diagtype": "1", "icd10": "Z00.1", "diag_name": "Routine child health examination"}},
				"assessment": []any{map[string]any{"physicalexam": "normal", "bw": 30 + rng.Float64()*20, "height": 120 + rng.Float64()*40, "pe": "normal", "pe_gen_text": ""}},
				"anc":        []any{},
				"lab":        []any{},
			}
			if rng.IntN(2) == 0 {
				visit["lab"] = []any{map[string]any{"lab_items_code": "0749300", "lab_order_result": "negative", "lab_items_unit": "S/CO", "lab_items_normal_value": "<1.0"}}
			}
			p.Visits = append(p.Visits, visit)
		}
		if rng.IntN(3) > 0 {
			p.RiskModel = map[string]any{"id": objectID(1<<40 + uint64(i)), "caseStatus": "new", "riskLevel": "low", "summaryRiskLevel": "low", "improveLevel": "improved"}
		}
		out = append(out, p)
	}
	return out
}

// objectID is a MongoDB-style 24-hex id, as a LoopBack model on MongoDB
// gives its rows.
func objectID(n uint64) string { return fmt.Sprintf("65%022x", n) }

// WithCheckDigit appends the Thai national id check digit to 12 digits.
func WithCheckDigit(d12 string) string {
	sum := 0
	for i := 0; i < 12; i++ {
		sum += int(d12[i]-'0') * (13 - i)
	}
	return d12 + fmt.Sprint((11-sum%11)%10)
}
