package sandbox

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReferencesOf(t *testing.T) {
	svc := func(typ, agency string) map[string]any {
		return map[string]any{"service_response_type": typ, "service_implementing_agency": agency}
	}
	tests := []struct {
		name  string
		cases []map[string]any
		want  References
	}{
		{"no cases: the defaults", nil, References{Orgs: []string{"cif", "fco", "mtp"}}},
		{"OSCaR services name organisations, sorted after the defaults", []map[string]any{
			{"services_section": []any{svc("referral_to_oscar", "agency-ptc"), svc("referral_to_oscar", "agency-cif")}},
			{"services_section": []any{map[string]any{"service_response_type": "referral_from_oscar", "oscar_referring_organization": "agency-hag"}}},
			{"services_section": []any{svc("service_being_provided_by_oscar_partner_47618", "agency-ksh")}},
		}, References{Orgs: []string{"cif", "fco", "mtp", "hag", "ksh", "ptc"}}},
		{"other services, other agencies and the non-integrated tenant add nothing", []map[string]any{
			{"services_section": []any{svc("referral", "agency-unhcr"), svc("referral_to_oscar", "UNHCR"), svc("referral_to_oscar", "agency-demo")}},
		}, References{Orgs: []string{"cif", "fco", "mtp"}}},
		{"one client per oscar_number, in the case's first OSCaR organisation", []map[string]any{
			{"oscar_number": "G1", "case_id": "c1", "case_id_display": "d1", "name_first": "Sokha", "name_last": "Chan",
				"services_section": []any{svc("referral", "agency-zzz"), svc("referral_to_oscar", "agency-kpt"), svc("referral_to_oscar", "agency-svr")}},
			{"oscar_number": "G1", "case_id": "c2"},
			{"oscar_number": "G2", "case_id": "c3", "name_first": 7},
		}, References{Orgs: []string{"cif", "fco", "mtp", "kpt", "svr"}, Clients: []Client{
			{"kpt", map[string]any{"global_id": "G1", "external_id": "c1", "external_id_display": "d1", "given_name": "Sokha", "family_name": "Chan"}},
			{"cif", map[string]any{"global_id": "G2", "external_id": "c3"}},
		}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ReferencesOf(tc.cases)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
