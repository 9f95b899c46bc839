package ping

// Value tables the fake draws seeds from and validates writes against.
// They repeat values from the value maps in testdata/;
// TestServer_TablesMatchValueMaps fails when the two drift apart.

// interventionType is a proGres intervention type: the description is what
// Flow 1.1's allow-list compares, the GUID is invented for this fake.
type interventionType struct {
	Description string
	ID          string
}

// allowListedTypes are the keys of progres_to_primero_service_type.csv.
var allowListedTypes = []interventionType{
	{"Alternative Care", "6f1e0a01-3c2d-4e5f-8a9b-0c1d2e3f4a01"},
	{"BID", "6f1e0a01-3c2d-4e5f-8a9b-0c1d2e3f4a02"},
	{"BIA", "6f1e0a01-3c2d-4e5f-8a9b-0c1d2e3f4a03"},
	{"Family Tracing and Reunification", "6f1e0a01-3c2d-4e5f-8a9b-0c1d2e3f4a04"},
	{"Advocacy / Direct intervention", "6f1e0a01-3c2d-4e5f-8a9b-0c1d2e3f4a05"},
}

// offListType is a real-sounding proGres type that is not in the
// allow-list, so a connector's on-miss rule gets exercised.
var offListType = interventionType{"Legal Assistance", "6f1e0a01-3c2d-4e5f-8a9b-0c1d2e3f4a99"}

// sexNames are the codes of progres_sex_code_to_primero_sex.csv with the
// display names proGres puts in the ...sexname companion.
var sexNames = map[int]string{
	125080000: "Female",
	125080001: "Male",
	125080002: "Other",
	125080003: "Unknown",
}

// sexCodes in table order, for seeding.
var sexCodes = []int{125080000, 125080001, 125080002, 125080003}

// knownLanguages are the keys of progres_language_name_to_primero_language.csv,
// quirks included ("Dinka, Southeastern;" with its stray semicolon).
var knownLanguages = []string{
	"Anyuak", "Acholi", "Amharic", "Bari", "Bembe",
	"Dinka, Northeastern", "Dinka, Northwestern; Alor", "Dinka, South Central",
	"Dinka, Southeastern;", "Dinka, Southeastern", "Dinka, Southwestern; Rek",
	"Nuer", "Somali", "Cutchi-swahili", "Swahili", "Swahili, Congo", "Zande",
}

// unknownLanguage is a real language missing from the inbound table, so the
// "unknown → Other" rule gets exercised.
const unknownLanguage = "Tigrinya"

// specificNeed is one (category, subcategory) pair of a proGres specific
// need. Category GUIDs are those of
// primero_protection_concern_to_progres_spneed_category_guid.csv;
// subcategory GUIDs are invented.
type specificNeed struct {
	CategoryID, Category, SubcategoryID, Subcategory string
}

var specificNeeds = []specificNeed{
	{"a1c5b4fb-8f76-e611-80c9-00155d340529", "Child at risk", "7c0e5a10-1b2c-4d3e-8f40-5a6b7c8d9e01", "Child at risk of not attending school"},
	{"a1c5b4fb-8f76-e611-80c9-00155d340529", "Child at risk", "7c0e5a10-1b2c-4d3e-8f40-5a6b7c8d9e02", "Child engaged in worst forms of child labour"},
	{"abc5b4fb-8f76-e611-80c9-00155d340529", "Unaccompanied or separated child", "7c0e5a10-1b2c-4d3e-8f40-5a6b7c8d9e03", "Unaccompanied child"},
	{"abc5b4fb-8f76-e611-80c9-00155d340529", "Unaccompanied or separated child", "7c0e5a10-1b2c-4d3e-8f40-5a6b7c8d9e04", "Separated child"},
	{"a3c5b4fb-8f76-e611-80c9-00155d340529", "Disability", "7c0e5a10-1b2c-4d3e-8f40-5a6b7c8d9e05", "Visual impairment"},
	{"adc5b4fb-8f76-e611-80c9-00155d340529", "Serious medical condition", "7c0e5a10-1b2c-4d3e-8f40-5a6b7c8d9e06", "Chronic illness"},
	{"b1c5b4fb-8f76-e611-80c9-00155d340529", "SGBV", "7c0e5a10-1b2c-4d3e-8f40-5a6b7c8d9e07", "Survivor of SGBV in country of asylum"},
	{"b3c5b4fb-8f76-e611-80c9-00155d340529", "Torture", "7c0e5a10-1b2c-4d3e-8f40-5a6b7c8d9e08", "Witness of violence to other"},
	{"a9c5b4fb-8f76-e611-80c9-00155d340529", "Specific legal and physical protection needs", "7c0e5a10-1b2c-4d3e-8f40-5a6b7c8d9e09", "In hiding"},
}

// requestedServices are the distinct GUIDs of
// primero_service_type_to_progres_requested_service_guid.csv: the only
// progres_requestedservice values SHP-2731 accepts by default.
var requestedServices = []string{
	"7ad37dd0-0306-e611-80d9-00155d34051a", // Legal / Protection Counselling
	"f98e1516-0406-e611-80d9-00155d34051a", // Health Assistance
	"20db76a2-0306-e611-80d9-00155d34051a", // Shelter Assistance
	"79f7aee2-309e-e911-80e6-001dd8b71fe6", // Education
	"14d89ab0-0306-e611-80d9-00155d34051a", // Cash Assistance
	"f6dd29c1-0306-e611-80d9-00155d34051a", // Documentation
	"80c37762-0406-e611-80d9-00155d34051a", // Livelihoods
	"fab93078-7005-e611-80d9-00155d34051a", // Food Assistance
	"3408e901-0406-e611-80d9-00155d34051a", // Psycho-social Assistance
	"ca34f86f-0406-e611-80d9-00155d34051a", // Resettlement
	"e3a13f7d-0406-e611-80d9-00155d34051a", // Other
}

// spneedCategories are the distinct category GUIDs SHP-2731 accepts in
// progres_spneedcategory.
var spneedCategories = []string{
	"a1c5b4fb-8f76-e611-80c9-00155d340529",
	"abc5b4fb-8f76-e611-80c9-00155d340529",
	"a3c5b4fb-8f76-e611-80c9-00155d340529",
	"adc5b4fb-8f76-e611-80c9-00155d340529",
	"b1c5b4fb-8f76-e611-80c9-00155d340529",
	"b3c5b4fb-8f76-e611-80c9-00155d340529",
	"a9c5b4fb-8f76-e611-80c9-00155d340529",
}

// rejectionReasons are the display names of proGres rejection reasons used
// by seeded rejections and Decide.
var rejectionReasons = []string{
	"Service not available in location",
	"Outside of mandate",
	"Duplicate referral",
	"Insufficient information",
}

// Field sets of the ingestion shipping processes (ping.md §10). A field
// outside its set fails the item: PING only maps configured attributes.
var (
	transferStatusFields = setOf(
		"progres_lpinterventionid", "progres_businessunit",
		"progres_primerotransferstatus", "progres_primerotransferstatusdate",
		"progres_primeroid", "progres_primerocaseworker",
		// Carried the decision comment before the 2026-03 hotfix moved it
		// to an attachment; older specs still send it.
		"progres_comments_displayfield",
	)
	markSyncedFields = setOf(
		"progres_interoperabilityreferralid", "progres_interoperabilityreferralstatus",
		"progres_comments",
	)
	createReferralFields = setOf(
		"progres_externalguid", "progres_externalid", "progres_businessunit",
		"progres_organizationfrom", "progres_orgreferredby", "progres_orgposition",
		"progres_orgemail", "progres_orgphonenumber", "progres_orgreferralid",
		"progres_referraldate", "progres_otherrequestedservices",
		"progres_requestedservice", "progres_spneedcategory",
		"progres_reasonforreferral", "progres_pocphonenumber", "progres_pocaddress",
		"progres_pocotheridnumber", "progres_pocdateofbirth", "progres_pocsex",
		"progres_poclastname", "progres_pocmiddlename", "progres_pocfirstname",
		"progres_unhcrid", "progres_offlineid",
	)
	// createReferralRequired are the SHP-2731 fields whose absence fails an
	// item by default: the identity chain of ping.md §10 and the lookups a
	// proGres referral cannot be saved without.
	createReferralRequired = []string{
		"progres_externalguid", "progres_externalid", "progres_offlineid",
		"progres_orgreferralid", "progres_businessunit", "progres_organizationfrom",
		"progres_requestedservice", "progres_referraldate",
		"progres_pocfirstname", "progres_poclastname",
	}
)

func setOf(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}
