package sandbox

import (
	"embed"

	"casesync/internal/fakes/his"
)

//go:embed webhooks/*.json
var webhookFS embed.FS

// ThailandWebhooks are the two Primero webhook fixtures (minimal, then
// full), as Primero posts them when Sync is pressed.
func ThailandWebhooks() [][]byte {
	var out [][]byte
	for _, n := range []string{"primero_sync_webhook_minimal.json", "primero_sync_webhook_full.json"} {
		b, err := webhookFS.ReadFile("webhooks/" + n)
		if err != nil {
			panic("sandbox: embedded webhook " + n + " missing")
		}
		out = append(out, b)
	}
	return out
}

// The Thailand cases: the two the Primero webhook fixtures name (their
// record ids and national ids; every other value invented), and three more
// for the flow's other answers.
const (
	ThaiCaseFull     = "e49e4bf1-c0e0-4f48-abf7-41a4033835f0" // primero_sync_webhook_full.json, HIS patient with partial data
	ThaiCaseMinimal  = "e41c03f8-07f9-4394-80f6-6874681c4626" // primero_sync_webhook_minimal.json, HIS patient with everything
	ThaiCaseNotFound = "0d6e2f1a-5b7c-4e8d-9a0b-1c2d3e4f5a6b" // a national id HIS does not know
	ThaiCaseNoID     = "1e7f3a2b-6c8d-4f9e-8b1c-2d3e4f5a6b7c" // no national id
	ThaiCaseNoDates  = "2f8a4b3c-7d9e-4a0f-9c2d-3e4f5a6b7c8d" // HIS visits without dates
)

// ThailandCases are the Primero cases of the Thailand deployment.
func ThailandCases() []map[string]any {
	c := func(id, cid, first, last string) map[string]any {
		m := map[string]any{
			"id": id, "module_id": "primeromodule-cp", "name_first": first, "name_last": last, "sex": "female", "age": 12,
			"owned_by": "primero_cp", "status": "open", "record_state": true,
			"created_at": "2024-03-01T02:00:00.000Z", "last_updated_at": "2024-03-01T02:00:00.000Z", "last_updated_by": "primero_cp",
		}
		if cid != "" {
			m["national_id_no"] = cid
		}
		return m
	}
	return []map[string]any{
		c(ThaiCaseFull, his.CIDPartial, "Mali", "Fakename"),
		c(ThaiCaseMinimal, his.CIDFound, "Dao", "Fakename"),
		c(ThaiCaseNotFound, his.NotFoundCID, "Fah", "Fakename"),
		c(ThaiCaseNoID, "", "Nok", "Fakename"),
		c(ThaiCaseNoDates, his.CIDNoDates, "Ploy", "Fakename"),
	}
}
