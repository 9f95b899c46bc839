package sandbox

import (
	"slices"
	"strings"

	"casesync/internal/fakes/oscar"
)

// References are the OSCaR organisations and clients a set of Primero
// cases refers to.
type References struct {
	// Orgs are the fakes' default organisations, then every other one a
	// case's OSCaR service names, sorted: Orgs of both fakes.
	Orgs []string
	// Clients are one per distinct oscar_number, for oscar.Server.AddClient.
	Clients []Client
}

// Client is a client OSCaR must already hold: the case's oscar_number is
// its global_id, registered in Org.
type Client struct {
	Org    string
	Fields map[string]any
}

// defaultOrgs are the organisations both fakes have without Options.Orgs.
var defaultOrgs = []string{"cif", "fco", "mtp"}

// ReferencesOf reads cases the way the fake Primero's Cambodia
// configuration writes them: an OSCaR service (its service_response_type
// names oscar) is implemented by, or referred from, agency-<org>, the
// agency rule of the Cambodia value maps; a case OSCaR knows carries the
// client's global_id as oscar_number. The client is registered in the
// organisation of the case's first OSCaR service (else the first default
// one) with the case's names and case_id, which is what OSCaR would hold
// after accepting the referral.
func ReferencesOf(cases []map[string]any) References {
	refs := References{Orgs: slices.Clone(defaultOrgs)}
	seen := map[string]bool{}
	var extra []string
	addOrg := func(org string) {
		if org == "" || seen[org] || slices.Contains(defaultOrgs, org) {
			return
		}
		seen[org] = true
		if org != oscar.NonIntegratedTenant { // it exists already, and stays non-integrated
			extra = append(extra, org)
		}
	}
	gids := map[string]bool{}
	for _, c := range cases {
		first := ""
		svcs, _ := c["services_section"].([]any)
		for _, x := range svcs {
			svc, _ := x.(map[string]any)
			if t, _ := svc["service_response_type"].(string); !strings.Contains(t, "oscar") {
				continue
			}
			for _, k := range []string{"service_implementing_agency", "oscar_referring_organization"} {
				a, _ := svc[k].(string)
				org, ok := strings.CutPrefix(a, "agency-")
				if !ok {
					continue
				}
				addOrg(org)
				if first == "" {
					first = org
				}
			}
		}
		gid, _ := c["oscar_number"].(string)
		if gid == "" || gids[gid] {
			continue
		}
		gids[gid] = true
		if first == "" {
			first = defaultOrgs[0]
		}
		fields := map[string]any{"global_id": gid}
		for from, to := range map[string]string{"name_first": "given_name", "name_last": "family_name", "case_id": "external_id", "case_id_display": "external_id_display"} {
			if v, ok := c[from].(string); ok {
				fields[to] = v
			}
		}
		refs.Clients = append(refs.Clients, Client{Org: first, Fields: fields})
	}
	slices.Sort(extra)
	refs.Orgs = append(refs.Orgs, extra...)
	return refs
}
