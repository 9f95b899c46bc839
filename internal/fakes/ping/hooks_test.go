package ping_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/internal/fakes/ping"
)

func TestServer_AddIntervention(t *testing.T) {
	tests := []struct {
		name  string
		in    ping.NewIntervention
		check func(t *testing.T, detail []map[string]any)
	}{
		{"named person", ping.NewIntervention{GivenName: "Kelo", FamilyName: "Tavomi", DateOfBirth: "2014-02-03", Sex: 125080001},
			func(t *testing.T, d []map[string]any) {
				got := map[string]any{
					"given": d[0]["progres_individual.individuals.progres_givenname"],
					"dob":   d[0]["progres_individual.individuals.progres_dateofbirth"],
					"sex":   d[0]["progres_individual.individuals.progres_sex"],
				}
				want := map[string]any{"given": "Kelo", "dob": "2014-02-03T00:00:00", "sex": 125080001.0}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}},
		{"type outside the allow-list", ping.NewIntervention{InterventionType: "Shelter"}, func(t *testing.T, d []map[string]any) {
			if d[0]["progres_interventiontype2.interventiontype.progres_description"] != "Shelter" {
				t.Errorf("type %v", d[0]["progres_interventiontype2.interventiontype.progres_description"])
			}
		}},
		{"no date of birth, three languages", ping.NewIntervention{NoDateOfBirth: true, Languages: []string{"Nuer", "Bari", "Kunama"}},
			func(t *testing.T, d []map[string]any) {
				if _, ok := d[0]["progres_individual.individuals.progres_dateofbirth"]; ok {
					t.Errorf("date of birth present")
				}
				langs := map[any]bool{}
				for _, r := range d {
					langs[r["progres_language.progres_languagecodeidname"]] = true
				}
				if len(langs) != 3 {
					t.Errorf("languages %v", langs)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := start(t, ping.Options{Interventions: 2})
			id := srv.AddIntervention(tc.in)
			pending := rows(t, c.retrieve(ping.SHPPendingInterventions))
			if len(pending) != 3 || pending[2]["progres_lpinterventionid"] != id {
				t.Fatalf("new intervention is not last in the queue: %v", pending)
			}
			tc.check(t, rows(t, c.retrieve(ping.SHPInterventionDetail, "{record_ids}", id)))
		})
	}
}

func TestServer_Decide(t *testing.T) {
	srv, c := start(t, ping.Options{Decisions: 4})
	ref := srv.Decisions()[3]["progres_interoperabilityreferralid"].(string) // seeded as new
	if err := srv.Decide(ref, ping.ReferralRejected, "Outside of mandate", "Refer to the education partner."); err != nil {
		t.Fatal(err)
	}
	r := rows(t, c.retrieve(ping.SHPDecisionDetail, "{record_ids}", ref))[0]
	got := map[string]any{
		"status":  r["progres_interoperabilityreferralstatus"],
		"review":  r["progres_reviewdecision"],
		"reason":  r["progres_interoperabiltyreferralrejectionreasonname"],
		"comment": r["progres_interoperabilityreferralrejectionomment"],
	}
	want := map[string]any{"status": 125080002.0, "review": 125080001.0, "reason": "Outside of mandate", "comment": "Refer to the education partner."}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rejected referral (-want +got):\n%s", diff)
	}
	if err := srv.Decide(ref, ping.ReferralAccepted, "", ""); err != nil {
		t.Fatal(err)
	}
	r = rows(t, c.retrieve(ping.SHPDecisionDetail, "{record_ids}", ref))[0]
	if r["progres_reviewdecision"] != 125080000.0 || r["progres_interoperabiltyreferralrejectionreasonname"] != nil {
		t.Errorf("accepted referral keeps rejection details: %v", r)
	}
	if err := srv.Decide("0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f", ping.ReferralAccepted, "", ""); !errors.Is(err, ping.ErrNotFound) {
		t.Errorf("unknown referral: %v", err)
	}
}

func TestServer_RequestLog(t *testing.T) {
	srv, c := start(t, ping.Options{Interventions: 3, PageSize: 2})
	c.retrieveAll(ping.SHPPendingInterventions)
	c.post(ping.RetrievePath, retrieveBody("SHP-0000"))
	var got []ping.LoggedRequest
	for _, l := range srv.RequestLog() {
		if l.Path == ping.RetrievePath {
			got = append(got, l)
		}
	}
	want := []ping.LoggedRequest{
		{Method: http.MethodPost, Path: ping.RetrievePath, ShippingProcessID: "SHP-2747", Status: 200},
		{Method: http.MethodPost, Path: ping.RetrievePath, ShippingProcessID: "SHP-2747", PageNumber: 2, Status: 200},
		{Method: http.MethodPost, Path: ping.RetrievePath, ShippingProcessID: "SHP-0000", Status: 400},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request log (-want +got):\n%s", diff)
	}
}
